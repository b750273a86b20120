// console.js — the command language in the browser: each line goes to the command
// endpoint, the answer is printed as the CLI prints it (`Error (<host>): …`, then the
// rendered text), and the reply's namespace becomes the prompt's.

import { call } from '/static/api.js';

const out = document.getElementById('console-out');
const line = document.getElementById('console-line');
const prompt = document.getElementById('prompt');
let ns = document.body.dataset.ns || 'minimega';
const history = [];
let at = 0;

/** What `ferromega -e` prints for the batches of a reply. */
function format(batches) {
  let text = '';
  for (const b of batches || []) {
    for (const r of b.resp || []) if (r.error) text += `Error (${r.host}): ${r.error}\n`;
    if (b.rendered) text += `${b.rendered}\n`;
  }
  return text;
}

function print(text, cls) {
  const span = document.createElement('span');
  if (cls) span.className = cls;
  span.textContent = text;
  out.appendChild(span);
  out.scrollTop = out.scrollHeight;
}

document.getElementById('console-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const cmd = line.value.trim();
  if (!cmd) return;
  history.push(cmd);
  at = history.length;
  line.value = '';
  print(`${ns}$ ${cmd}\n`, 'echo');
  try {
    const reply = await call('POST', `/api/v1/namespaces/${encodeURIComponent(ns)}/command`, {
      command: cmd,
    });
    print(format(reply.batches), 'answer');
    ns = reply.namespace || ns;
    prompt.textContent = `${ns}$`;
  } catch (e) {
    print(`Error: ${e.message}\n`, 'error');
  }
});

line.addEventListener('keydown', (ev) => {
  if (ev.key === 'ArrowUp' && at > 0) line.value = history[--at];
  else if (ev.key === 'ArrowDown' && at < history.length) line.value = history[++at] || '';
  else return;
  ev.preventDefault();
});
