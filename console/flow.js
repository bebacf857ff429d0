// The running flow: processors with their counts, and connections with
// their queues, refreshed live.

import { api } from './api.js';
import { badge, bytes, fill, h, num } from './dom.js';

export async function flowView(main) {
  const body = h('div');
  fill(main, h('h1', {}, 'Flow'), body);
  const render = async () => {
    const flow = await api('/flow');
    const processors = Object.values(flow.processors ?? {});
    if (processors.length === 0) {
      fill(body, h('p', { class: 'muted' }, 'No flow is running. Start the server with --flow <file> to run one.'));
      return;
    }
    const incoming = (id) => flow.connections.filter((c) => c.destination === id);
    fill(
      body,
      h(
        'ol',
        { class: 'flow' },
        processors.map((p) =>
          h(
            'li',
            { class: 'processor', dataset: { processor: p.id } },
            h(
              'div',
              { class: 'proc-head' },
              h('strong', {}, p.name),
              ' ',
              h('code', {}, p.type),
              ' ',
              badge(p.state, p.state === 'running' ? 'ok' : 'neutral'),
              p.errors ? [' ', badge(`${p.errors} errors`, 'bad', p.lastError ?? '')] : null,
            ),
            h(
              'div',
              { class: 'muted small' },
              `plugin ${p.pluginId} · in ${num(p.in)} · out ${num(p.out)} · ${bytes(p.bytesOut)} out · ${num(p.tasks)} tasks`,
            ),
            incoming(p.id).length
              ? h(
                  'ul',
                  { class: 'queues' },
                  incoming(p.id).map((c) =>
                    h(
                      'li',
                      { class: c.full ? 'full' : '' },
                      `from ${c.source} (${c.relationship}): `,
                      h('strong', { class: 'queued' }, num(c.queued)),
                      ` queued, ${bytes(c.queuedBytes)}`,
                      c.penalized ? `, ${num(c.penalized)} penalized` : '',
                      c.full ? ' — back-pressure' : '',
                    ),
                  ),
                )
              : null,
          ),
        ),
      ),
    );
  };
  await render();
  const timer = setInterval(() => void render().catch(() => {}), 1000);
  return { dispose: () => clearInterval(timer) };
}
