// api.js — the dashboard's one door to the server: the same JSON endpoints users script
// against (POST /api/v1/namespaces/{ns}/<words> with an Args body), the events
// WebSocket, and small page helpers (escaping, tables, toasts).

/** The namespace of this page. */
export const ns = document.body.dataset.ns || 'minimega';

function errorText(json) {
  if (json && Array.isArray(json.errors)) return json.errors.map((e) => e.error).join('\n');
  return '';
}

/** A request to the API; resolves to the parsed JSON, rejects with the server's error text. */
export async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!r.ok) throw new Error(errorText(json) || `${r.status} ${r.statusText}: ${text}`);
  return json;
}

/** Builds an Args body: strings, chosen keywords, lists. */
export function args(strings = {}, bools = {}, lists = {}) {
  return { strings, bools, lists };
}

function checked(resps) {
  const errs = (resps || []).filter((r) => r.error).map((r) => r.error);
  if (errs.length) throw new Error(errs.join('\n'));
  return resps || [];
}

/** Runs the operation `words` (`vm/start`) in namespace `space` (default: the page's). */
export async function op(words, body = args(), query = {}, space = ns) {
  const q = new URLSearchParams(query).toString();
  const path = `/api/v1/namespaces/${encodeURIComponent(space)}/${words}${q ? '?' + q : ''}`;
  return checked(await call('POST', path, body));
}

/** Runs an operation that lives outside namespaces (`namespace`, `file/list`). */
export async function globalOp(words, body = args()) {
  return checked(await call('POST', `/api/v1/${words}`, body));
}

/** The rows of tabular responses as objects `{host, <column>: cell}`. */
export function rows(resps) {
  const out = [];
  for (const r of resps) {
    for (const row of r.tabular || []) {
      const o = { host: r.host };
      (r.header || []).forEach((h, i) => {
        o[h] = row[i];
      });
      out.push(o);
    }
  }
  return out;
}

/** The columns of tabular responses, `host` first. */
export function columns(resps) {
  const h = resps.find((r) => r.header && r.header.length);
  return h ? ['host', ...h.header] : ['host'];
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** HTML-escapes a value for text and attributes. */
export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** Shows a message for a few seconds (errors stay longer). */
export function toast(msg, kind = 'error') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const el = document.createElement('div');
  el.className = `toast ${kind}`;
  el.textContent = msg;
  box.appendChild(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 3000);
}

/** `ws:` or `wss:` URL of a path on this server. */
export function wsUrl(path) {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

/**
 * Watches the events WebSocket: `onEvent` gets every event, starting with a snapshot on
 * each (re)connection. Reconnects with backoff (the server drops readers that lag).
 */
export function watchEvents(onEvent) {
  const live = document.getElementById('live');
  let delay = 500;
  const show = (text, cls) => {
    if (live) {
      live.textContent = text;
      live.className = `live ${cls}`;
    }
  };
  const connect = () => {
    const ws = new WebSocket(wsUrl('/api/v1/events'));
    ws.onopen = () => {
      delay = 500;
      show('live', 'on');
    };
    ws.onmessage = (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch (e) {
        console.error('bad event', e);
        return;
      }
      onEvent(ev);
    };
    ws.onclose = () => {
      show('offline', 'off');
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  };
  connect();
}

/** Compares table cells: numbers as numbers, the rest as text (`vm-2` < `vm-10`). */
export function compareCells(a, b) {
  return String(a ?? '').localeCompare(String(b ?? ''), undefined, { numeric: true });
}

/**
 * Keeps rows matching a filter: words match any cell; `col=value` matches one column
 * (substring), `col!=value` excludes; all terms must hold. Case-insensitive.
 */
export function matcher(filter) {
  const terms = filter
    .trim()
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .map((t) => {
      const m = t.match(/^([^=!]+)(!?=)(.*)$/);
      return m ? { col: m[1], neg: m[2] === '!=', val: m[3] } : { val: t };
    });
  if (!terms.length) return () => true;
  return (row, cols) =>
    terms.every((t) => {
      if (t.col) {
        const has = String(row[t.col] ?? '').toLowerCase().includes(t.val);
        return t.neg ? !has : has;
      }
      return cols.some((c) => String(row[c] ?? '').toLowerCase().includes(t.val));
    });
}
