// Small DOM helpers: h() makes elements (text is always text, never HTML),
// badges, numbers, and SVG line charts for the live views.

/** h('a', { href: '#/x', onclick }, 'text', child…): an element; children may be strings, nodes, arrays or null. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/** Replaces an element's children; like h(), skips null and flattens arrays. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function badge(text, kind = 'neutral', title) {
  return h('span', { class: `badge badge-${kind}`, title }, text);
}

// the registry's statuses (PLUGIN_STATUSES); anything else shows neutral
const STATUS_KIND = { active: 'ok', inactive: 'neutral', error: 'bad', loading: 'neutral' };
export const statusBadge = (status) => badge(status, STATUS_KIND[status] ?? 'neutral');

const SIGNATURE = {
  trusted: ['signed', 'ok', 'Signed by a key the trust store holds'],
  unsigned: ['unsigned', 'warn', 'No signature (accepted because unsigned plugins are allowed)'],
  untrusted: ['untrusted key', 'warn', 'Signed by a key the trust store does not hold'],
  invalid: ['invalid signature', 'bad', 'A signature or checksum does not verify, or the key is revoked'],
  builtin: ['built-in', 'neutral', 'Ships with DataBridge'],
};
export function signatureBadge(sig) {
  const [text, kind, title] = SIGNATURE[sig?.state] ?? ['unknown', 'neutral', ''];
  return badge(
    sig?.state === 'trusted' && sig.publisher ? `signed · ${sig.publisher}` : text,
    kind,
    sig?.keyId ? `${title} (key ${sig.keyId.slice(0, 12)}…)` : title,
  );
}

const MODE_TITLE = {
  process: 'Runs in a child process confined by the OS (bubblewrap, cgroups)',
  worker:
    'Runs in a worker thread because the operator trusts it: fault, heap and deadline containment, not a security boundary',
  inline: 'Runs on the host’s thread because the operator trusts it (or it is built in): no sandbox',
};
export const modeBadge = (mode) =>
  badge(mode, mode === 'inline' ? 'neutral' : 'info', MODE_TITLE[mode] ?? `Runs ${mode}`);

/**
 * A plugin's mode and what holds it: `process · full` (confined), `process ·
 * none` (refused, or weak where the operator accepted it), `worker · trusted`.
 */
export function isolationBadge(plugin) {
  const c = plugin.confinement;
  if (!c) return modeBadge(plugin.isolation);
  const kind = c.level === 'full' ? 'ok' : c.level === 'trusted' ? 'neutral' : 'bad';
  const text = `${plugin.isolation} · ${c.level === 'trusted' ? 'trusted' : c.level}${c.weak ? ' (weak)' : ''}`;
  const title = `${MODE_TITLE[plugin.isolation] ?? ''}. ${c.summary}`;
  return h('span', { class: `badge badge-${kind}`, title, dataset: { isolation: plugin.isolation } }, text);
}

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

export const num = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en'));

/** A count with its noun, singular for one: `plural(1, 'time')` is "1 time", `plural(3, 'time')` "3 times". */
export const plural = (n, one, many = `${one}s`) => `${num(n)} ${n === 1 ? one : many}`;

export function time(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
}

const SVG = 'http://www.w3.org/2000/svg';

/**
 * A line chart of `points` ([{t, v}]), newest on the right, scaled to its
 * max (or `max`); labelled for screen readers with its latest value. Until
 * it has two values to draw a line between, it says why (`empty`).
 */
export function lineChart(title, points, { format = (v) => String(v), max, empty = 'No samples yet.' } = {}) {
  const w = 300;
  const hgt = 80;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  const latest = points.at(-1)?.v;
  const values = points.map((p) => p.v).filter((v) => v !== null && v !== undefined);
  svg.setAttribute('aria-label', `${title}: ${latest === undefined || latest === null ? empty : format(latest)}`);
  const top = Math.max(max ?? 0, ...values, 1e-9);
  if (values.length > 1) {
    const t0 = points[0].t;
    const span = Math.max(points.at(-1).t - t0, 1);
    const d = points
      .filter((p) => p.v !== null && p.v !== undefined)
      .map((p, i) => {
        const x = ((p.t - t0) / span) * (w - 2) + 1;
        const y = hgt - 2 - (p.v / top) * (hgt - 6);
        return `${i === 0 ? 'M' : 'L'}${x.toFixed(1)},${y.toFixed(1)}`;
      })
      .join(' ');
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  const none = latest === undefined || latest === null;
  return h(
    'figure',
    { class: 'chart-box' },
    h('figcaption', {}, title, none ? null : h('strong', {}, format(latest))),
    values.length > 1 ? svg : h('p', { class: 'chart-empty muted small' }, empty),
  );
}

/** A gauge: value over limit as a bar, with both written out. */
export function gauge(label, value, limit, format = num) {
  const ratio = value === null || value === undefined || !limit ? 0 : Math.min(value / limit, 1);
  const kind = ratio >= 0.9 ? 'bad' : ratio >= 0.7 ? 'warn' : 'ok';
  const fill = h('span');
  // set through the CSSOM: the console's CSP allows no inline style attributes
  fill.style.width = `${(ratio * 100).toFixed(1)}%`;
  return h(
    'div',
    { class: 'gauge' },
    h('div', { class: 'gauge-label' }, label, h('span', {}, `${format(value)} / ${limit ? format(limit) : '∞'}`)),
    h(
      'div',
      {
        class: `gauge-bar gauge-${kind}`,
        role: 'meter',
        'aria-label': label,
        'aria-valuemin': 0,
        'aria-valuemax': limit ?? 0,
        'aria-valuenow': value ?? 0,
      },
      fill,
    ),
  );
}

/** Shows a short message at the bottom; kind 'bad' for failures. */
export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  const el = h('div', { class: `toast toast-${kind}`, title: 'Click to dismiss', onclick: () => el.remove() }, message);
  box.append(el);
  // the newest few; the feed under Alerts & events keeps every alert
  while (box.children.length > 3) box.firstChild.remove();
  setTimeout(() => el.remove(), kind === 'bad' ? 8000 : 4000);
}

/** Says what failed, with its code (an error from the API, or the network's). */
export function failed(err) {
  toast(`${err.code ?? 'ERROR'}: ${err.message}`, 'bad');
}

/** A modal confirmation; resolves true when confirmed. Keyboard: Enter confirms, Escape cancels. */
export function confirmDialog(title, body, confirmLabel = 'Confirm') {
  return new Promise((resolve) => {
    const dialog = h(
      'dialog',
      { class: 'confirm', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title' }, title),
      h('div', {}, body),
      h(
        'form',
        { method: 'dialog', class: 'actions' },
        h('button', { value: 'cancel', type: 'submit' }, 'Cancel'),
        h('button', { value: 'ok', type: 'submit', class: 'danger' }, confirmLabel),
      ),
    );
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Findings as a table: code, severity, path, message. */
export function findingsTable(findings) {
  if (!findings?.length) return h('p', { class: 'muted' }, 'No findings.');
  return h(
    'table',
    { class: 'findings' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', {}, 'Code'), h('th', {}, 'Severity'), h('th', {}, 'Where'), h('th', {}, 'Message')),
    ),
    h(
      'tbody',
      {},
      findings.map((f) =>
        h(
          'tr',
          { class: `sev-${f.severity}` },
          h('td', {}, h('code', {}, f.code)),
          h('td', {}, f.severity),
          h('td', {}, f.path ?? f.pointer ?? ''),
          h('td', {}, f.message),
        ),
      ),
    ),
  );
}
