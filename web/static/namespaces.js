// namespaces.js — every namespace with its VM counts (from the events snapshot, so it
// stays live), links to its pages, and a form to create one.

import { globalOp, args, esc, toast, watchEvents } from '/static/api.js';

const body = document.querySelector('#namespaces tbody');
let names = [];
const vms = new Map();

function render() {
  const all = [...new Set([...names, ...[...vms.values()].map((v) => v.namespace)])].sort();
  body.innerHTML = all.map((n) => {
    const mine = [...vms.values()].filter((v) => v.namespace === n);
    const running = mine.filter((v) => v.state === 'RUNNING').length;
    const link = `/ns/${encodeURIComponent(n)}`;
    return `<tr data-ns="${esc(n)}"><td><a href="${link}/vms">${esc(n)}</a></td>`
      + `<td>${mine.length}</td><td>${running}</td>`
      + `<td><a href="${link}/screenshots">screenshots</a> <a href="${link}/hosts">hosts</a></td></tr>`;
  }).join('');
}

async function load() {
  try {
    const resps = await globalOp('namespace');
    names = [];
    for (const r of resps) {
      for (const row of r.tabular || []) names.push(row[0]);
      if (!r.tabular || !r.tabular.length) {
        for (const w of (r.response || '').split(/[\s,]+/)) if (w) names.push(w.replace(/^\[|\]$/g, ''));
      }
    }
  } catch (e) {
    toast(`namespace: ${e.message}`);
  }
  render();
}

watchEvents((ev) => {
  if (ev.type === 'snapshot') {
    vms.clear();
    for (const v of ev.vms) vms.set(`${v.namespace}/${v.id}`, v);
  } else if (ev.type === 'vm') vms.set(`${ev.vm.namespace}/${ev.vm.id}`, ev.vm);
  else if (ev.type === 'vm_removed') vms.delete(`${ev.namespace}/${ev.id}`);
  render();
});

document.getElementById('ns-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = e.target.name.value.trim();
  try {
    await globalOp('namespace', args({ name }));
    e.target.name.value = '';
    await load();
  } catch (ex) {
    toast(ex.message);
  }
});

load();
