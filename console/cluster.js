// The cluster: the state store, each node with what it runs, and per plugin
// the release the database holds, with the nodes that differ (drift)
// highlighted. Refreshed live; a node on its own (SQLite) says so.

import { api } from './api.js';
import { badge, confirmDialog, failed, fill, h, time, toast } from './dom.js';
import { session } from './session.js';

/** Forgets a node that no longer beats, after asking. */
async function forget(node, refresh) {
  const ok = await confirmDialog(
    `Forget ${node.id}?`,
    `${node.id} has not beaten since ${new Date(node.heartbeatAt).toLocaleString()}. It leaves the list; if it starts again it comes back and catches up.`,
    'Forget',
  );
  if (!ok) return;
  try {
    await api(`/cluster/nodes/${encodeURIComponent(node.id)}`, { method: 'DELETE' });
    toast(`Forgot ${node.id}`);
  } catch (err) {
    failed(err);
  }
  await refresh();
}

export async function clusterView(main) {
  const body = h('div');
  fill(main, h('h1', {}, 'Cluster'), body);
  const render = async () => {
    const c = await api('/cluster');
    const store = h(
      'p',
      { class: 'store', dataset: { up: String(c.store.up) } },
      'State store: ',
      h('code', {}, c.store.kind),
      ' ',
      h('span', { class: 'muted small' }, c.store.location),
      ' ',
      badge(c.store.up ? 'up' : 'down', c.store.up ? 'ok' : 'bad', c.store.error ?? ''),
      c.store.up ? null : h('span', { class: 'bad' }, ' — this node keeps running what it has and reconnects'),
    );
    if (!c.enabled) {
      fill(
        body,
        store,
        h(
          'p',
          { class: 'muted' },
          'This node runs on its own. Start nodes with --store postgres://… (or DATABRIDGE_STORE) to share plugins across machines.',
        ),
      );
      return;
    }
    const ids = Object.keys(c.plugins);
    const cell = (node, id) => {
      const runs = node.plugins[id];
      const drift = c.plugins[id].drift.includes(node.id);
      if (!runs) return h('td', { class: drift ? 'drift' : 'muted' }, drift ? 'missing' : '—');
      return h(
        'td',
        { class: drift ? 'drift' : '' },
        runs.version,
        ' ',
        badge(runs.enabled ? runs.status : 'disabled', runs.status === 'active' && runs.enabled ? 'ok' : 'neutral'),
      );
    };
    fill(
      body,
      store,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'cluster' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Node'),
              h('th', { scope: 'col' }, 'Address'),
              h('th', { scope: 'col' }, 'Version'),
              h('th', { scope: 'col' }, 'Heartbeat'),
              ids.map((id) =>
                h(
                  'th',
                  { scope: 'col' },
                  id,
                  h('div', { class: 'muted small' }, `cluster: ${c.plugins[id].version ?? 'none'}`),
                ),
              ),
            ),
          ),
          h(
            'tbody',
            {},
            c.nodes.map((n) =>
              h(
                'tr',
                { dataset: { node: n.id } },
                h('th', { scope: 'row' }, n.id, n.self ? h('span', { class: 'muted small' }, ' (this node)') : null),
                h('td', {}, n.address ?? '—'),
                h('td', {}, n.version),
                h(
                  'td',
                  {},
                  badge(n.alive ? 'alive' : 'silent', n.alive ? 'ok' : 'bad'),
                  ' ',
                  time(n.heartbeatAt),
                  n.alive || n.self || !session.can('admin')
                    ? null
                    : [' ', h('button', { type: 'button', class: 'link', onclick: () => forget(n, render) }, 'Forget')],
                ),
                ids.map((id) => cell(n, id)),
              ),
            ),
          ),
        ),
      ),
      ids.some((id) => c.plugins[id].drift.length)
        ? h(
            'p',
            { class: 'bad' },
            'Highlighted cells differ from what the database holds: those nodes are catching up, or failed to (see Alerts).',
          )
        : h('p', { class: 'muted' }, 'Every live node runs what the database holds.'),
    );
  };
  await render();
  const timer = setInterval(() => void render().catch(() => {}), 2000);
  return { dispose: () => clearInterval(timer) };
}
