// hosts.js — the `host` table of every host of the namespace, each row ending with the
// namespace's VMs that host runs (links to their pages); refreshed every 5 s and soon
// after any VM of the namespace, on whichever host, is launched, changes or goes.

import { ns, op, args, rows, columns, esc, toast, watchEvents } from '/static/api.js';

const table = document.getElementById('hosts');

function vmLinks(list) {
  return list
    .map((v) => `<a href="/ns/${encodeURIComponent(ns)}/vms/${encodeURIComponent(v.name)}"`
      + ` class="s-${esc(v.state).toLowerCase()}" title="${esc(v.state)}">${esc(v.name)}</a>`)
    .join(' ');
}

/** A cell of the host table; the host's name links to its graphs. */
function cell(r, c) {
  if (c !== 'host') return `<td>${esc(r[c])}</td>`;
  const graphs = `/ns/${encodeURIComponent(ns)}/graphs?host=${encodeURIComponent(r.host)}`;
  return `<td><a href="${graphs}" title="graphs of ${esc(r.host)}">${esc(r.host)}</a></td>`;
}

async function load() {
  try {
    const [hostResps, vmResps] = await Promise.all([
      op('host'),
      op('vm/info', args(), { columns: 'name,state' }),
    ]);
    const byHost = new Map();
    for (const v of rows(vmResps)) {
      if (!byHost.has(v.host)) byHost.set(v.host, []);
      byHost.get(v.host).push(v);
    }
    const cols = columns(hostResps).filter((c, i, all) => all.indexOf(c) === i);
    table.tHead.innerHTML = `<tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}<th>VMs</th></tr>`;
    table.tBodies[0].innerHTML = rows(hostResps)
      .map((r) => `<tr data-host="${esc(r.host)}">${cols.map((c) => cell(r, c)).join('')}`
        + `<td class="vms">${vmLinks(byHost.get(r.host) || [])}</td></tr>`)
      .join('');
  } catch (e) {
    toast(`host: ${e.message}`);
  }
}

let soon = 0;
watchEvents((ev) => {
  const mine = (ev.vm && ev.vm.namespace === ns) || (ev.type === 'vm_removed' && ev.namespace === ns);
  if (!mine) return;
  clearTimeout(soon);
  soon = setTimeout(load, 300);
});

load();
setInterval(() => {
  if (!document.hidden) load();
}, 5000);
