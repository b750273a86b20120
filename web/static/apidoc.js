// apidoc.js — the OpenAPI document as a filterable list of operations, offline.

import { esc } from '/static/api.js';

const box = document.getElementById('operations');
const filter = document.getElementById('api-filter');
let ops = [];

function render() {
  const f = filter.value.trim().toLowerCase();
  box.innerHTML = ops
    .filter((o) => !f || o.id.includes(f) || o.path.toLowerCase().includes(f) || o.summary.toLowerCase().includes(f))
    .map((o) => `<details class="op"><summary><code class="m-${o.method}">${o.method.toUpperCase()}</code> `
      + `<code>${esc(o.path)}</code> <b>${esc(o.id)}</b> <span class="muted">${esc(o.summary)}</span></summary>`
      + `<pre>${esc(o.description)}</pre></details>`)
    .join('');
}

async function load() {
  const spec = await (await fetch('/openapi.json')).json();
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      ops.push({
        method, path, id: op.operationId || '', summary: op.summary || '', description: op.description || '',
      });
    }
  }
  ops.sort((a, b) => a.path.localeCompare(b.path));
  render();
}

filter.addEventListener('input', render);
load();
