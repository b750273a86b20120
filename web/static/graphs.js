// graphs.js — a VM's (or a host's) CPU, memory and network over time, from
// GET /api/v1/namespaces/{ns}/graphs, drawn with uPlot and refreshed while shown. The
// picker offers this host, the namespace's other hosts (`?host=`) and its VMs (`?vm=`),
// wherever they run: the server asks the host that has them.

import uPlot from '/static/uplot/uPlot.esm.js';
import { call, ns, op, rows, toast } from '/static/api.js';

const vmPick = document.getElementById('graph-vm');
const rangePick = document.getElementById('graph-range');
const box = document.getElementById('graphs');

const CHARTS = [
  { id: 'chart-cpu', series: [['cpu', 'CPU %', '#2b6cb0']] },
  { id: 'chart-mem', series: [['mem', 'memory MB', '#2f855a']] },
  {
    id: 'chart-net',
    series: [
      ['rx', 'rx MB/s', '#c05621'],
      ['tx', 'tx MB/s', '#6b46c1'],
    ],
  },
];

let plots = [];

function width() {
  return Math.max(320, Math.min(1100, box.clientWidth || 800));
}

function draw(g) {
  const s = g.series;
  plots.forEach((p) => p.destroy());
  plots = CHARTS.map((c) => {
    const el = document.getElementById(c.id);
    el.innerHTML = '';
    const opts = {
      width: width(),
      height: 200,
      series: [{}, ...c.series.map(([, label, stroke]) => ({ label, stroke, width: 2 }))],
      axes: [{}, { size: 60 }],
    };
    return new uPlot(opts, [s.time, ...c.series.map(([k]) => s[k])], el);
  });
  box.dataset.points = String(s.time.length);
  box.dataset.series = String(plots.reduce((n, p) => n + p.series.length - 1, 0));
  box.dataset.vm = g.vm || '';
  box.dataset.host = g.host || '';
}

/** The query naming what the picker shows: nothing (this host), a host, or a VM. */
function picked() {
  const v = vmPick.value;
  if (!v) return {};
  return v.startsWith('host:') ? { host: v.slice(5) } : { vm: v };
}

function option(value, text) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  vmPick.append(o);
}

async function load() {
  const q = new URLSearchParams({ range: rangePick.value, ...picked() });
  try {
    draw(await call('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/graphs?${q}`));
  } catch (e) {
    toast(`graphs: ${e.message}`);
  }
}

async function vms() {
  const page = new URLSearchParams(location.search);
  const host = page.get('host');
  const want = host ? `host:${host}` : page.get('vm') || vmPick.dataset.vm || '';
  try {
    const [hosts, info] = await Promise.all([op('host'), op('vm/info')]);
    for (const h of [...new Set(hosts.map((r) => r.host))].sort()) option(`host:${h}`, `host ${h}`);
    const seen = new Set();
    for (const r of rows(info).sort((a, b) => a.name.localeCompare(b.name))) {
      if (seen.has(r.name)) continue;
      seen.add(r.name);
      option(r.name, `${r.name} (${r.host})`);
    }
  } catch (e) {
    toast(`vm info: ${e.message}`);
  }
  if (want.startsWith('host:') && ![...vmPick.options].some((o) => o.value === want)) {
    option(want, `host ${want.slice(5)}`);
  }
  vmPick.value = want;
  const r = page.get('range');
  if (r) rangePick.value = r;
}

function repick() {
  const q = new URLSearchParams(picked());
  if (rangePick.value !== '10m') q.set('range', rangePick.value);
  history.replaceState(null, '', `${location.pathname}${q.toString() ? '?' + q : ''}`);
  load();
}

vmPick.addEventListener('change', repick);
rangePick.addEventListener('change', repick);

await vms();
await load();
setInterval(() => {
  if (!document.hidden) load();
}, 2000);
