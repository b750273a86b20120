// vm.js — one VM: its `vm info` row, start / stop / kill, a screenshot, and its console —
// noVNC for KVM (raw RFB over the console WebSocket), xterm.js for containers. A console
// is opened with a fresh single-use ticket each time, and reopened after the VM restarts.

import { ns, op, call, args, rows, esc, toast, watchEvents, wsUrl } from '/static/api.js';

const root = document.getElementById('vm');
const name = root.dataset.name;
const stateEl = document.getElementById('state');
const statusEl = document.getElementById('console-status');
const screen = document.getElementById('screen');
const shot = document.getElementById('shot');
const KILLABLE = new Set(['BUILDING', 'RUNNING', 'PAUSED']);

let vmState = '';
let vmType = '';
let consoleOpen = false;
let retry = 0;

/** What the page knows of its console, for people and for the browser test. */
function status(text) {
  statusEl.textContent = text;
  root.dataset.console = text;
}

function showState(s) {
  vmState = s;
  stateEl.textContent = s;
  stateEl.className = `state s-${s.toLowerCase()}`;
  for (const b of root.querySelectorAll('button[data-act]')) {
    const act = b.dataset.act;
    b.disabled = (act === 'start' && s === 'RUNNING') || (act === 'stop' && s !== 'RUNNING')
      || (act === 'kill' && !KILLABLE.has(s));
  }
}

async function loadDetails() {
  const resps = await op('vm/info', args(), { filter: `name=${name}` });
  const r = rows(resps)[0];
  if (!r) {
    showState('GONE');
    status('no such VM');
    return null;
  }
  const body = document.querySelector('#details tbody');
  body.innerHTML = Object.entries(r)
    .filter(([, v]) => v !== '' && v !== '[]' && v !== '{}')
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`)
    .join('');
  vmType = r.type;
  showState(r.state);
  return r;
}

// ---- screenshot (KVM) --------------------------------------------------------------------

async function refreshShot() {
  if (vmType !== 'kvm' || !KILLABLE.has(vmState) || document.hidden) return;
  try {
    const resps = await op('vm/screenshot', args({ vm: name, maximum: '480' }));
    const data = resps[0] && resps[0].data;
    if (typeof data === 'string') shot.src = `data:image/png;base64,${data}`;
  } catch (e) {
    shot.alt = e.message;
  }
}

// ---- console ------------------------------------------------------------------------------

async function ticket() {
  const path = `/api/v1/namespaces/${encodeURIComponent(ns)}/vms/${encodeURIComponent(name)}/console`;
  const t = await call('POST', path);
  const q = `&ns=${encodeURIComponent(ns)}&vm=${encodeURIComponent(name)}`;
  return wsUrl(t.url + q);
}

function reopenLater() {
  consoleOpen = false;
  clearTimeout(retry);
  retry = setTimeout(openConsole, 2000);
}

async function openVnc(url) {
  let RFB;
  try {
    ({ default: RFB } = await import('/static/novnc/core/rfb.js'));
  } catch (e) {
    status('noVNC is not installed on this server (npm ci in web/, then rebuild)');
    return;
  }
  screen.textContent = '';
  const rfb = new RFB(screen, url, { shared: true, wsProtocols: ['binary'] });
  rfb.scaleViewport = true;
  rfb.background = '#111';
  rfb.addEventListener('connect', () => status('connected'));
  rfb.addEventListener('disconnect', (e) => {
    status(e.detail.clean ? 'disconnected' : 'connection lost');
    reopenLater();
  });
  window.ferromegaRfb = rfb;
}

async function openTerminal(url) {
  let Terminal;
  try {
    ({ Terminal } = await import('/static/xterm/xterm.mjs'));
  } catch (e) {
    status('xterm.js is not installed on this server (npm ci in web/, then rebuild)');
    return;
  }
  screen.textContent = '';
  const term = new Terminal({ convertEol: true, fontSize: 14, rows: 30, cols: 100 });
  term.open(screen);
  const ws = new WebSocket(url, ['binary']);
  ws.binaryType = 'arraybuffer';
  const enc = new TextEncoder();
  ws.onopen = () => status('connected');
  ws.onmessage = (m) => term.write(new Uint8Array(m.data));
  term.onData((d) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d));
  });
  ws.onclose = () => {
    status('disconnected');
    term.dispose();
    reopenLater();
  };
  window.ferromegaTerm = term;
}

async function openConsole() {
  if (consoleOpen || !KILLABLE.has(vmState)) return;
  consoleOpen = true;
  status('connecting');
  let url;
  try {
    url = await ticket();
  } catch (e) {
    status(e.message);
    reopenLater();
    return;
  }
  if (vmType === 'container') await openTerminal(url);
  else await openVnc(url);
}

// ---- actions and live state ---------------------------------------------------------------

for (const b of root.querySelectorAll('button[data-act]')) {
  b.addEventListener('click', async () => {
    try {
      await op(`vm/${b.dataset.act}`, args({ vm: name }));
    } catch (e) {
      toast(`vm ${b.dataset.act} ${name}: ${e.message}`);
    }
  });
}

watchEvents((ev) => {
  if (ev.type === 'snapshot') {
    const vm = ev.vms.find((v) => v.namespace === ns && v.name === name);
    if (vm) showState(vm.state);
  } else if (ev.type === 'vm' && ev.vm.namespace === ns && ev.vm.name === name) {
    const was = vmState;
    showState(ev.vm.state);
    if (!KILLABLE.has(was) && KILLABLE.has(ev.vm.state)) {
      // Relaunched: a new process, a new console.
      loadDetails().then(openConsole).catch((e) => toast(e.message));
    }
    if (ev.vm.state === 'RUNNING') setTimeout(refreshShot, 500);
  } else if (ev.type === 'vm_removed' && ev.namespace === ns && ev.name === name) {
    showState('GONE');
  }
});

setInterval(refreshShot, 5000);
loadDetails()
  .then((r) => {
    if (!r) return;
    refreshShot();
    openConsole();
  })
  .catch((e) => toast(e.message));
