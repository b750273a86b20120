// vms.js — the VMs of a namespace: the `vm info` and `vm top` tables, sortable and
// filterable here, with start / stop / kill buttons and a launch form that post to the
// API. The events WebSocket keeps the info table live: state changes patch the state cell;
// launches and removals re-render, at most once per animation frame (1000 VMs stay smooth).

import {
  ns, op, args, rows, columns, esc, toast, watchEvents, compareCells, matcher,
} from '/static/api.js';

// The columns shown of `vm info` (miniweb's), when the server has them.
const INFO_COLUMNS = ['host', 'id', 'name', 'state', 'uptime', 'type', 'vcpus', 'memory',
  'disk', 'vlan', 'ip', 'ip6', 'tap', 'tags', 'cc_active'];
const KILLABLE = new Set(['BUILDING', 'RUNNING', 'PAUSED']);

const table = document.getElementById('vms');
const thead = table.tHead;
const tbody = table.tBodies[0];
const count = document.getElementById('count');
const empty = document.getElementById('empty');
const filterBox = document.getElementById('filter');

// One model per view: rows by name, the columns, and how they are sorted.
const views = {
  info: { rows: new Map(), cols: [], sort: 'id', dir: 1, loaded: false },
  top: { rows: new Map(), cols: [], sort: 'name', dir: 1, loaded: false },
};
let view = 'info';
let rowEls = new Map();

function stateCell(s) {
  return `<td class="state s-${esc(s).toLowerCase()}" data-col="state">${esc(s)}</td>`;
}

function actions(r) {
  const s = r.state;
  const dis = (ok) => (ok ? '' : ' disabled');
  const link = `/ns/${encodeURIComponent(ns)}/vms/${encodeURIComponent(r.name)}`;
  return `<td class="actions">`
    + `<button type="button" data-act="start"${dis(s !== 'RUNNING')} title="vm start">start</button>`
    + `<button type="button" data-act="stop"${dis(s === 'RUNNING')} title="vm stop (pause)">stop</button>`
    + `<button type="button" data-act="kill"${dis(KILLABLE.has(s))} title="vm kill">kill</button>`
    + `<a href="${link}" class="connect">connect</a></td>`;
}

function rowHtml(r, cols) {
  let h = `<tr data-name="${esc(r.name)}">`;
  for (const c of cols) {
    if (c === 'state') h += stateCell(r.state);
    else if (c === 'name') h += `<td><a href="/ns/${encodeURIComponent(ns)}/vms/${encodeURIComponent(r.name)}">${esc(r.name)}</a></td>`;
    else h += `<td>${esc(r[c])}</td>`;
  }
  if (view === 'info') h += actions(r);
  return `${h}</tr>`;
}

function visible() {
  const v = views[view];
  const keep = matcher(filterBox.value);
  const list = [...v.rows.values()].filter((r) => keep(r, v.cols));
  list.sort((a, b) => v.dir * compareCells(a[v.sort], b[v.sort]));
  return list;
}

/** Rebuilds the table in one DOM write. */
function render() {
  const v = views[view];
  const arrow = (c) => (c === v.sort ? (v.dir > 0 ? ' ▲' : ' ▼') : '');
  thead.innerHTML = `<tr>${v.cols.map((c) => `<th data-col="${esc(c)}">${esc(c)}${arrow(c)}</th>`).join('')}`
    + `${view === 'info' ? '<th></th>' : ''}</tr>`;
  const list = visible();
  tbody.innerHTML = list.map((r) => rowHtml(r, v.cols)).join('');
  rowEls = new Map();
  for (const tr of tbody.rows) rowEls.set(tr.dataset.name, tr);
  count.textContent = `${list.length} of ${v.rows.size} VMs`;
  empty.hidden = v.rows.size > 0 || !v.loaded;
}

/** Changes one VM's state in place, without touching the rest of the table. */
function patchState(name, r) {
  const tr = rowEls.get(name);
  if (!tr) return;
  const cell = tr.querySelector('td[data-col="state"]');
  if (cell) cell.outerHTML = stateCell(r.state);
  const act = tr.querySelector('td.actions');
  if (act) act.outerHTML = actions(r);
}

// ---- loading ---------------------------------------------------------------------------

let fetching = false;
let again = false;
let timer = 0;

async function loadInfo() {
  if (fetching) {
    again = true;
    return;
  }
  fetching = true;
  try {
    const resps = await op('vm/info');
    const v = views.info;
    v.cols = columns(resps).filter((c) => INFO_COLUMNS.includes(c));
    v.cols.sort((a, b) => INFO_COLUMNS.indexOf(a) - INFO_COLUMNS.indexOf(b));
    v.rows = new Map(rows(resps).map((r) => [r.name, r]));
    v.loaded = true;
    if (view === 'info') render();
  } catch (e) {
    toast(`vm info: ${e.message}`);
  } finally {
    fetching = false;
    if (again) {
      again = false;
      reloadSoon();
    }
  }
}

