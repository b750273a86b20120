// vlans.js — the `vlans` table of the namespace (aliases and their VLANs), its range,
// and forms that post `vlans add` and `vlans range`; refreshed every 5 s.

import { op, args, rows, columns, esc } from '/static/api.js';

const table = document.getElementById('vlans');
const empty = document.getElementById('empty');
const range = document.getElementById('range');
const error = document.getElementById('vlans-error');

async function load() {
  try {
    const resps = await op('vlans');
    const cols = columns(resps);
    const all = rows(resps);
    table.tHead.innerHTML = `<tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
    table.tBodies[0].innerHTML = all
      .map(
        (r) =>
          `<tr data-alias="${esc(r.alias)}">${cols
            .map((c) => `<td data-col="${esc(c)}">${esc(r[c])}</td>`)
            .join('')}</tr>`,
      )
      .join('');
    empty.hidden = all.length > 0;
    const [r] = rows(await op('vlans/range'));
    if (r) range.textContent = `range ${r.min}–${r.max}, next ${r.next}`;
  } catch (e) {
    error.textContent = e.message;
  }
}

/** Submits `form` as the operation `words` with its fields as strings. */
function wire(form, words) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fields = Object.fromEntries(new FormData(form).entries());
    try {
      await op(words, args(fields));
      error.textContent = '';
      form.reset();
    } catch (e) {
      // The server's own words: `vlans add` says what is wrong with the input.
      error.textContent = e.message;
    }
    load();
  });
}

wire(document.getElementById('vlan-add'), 'vlans/add');
wire(document.getElementById('vlan-range'), 'vlans/range');
load();
setInterval(() => {
  if (!document.hidden) load();
}, 5000);
