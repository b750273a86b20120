// screenshots.js — a grid of the namespace's KVM screens (`vm screenshot <vm> 300`), each
// a link to its VM page. Refreshed every 5 s below 100 VMs, as miniweb did; state badges
// follow the events WebSocket.

import { ns, op, args, rows, esc, toast, watchEvents } from '/static/api.js';

const grid = document.getElementById('shots');
const status = document.getElementById('shots-status');
const KILLABLE = new Set(['BUILDING', 'RUNNING', 'PAUSED']);
let vms = [];

function tile(r) {
  const link = `/ns/${encodeURIComponent(ns)}/vms/${encodeURIComponent(r.name)}`;
  return `<a class="tile" href="${link}" data-name="${esc(r.name)}">`
    + `<img alt="${esc(r.name)}" data-shot="${esc(r.name)}">`
    + `<span class="caption">${esc(r.name)} <span class="state s-${esc(r.state).toLowerCase()}">${esc(r.state)}</span>`
    + ` <span class="muted">${esc(r.host)}</span></span></a>`;
}

async function load() {
  try {
    vms = rows(await op('vm/info', args(), { columns: 'name,state,type' }))
      .filter((r) => r.type === 'kvm');
  } catch (e) {
    toast(`vm info: ${e.message}`);
    return;
  }
  grid.innerHTML = vms.map(tile).join('') || '<p class="muted">No KVM VMs.</p>';
  await refresh();
}

/** Fetches screenshots two at a time (each is a QMP screendump on the server). */
async function refresh() {
  const todo = vms.filter((r) => KILLABLE.has(r.state));
  status.textContent = `${todo.length} running of ${vms.length}`;
  const next = async () => {
    for (let r = todo.shift(); r; r = todo.shift()) {
      try {
        const resps = await op('vm/screenshot', args({ vm: r.name, maximum: '300' }));
        const img = grid.querySelector(`img[data-shot="${CSS.escape(r.name)}"]`);
        if (img && typeof resps[0].data === 'string') img.src = `data:image/png;base64,${resps[0].data}`;
      } catch {
        // Stopped in the meantime: leave the last picture.
      }
    }
  };
  await Promise.all([next(), next()]);
}

let reload = 0;
watchEvents((ev) => {
  // A screenshot event is this page's own doing (each load takes screenshots).
  if (ev.type === 'snapshot' || ev.type === 'screenshot') return;
  const mine = (ev.vm && ev.vm.namespace === ns) || ev.namespace === ns;
  if (!mine) return;
  clearTimeout(reload);
  reload = setTimeout(load, 500);
});

setInterval(() => {
  if (!document.hidden && vms.length < 100) refresh();
}, 5000);
load();