/** Reloads `vm info` shortly; many calls in a burst (a launch of 500) make one request. */
function reloadSoon(ms = 300) {
  if (!timer) {
    timer = setTimeout(() => {
      timer = 0;
      loadInfo();
    }, ms);
  }
}

let topTimer = 0;
async function loadTop() {
  clearTimeout(topTimer);
  if (view !== 'top') return;
  try {
    const resps = await op('vm/top');
    const v = views.top;
    v.cols = columns(resps);
    v.rows = new Map(rows(resps).map((r) => [r.name, r]));
    v.loaded = true;
    if (view === 'top') render();
  } catch (e) {
    toast(`vm top: ${e.message}`);
  }
  // `vm top` samples for a second; ask again a little after.
  if (view === 'top') topTimer = setTimeout(loadTop, 1500);
}

// ---- live updates ----------------------------------------------------------------------

const pending = new Map();
let frame = 0;

function onEvent(ev) {
  if (ev.type === 'snapshot') {
    reloadSoon(0);
    return;
  }
  if (ev.type === 'vm' && ev.vm.namespace === ns) pending.set(ev.vm.name, ev.vm);
  else if (ev.type === 'vm_removed' && ev.namespace === ns) {
    // Across the mesh, another host's VM of the same name is not this row.
    const r = views.info.rows.get(ev.name);
    if (ev.host && r && r.host && r.host !== ev.host) return;
    pending.set(ev.name, null);
  }
  else return;
  if (!frame) frame = requestAnimationFrame(applyPending);
}

function applyPending() {
  frame = 0;
  const v = views.info;
  const filtering = filterBox.value.trim() !== '';
  let whole = false;
  for (const [name, vm] of pending) {
    const r = v.rows.get(name);
    if (vm === null) {
      if (r) {
        v.rows.delete(name);
        whole = true;
      }
    } else if (!r || r.id !== String(vm.id)) {
      // A launch: show it at once, and fetch its full row.
      v.rows.set(name, { host: vm.host, id: String(vm.id), name, state: vm.state, type: vm.vm_type });
      whole = true;
      reloadSoon();
    } else if (r.state !== vm.state) {
      r.state = vm.state;
      if (v.sort === 'state' || filtering) whole = true;
      else if (view === 'info') patchState(name, r);
    }
  }
  pending.clear();
  if (whole && view === 'info') render();
}

// ---- user actions ----------------------------------------------------------------------

tbody.addEventListener('click', async (e) => {
  const b = e.target.closest('button[data-act]');
  if (!b) return;
  const name = b.closest('tr').dataset.name;
  b.disabled = true;
  try {
    await op(`vm/${b.dataset.act}`, args({ vm: name }));
  } catch (err) {
    toast(`vm ${b.dataset.act} ${name}: ${err.message}`);
    b.disabled = false;
  }
});

thead.addEventListener('click', (e) => {
  const th = e.target.closest('th[data-col]');
  if (!th) return;
  const v = views[view];
  if (v.sort === th.dataset.col) v.dir = -v.dir;
  else {
    v.sort = th.dataset.col;
    v.dir = 1;
  }
  render();
});

let filterTimer = 0;
filterBox.addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(render, 120);
});

for (const b of document.querySelectorAll('.tabs button')) {
  b.addEventListener('click', () => {
    view = b.dataset.view;
    for (const o of document.querySelectorAll('.tabs button')) o.classList.toggle('on', o === b);
    render();
    if (view === 'top') loadTop();
  });
}

document.getElementById('flush').addEventListener('click', async () => {
  try {
    await op('vm/flush');
  } catch (e) {
    toast(`vm flush: ${e.message}`);
  }
});

document.getElementById('launch-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target;
  const err = document.getElementById('launch-error');
  const button = document.getElementById('launch-button');
  err.textContent = '';
  button.disabled = true;
  const name = f.name.value.trim();
  const before = new Set(views.info.rows.keys());
  try {
    if (f.memory.value.trim()) await op('vm/config/memory', args({ value: f.memory.value.trim() }));
    if (f.vcpus.value.trim()) await op('vm/config/vcpus', args({ value: f.vcpus.value.trim() }));
    await op('vm/launch', args({ name }, { [f.type.value]: true }));
    if (f.start.checked) {
      // Start exactly the VMs this launch made (a count makes names we do not know yet).
      const now = rows(await op('vm/info', args(), { columns: 'name' }));
      const fresh = now.map((r) => r.name).filter((n) => !before.has(n));
      if (fresh.length) await op('vm/start', args({ vm: fresh.join(',') }));
    }
    toast(`launched ${name}`, 'info');
    f.name.value = '';
  } catch (ex) {
    err.textContent = ex.message;
  } finally {
    button.disabled = false;
  }
});

// The slow columns (uptime, IPs) change without events: refresh them now and then.
setInterval(() => {
  if (view === 'info' && !document.hidden) reloadSoon(0);
}, 60000);

render();
loadInfo();
watchEvents(onEvent);
