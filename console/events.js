// Alerts and events as they arrive from the server's event stream, with the
// alerts raised before the page opened.

import { api } from './api.js';
import { badge, fill, h, time } from './dom.js';

const feed = [];
const MAX = 300;
let listEl = null;

function describe(e) {
  if (e.type === 'alert')
    return [
      badge(e.data.code, 'bad'),
      ' ',
      h('strong', {}, e.data.plugin),
      e.data.processor ? ` (${e.data.processor})` : '',
      ': ',
      e.data.message,
    ];
  const p = e.data.plugin;
  const what = e.type.replace(/^plugin\./, '');
  return [
    badge(what, 'info'),
    ' ',
    h('strong', {}, e.data.pluginId ?? ''),
    p ? ` ${p.version} — ${p.status}${p.enabled ? '' : ', disabled'}` : '',
  ];
}

function row(e) {
  return h(
    'li',
    { class: `event event-${e.type === 'alert' ? 'alert' : 'plugin'}` },
    h('time', {}, time(e.data.at)),
    ' ',
    describe(e),
  );
}

/** Called for every event the app receives, whether or not this view is shown. */
export function recordEvent(e) {
  if (e.type === 'hello') return;
  feed.unshift(e);
  if (feed.length > MAX) feed.pop();
  listEl?.prepend(row(e));
  while (listEl && listEl.children.length > MAX) listEl.lastChild.remove();
}

export async function eventsView(main) {
  const live = new Set(feed.map((e) => e.seq));
  const earlier = (await api('/alerts?limit=100')).filter((a) => !live.has(a.seq));
  listEl = h('ol', { class: 'feed', id: 'feed', 'aria-live': 'polite' }, feed.map(row));
  fill(
    main,
    h('h1', {}, 'Alerts & events'),
    h('p', { class: 'muted' }, 'Live from the server: alerts, installs, reloads, status changes. Newest first.'),
    listEl,
    h('h2', {}, 'Alerts raised before this page opened'),
    earlier.length
      ? h(
          'ol',
          { class: 'feed' },
          earlier.map((a) => row({ type: 'alert', data: a })),
        )
      : h('p', { class: 'muted' }, 'None.'),
  );
  return {
    dispose: () => {
      listEl = null;
    },
  };
}
