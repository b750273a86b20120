// files.js — the files directory: `file list` of the folder in `?path=`, downloads and
// uploads through /api/v1/files/<path>, `file delete` buttons.
//
// A path goes to the server as ONE encoded segment (`a%2Fb.iso`): the browser would
// otherwise resolve `..` itself, and the server must see — and refuse — what was typed.

import { globalOp, args, rows, esc } from '/static/api.js';

const dir = (new URLSearchParams(location.search).get('path') || '').replace(/^\/+|\/+$/g, '');
const table = document.getElementById('files');
const empty = document.getElementById('empty');
const error = document.getElementById('files-error');

const join = (...parts) => parts.filter(Boolean).join('/');
const fileUrl = (path) => `/api/v1/files/${encodeURIComponent(path)}`;
const folderUrl = (path) => `?path=${encodeURIComponent(path)}`;

function crumbs() {
  const parts = dir ? dir.split('/') : [];
  const links = [`<a href="${folderUrl('')}">files</a>`];
  parts.forEach((p, i) => links.push(`<a href="${folderUrl(parts.slice(0, i + 1).join('/'))}">${esc(p)}</a>`));
  document.getElementById('crumbs').innerHTML = links.join(' / ');
}

async function load() {
  try {
    const entries = rows(await globalOp('file/list', args({ path: dir })));
    entries.sort((a, b) => (b.dir ? 1 : 0) - (a.dir ? 1 : 0) || a.name.localeCompare(b.name));
    table.tBodies[0].innerHTML = entries
      .map((e) => {
        const path = join(dir, e.name);
        const name = e.dir
          ? `<a class="dir" href="${folderUrl(path)}">${esc(e.name)}/</a>`
          : `<a class="file" href="${fileUrl(path)}" download>${esc(e.name)}</a>`;
        return `<tr data-name="${esc(e.name)}"><td>${name}</td><td>${e.dir ? '' : esc(e.size)}</td>
          <td class="actions"><button type="button" data-del="${esc(path)}">delete</button></td></tr>`;
      })
      .join('');
    empty.hidden = entries.length > 0;
  } catch (e) {
    error.textContent = e.message;
  }
}

async function errorOf(r) {
  const text = await r.text();
  try {
    return JSON.parse(text).errors.map((e) => e.error).join('\n');
  } catch {
    return `${r.status} ${r.statusText}: ${text}`;
  }
}

document.getElementById('upload').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const file = document.getElementById('upload-file').files[0];
  if (!file) return;
  const name = document.getElementById('upload-name').value.trim() || file.name;
  const r = await fetch(fileUrl(join(dir, name)), { method: 'PUT', body: file });
  if (r.ok) {
    error.textContent = '';
    ev.target.reset();
  } else {
    error.textContent = await errorOf(r);
  }
  load();
});

table.addEventListener('click', async (ev) => {
  const b = ev.target.closest('button[data-del]');
  if (!b) return;
  try {
    await globalOp('file/delete', args({ file: b.dataset.del }));
    error.textContent = '';
  } catch (e) {
    error.textContent = e.message;
  }
  load();
});

crumbs();
load();
