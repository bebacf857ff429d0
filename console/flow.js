// The running flow: processors with their counts, connections with their
// queues, controller services and reporting tasks, refreshed live.

import { api } from './api.js';
import { badge, bytes, fill, h, num, plural } from './dom.js';

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
    const services = flow.controllerServices ?? [];
    const tasks = flow.reportingTasks ?? [];
    fill(
      body,
      services.length
        ? h(
            'section',
            { class: 'services' },
            h('h2', {}, 'Controller services'),
            h(
              'ul',
              {},
              services.map((s) =>
                h(
                  'li',
                  { dataset: { service: s.id } },
                  h('strong', {}, s.id),
                  ' ',
                  h('code', {}, s.type),
                  ' ',
                  badge(s.state, s.state === 'disabled' ? 'neutral' : 'ok'),
                  h('span', { class: 'muted small' }, ` plugin ${s.pluginId} · used by ${num(s.users)} running`),
                ),
              ),
            ),
          )
        : null,
      tasks.length
        ? h(
            'section',
            { class: 'reporting' },
            h('h2', {}, 'Reporting tasks'),
            h(
              'ul',
              {},
              tasks.map((r) =>
                h(
                  'li',
                  { dataset: { reportingTask: r.id } },
                  h('strong', {}, r.id),
                  ' ',
                  h('code', {}, r.type),
                  ' ',
                  badge(r.state, r.state === 'running' ? 'ok' : 'neutral'),
                  r.errors ? [' ', badge(plural(r.errors, 'error'), 'bad', r.lastError ?? '')] : null,
                  h(
                    'span',
                    { class: 'muted small' },
                    ` every ${num(r.periodMs / 1000)} s · ran ${plural(r.runs, 'time')}${r.lastRun ? ` · last ${new Date(r.lastRun).toLocaleTimeString()}` : ''}`,
                  ),
                ),
              ),
            ),
          )
        : null,
      h('h2', {}, 'Processors'),
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
              p.errors ? [' ', badge(plural(p.errors, 'error'), 'bad', p.lastError ?? '')] : null,
            ),
            h(
              'div',
              { class: 'muted small' },
              `plugin ${p.pluginId} · in ${num(p.in)} · out ${num(p.out)} · ${bytes(p.bytesOut)} out · ${plural(p.tasks, 'task')}`,
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
