// Namespaces: each running sandbox with its limits and live usage as
// gauges, and a form to edit its namespace's limits.

import { api } from './api.js';
import { badge, bytes, failed, fill, gauge, h, isolationBadge, num, toast } from './dom.js';
import { session } from './session.js';

const LIMITS = [
  ['maxMemoryMB', 'Memory (MB)'],
  ['maxCPUPercent', 'CPU (%)'],
  ['maxConcurrentTasks', 'Concurrent tasks'],
  ['maxFileHandles', 'File handles'],
  ['maxExecutionMS', 'Execution time (ms)'],
];

function editForm(sb, onSaved) {
  const inputs = LIMITS.map(([key, label]) =>
    h(
      'label',
      { class: 'limit' },
      label,
      h('input', { type: 'number', min: 1, step: 1, name: key, value: sb.limits[key] ?? '', required: true }),
    ),
  );
  const error = h('p', { class: 'bad', role: 'alert' });
  return h(
    'form',
    {
      class: 'limits-form',
      'aria-label': `Limits of ${sb.namespace}`,
      onsubmit: async (e) => {
        e.preventDefault();
        const form = new FormData(e.target);
        const limits = Object.fromEntries(LIMITS.map(([key]) => [key, Number(form.get(key))]));
        error.textContent = '';
        try {
          const path = `/namespaces/${encodeURIComponent(sb.namespace)}`;
          if (sb.defined) await api(path, { method: 'PUT', body: { limits } });
          else await api('/namespaces', { method: 'POST', body: { name: sb.namespace, limits } });
          toast(`Saved the limits of ${sb.namespace}`);
          onSaved();
        } catch (err) {
          error.textContent = `${err.code}: ${err.message}`;
        }
      },
    },
    inputs,
    h(
      'p',
      { class: 'muted small' },
      'CPU, tasks and execution time apply at once; memory and file handles when the sandbox next starts (reload the plugin).',
    ),
    error,
    h('button', { type: 'submit' }, 'Save limits'),
  );
}

export async function namespacesView(main) {
  const list = h('div', { class: 'namespaces' });
  fill(
    main,
    h('h1', {}, 'Namespaces'),
    h(
      'p',
      { class: 'muted' },
      'Each sandboxed plugin runs in the namespace named after it; limits come from that namespace (or the defaults) and are only narrowed by the plugin’s manifest.',
    ),
    list,
  );
  const editing = new Set();
  const render = async () => {
    const sandboxes = await api('/sandboxes');
    if (sandboxes.length === 0) {
      fill(list, h('p', { class: 'muted' }, 'No sandboxed plugin is loaded.'));
      return;
    }
    // cards of sandboxes that are gone go; the others are updated in place
    for (const card of [...list.children])
      if (!sandboxes.some((s) => s.namespace === card.dataset.namespace)) card.remove();
    for (const sb of sandboxes) {
      let card = list.querySelector(`[data-namespace="${CSS.escape(sb.namespace)}"]`);
      if (!card) {
        card = h('section', { class: 'card', dataset: { namespace: sb.namespace } });
        list.append(card);
      }
      const u = sb.usage ?? {};
      const gauges = h(
        'div',
        { class: 'gauges' },
        gauge(
          'Memory',
          u.memoryUsed ?? null,
          sb.limits.maxMemoryMB ? sb.limits.maxMemoryMB * 1024 * 1024 : null,
          bytes,
        ),
        gauge(
          'CPU %',
          u.cpuPercent === null || u.cpuPercent === undefined ? null : Math.round(u.cpuPercent),
          sb.limits.maxCPUPercent,
        ),
        gauge('Tasks in flight', sb.inFlight, sb.limits.maxConcurrentTasks),
        gauge('Handles', u.handles ?? null, sb.limits.maxFileHandles),
      );
      const head = h(
        'h2',
        {},
        sb.namespace,
        ' ',
        sb.isolation ? isolationBadge({ isolation: sb.mode, confinement: sb.isolation }) : badge(sb.mode, 'info'),
        ' ',
        badge(sb.state, sb.state === 'ready' ? 'ok' : sb.state === 'failed' ? 'bad' : 'neutral'),
        u.throttled ? [' ', badge('throttled', 'warn')] : null,
      );
      const meta = h(
        'p',
        { class: 'muted small' },
        `plugins: ${sb.plugins.join(', ')} · restarts ${num(sb.restarts)} · crashes ${num(sb.crashes)} · execution limit ${num(sb.limits.maxExecutionMS)} ms`,
        sb.defined ? '' : ' · default limits',
      );
      const isolation = sb.isolation
        ? h('p', { class: 'small', dataset: { isolation: sb.isolation.level } }, holds(sb.isolation))
        : null;
      // limits are the admin's to change
      const toggle = !session.can('admin')
        ? null
        : h(
            'button',
            {
              type: 'button',
              'aria-expanded': editing.has(sb.namespace),
              onclick: () => {
                if (editing.has(sb.namespace)) editing.delete(sb.namespace);
                else editing.add(sb.namespace);
                render().catch(failed);
              },
            },
            editing.has(sb.namespace) ? 'Close' : 'Edit limits',
          );
      // an open form is kept as it is (with what was typed) while the usage refreshes
      const form = editing.has(sb.namespace)
        ? (card.querySelector('form') ??
          editForm(sb, () => {
            editing.delete(sb.namespace);
            render().catch(failed);
          }))
        : null;
      fill(card, head, meta, isolation, gauges, toggle, form);
    }
  };
  await render();
  const timer = setInterval(() => void render().catch(() => {}), 2000);
  return { dispose: () => clearInterval(timer) };
}

/** What holds a sandbox, in words: `bwrap · cgroup v1 (memory, cpu, pids) · prlimit · network isolated`, and what is missing. */
function holds(i) {
  if (i.mode === 'worker') return `worker thread: ${i.summary}`;
  const c = i.holds.cgroup;
  const controllers = c ? ['memory', 'cpu', 'pids'].filter((k) => c[k]) : [];
  const parts = [
    i.holds.bwrap ? 'bwrap' : 'no bwrap',
    controllers.length ? `cgroup v${c.version} (${controllers.join(', ')})` : 'no cgroup',
    i.holds.prlimit ? 'prlimit' : 'no prlimit',
    `network ${i.holds.network}`,
  ];
  const missing = i.missing.length ? ` · missing: ${i.missing.join('; ')}` : '';
  return `${parts.join(' · ')}${i.weak ? ' · weaker isolation accepted' : ''}${missing}`;
}
