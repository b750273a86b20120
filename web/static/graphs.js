// graphs.js — a VM's (or this host's) CPU, memory and network over time, from
// GET /api/v1/namespaces/{ns}/graphs, drawn with uPlot and refreshed while shown.

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
}

async function load() {
  const q = new URLSearchParams({ range: rangePick.value });
  if (vmPick.value) q.set('vm', vmPick.value);
  try {
    draw(await call('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/graphs?${q}`));
  } catch (e) {
    toast(`graphs: ${e.message}`);
  }
}

async function vms() {
  const want = new URLSearchParams(location.search).get('vm') || vmPick.dataset.vm || '';
  try {
    const names = rows(await op('vm/info')).map((r) => r.name);
    for (const n of [...new Set(names)].sort()) {
      const o = document.createElement('option');
      o.value = n;
      o.textContent = n;
      vmPick.append(o);
    }
  } catch (e) {
    toast(`vm info: ${e.message}`);
  }
  vmPick.value = want;
  const r = new URLSearchParams(location.search).get('range');
  if (r) rangePick.value = r;
}

function repick() {
  const q = new URLSearchParams();
  if (vmPick.value) q.set('vm', vmPick.value);
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
