// hosts.js — the `host` table of every host of the namespace, refreshed every 5 s.

import { op, rows, columns, esc, toast } from '/static/api.js';

const table = document.getElementById('hosts');

async function load() {
  try {
    const resps = await op('host');
    const cols = columns(resps).filter((c, i, all) => all.indexOf(c) === i);
    table.tHead.innerHTML = `<tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
    table.tBodies[0].innerHTML = rows(resps)
      .map((r) => `<tr>${cols.map((c) => `<td>${esc(r[c])}</td>`).join('')}</tr>`)
      .join('');
  } catch (e) {
    toast(`host: ${e.message}`);
  }
}

load();
setInterval(() => {
  if (!document.hidden) load();
}, 5000);
