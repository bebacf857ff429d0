// The plugins table (search, filters, sort, install by picker or drop) and a
// plugin's detail view (manifest, components, permissions, dependencies,
// findings, history, live charts, actions).

import { ApiError, api } from './api.js';
import { loadUpdates, updateBadge, updateButton } from './catalog.js';
import {
  bytes,
  confirmDialog,
  failed,
  fill,
  findingsTable,
  h,
  isolationBadge,
  lineChart,
  num,
  plural,
  signatureBadge,
  statusBadge,
  toast,
} from './dom.js';
import { session } from './session.js';

const COLUMNS = [
  ['name', 'Plugin'],
  ['version', 'Version'],
  ['type', 'Type'],
  ['status', 'Status'],
  ['enabled', 'Enabled'],
  ['signature', 'Signature'],
  ['isolation', 'Isolation'],
];

/** What the table shows: kept across visits in this tab. */
const view = { q: '', type: '', tag: '', status: '', enabled: '', source: '', sort: 'name', dir: 1 };

function sortKey(p, key) {
  if (key === 'signature') return p.signature?.state ?? '';
  if (key === 'version')
    return p.version
      .split('.')
      .map((n) => n.padStart(6, '0'))
      .join('.');
  return String(p[key] ?? '').toLowerCase();
}

function select(label, key, options) {
  return h(
    'label',
    { class: 'filter' },
    label,
    h(
      'select',
      {
        'data-filter': key,
        onchange: (e) => {
          view[key] = e.target.value;
          void search();
        },
      },
      h('option', { value: '' }, 'any'),
      options.map((o) => h('option', { value: o, selected: view[key] === o }, o)),
    ),
  );
}

/** The filters, each a parameter of GET /api/plugins/search. */
const FILTERS = ['type', 'tag', 'status', 'enabled', 'source'];

/** Every plugin: the total shown, and where the filters' choices come from. */
let plugins = [];
/** What the server's search (the registry's, the one implementation) found for the query and filters. */
let found = [];
let searchSeq = 0;
let typing = null;
let tbody = null;
let countEl = null;
let headRow = null;

/** Asks the server for the plugins matching the query and filters, then shows them. */
async function search() {
  const seq = ++searchSeq;
  const params = new URLSearchParams();
  if (view.q.trim()) params.set('q', view.q.trim());
  for (const key of FILTERS) if (view[key]) params.set(key, view[key]);
  let result = plugins;
  try {
    if (params.size > 0) result = await api(`/plugins/search?${params}`);
  } catch (err) {
    failed(err);
    return;
  }
  // an answer to an older query arriving late is not shown
  if (seq !== searchSeq) return;
  found = result;
  renderRows();
}

/** The values a filter can take: those the plugins have. */
function choices(key) {
  const values = plugins.flatMap((p) => (key === 'tag' ? (p.tags ?? []) : [String(p[key])]));
  return [...new Set(values)].sort();
}

function renderRows() {
  if (!tbody) return;
  const shown = [...found].sort((a, b) => {
    const x = sortKey(a, view.sort);
    const y = sortKey(b, view.sort);
    return (x < y ? -1 : x > y ? 1 : 0) * view.dir || a.id.localeCompare(b.id);
  });
  fill(
    tbody,
    ...shown.map((p) =>
      h(
        'tr',
        { 'data-plugin': p.id },
        h(
          'td',
          {},
          h('a', { href: `#/plugins/${encodeURIComponent(p.id)}` }, p.name),
          h('div', { class: 'muted small' }, p.id, p.description ? ` — ${p.description}` : ''),
        ),
        // each cell names its column: on a narrow screen the header row is hidden and the cells fold into a card
        h('td', { 'data-label': 'Version' }, p.version, ' ', updateBadge(p.id)),
        h('td', { 'data-label': 'Type' }, p.type),
        h(
          'td',
          { 'data-label': 'Status' },
          statusBadge(p.status),
          p.statusReason ? h('div', { class: 'muted small' }, p.statusReason) : null,
        ),
        h('td', { 'data-label': 'Enabled' }, p.enabled ? 'yes' : 'no'),
        h('td', { 'data-label': 'Signature' }, signatureBadge(p.signature)),
        h('td', { 'data-label': 'Isolation' }, isolationBadge(p)),
      ),
    ),
  );
  if (shown.length === 0)
    tbody.append(h('tr', {}, h('td', { colspan: COLUMNS.length, class: 'muted' }, 'No plugin matches.')));
  countEl.textContent = `${shown.length} of ${plural(plugins.length, 'plugin')}`;
  for (const th of headRow.children) {
    const key = th.dataset.key;
    th.setAttribute('aria-sort', key === view.sort ? (view.dir > 0 ? 'ascending' : 'descending') : 'none');
  }
}

/** Sends a bundle to the server; shows the findings when it is refused. */
async function install(file, out, reload) {
  fill(out, h('p', {}, `Installing ${file.name}…`));
  const form = new FormData();
  form.append('bundle', file, file.name);
  let answer;
  try {
    answer = await api('/plugins/install', { method: 'POST', body: form });
  } catch (err) {
    fill(
      out,
      h(
        'div',
        { class: 'refused', role: 'alert' },
        h('h3', {}, `${file.name} was refused`),
        h('p', {}, h('code', {}, err.code), ' ', err.message),
      ),
      findingsTable(err.details?.findings ?? []),
    );
    return;
  }
  const { plugin, outcome } = answer;
  fill(out, h('p', { class: 'ok' }, `Installed ${plugin.id} ${plugin.version} (${outcome}).`));
  toast(`Installed ${plugin.id} ${plugin.version}`);
  await reload().catch(failed);
}

export async function pluginsView(main) {
  const result = h('div', { class: 'install-result', 'aria-live': 'polite' });
  const picker = h('input', {
    type: 'file',
    accept: '.tgz,.tar.gz,application/gzip',
    id: 'bundle-file',
    class: 'visually-hidden',
  });
  const reload = async () => {
    plugins = await api('/plugins');
    await search();
  };
  picker.addEventListener('change', () => {
    if (picker.files?.[0]) void install(picker.files[0], result, reload);
    picker.value = '';
  });
  const drop = h(
    'div',
    { class: 'dropzone', id: 'dropzone' },
    h('label', { for: 'bundle-file', class: 'button' }, 'Install a bundle…'),
    h('span', { class: 'muted' }, ' or drop a .tgz here'),
    picker,
  );
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer?.files?.[0];
    if (file) void install(file, result, reload);
  });

  [plugins] = await Promise.all([api('/plugins'), loadUpdates()]);
  headRow = h(
    'tr',
    {},
    COLUMNS.map(([key, label]) =>
      h(
        'th',
        { dataset: { key }, scope: 'col' },
        h(
          'button',
          {
            type: 'button',
            class: 'sort',
            onclick: () => {
              view.dir = view.sort === key ? -view.dir : 1;
              view.sort = key;
              renderRows();
            },
          },
          label,
        ),
      ),
    ),
  );
  tbody = h('tbody');
  countEl = h('span', { class: 'muted', id: 'plugin-count' });
  fill(
    main,
    h('h1', {}, 'Plugins'),
    // installing is the admin's
    session.can('admin') ? [drop, result] : null,
    h(
      'div',
      { class: 'filters', role: 'search' },
      h(
        'label',
        { class: 'filter grow' },
        'Search',
        h('input', {
          type: 'search',
          id: 'plugin-search',
          placeholder: 'id, name, tag, component…',
          value: view.q,
          oninput: (e) => {
            view.q = e.target.value;
            clearTimeout(typing);
            typing = setTimeout(() => void search(), 150);
          },
        }),
      ),
      select('Type', 'type', choices('type')),
      select('Tag', 'tag', choices('tag')),
      select('Status', 'status', choices('status')),
      select('Enabled', 'enabled', choices('enabled')),
      select('Source', 'source', choices('source')),
      countEl,
    ),
    h('div', { class: 'table-wrap' }, h('table', { class: 'plugins' }, h('thead', {}, headRow), tbody)),
  );
  await search();
  return {
    onEvent: (e) => {
      if (e.type.startsWith('plugin.')) void reload().catch(() => {});
      if (e.type === 'catalog.updates') renderRows();
    },
  };
}

function section(title, ...body) {
  return h('section', { class: 'card' }, h('h2', {}, title), ...body);
}

/** A component's kind in words, singular: each line names one component. */
const COMPONENT_KIND = {
  processors: 'processor',
  controllerServices: 'controller service',
  reportingTasks: 'reporting task',
};

/** An address naming no plugin: said plainly, with the way back. */
function pluginNotFound(main, id) {
  fill(
    main,
    h('h1', {}, 'No such plugin'),
    h(
      'p',
      { role: 'status' },
      'No plugin has the id ',
      h('code', {}, id),
      ' on this node: it may have been uninstalled, or the address is mistyped.',
    ),
    h('p', {}, h('a', { href: '#/plugins' }, '← All plugins')),
  );
  return {};
}

function kv(pairs) {
  return h(
    'dl',
    { class: 'kv' },
    pairs
      .filter(([, v]) => v !== null && v !== undefined && v !== '')
      .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
  );
}

/** What holds the plugin where it runs, in words (the operator's choice, the host's confinement). */
function isolationList(plugin) {
  const c = plugin.confinement;
  return kv([
    ['Mode', plugin.isolation],
    ['Level', c ? c.level : null],
    ['What holds', c ? c.summary : null],
    [
      'Missing',
      c?.missing?.length
        ? h(
            'ul',
            {},
            c.missing.map((m) => h('li', {}, m)),
          )
        : null,
    ],
    ['Weaker isolation', c?.weak ? 'accepted by the operator: this plugin is not confined as it should be' : null],
  ]);
}

/**
 * The permissions a manifest asks for. Only a process sandbox the OS
 * confines holds a plugin to them; a worker or inline plugin has the
 * host's reach whatever it declares.
 */
function permissionsList(p, plugin) {
  const confined = plugin.isolation === 'process' && plugin.confinement?.level === 'full';
  const items = [];
  if (p.fs?.read?.length) items.push(`read: ${p.fs.read.join(', ')}`);
  if (p.fs?.write?.length) items.push(`write: ${p.fs.write.join(', ')}`);
  if (p.network)
    items.push(
      'network access: the host’s network namespace, so besides TCP and UDP it can reach the host’s abstract Unix sockets (not its path sockets)',
    );
  if (p.childProcess) items.push('child processes');
  if (p.env?.length) items.push(`environment: ${p.env.join(', ')}`);
  if (items.length === 0) {
    return h(
      'p',
      {},
      confined
        ? 'None: its sandbox gives it no file system beyond its own folder, no network, no child processes and an empty environment.'
        : `None declared, but nothing holds it to that: a ${plugin.isolation} plugin runs with the host’s own access (trusted, not a security boundary${plugin.isolation === 'process' ? '; this host cannot confine it fully' : ''}).`,
    );
  }
  return h(
    'ul',
    {},
    items.map((i) => h('li', {}, i)),
  );
}

export async function pluginDetailView(main, id, onChange) {
  let plugin;
  let validation;
  try {
    [plugin, validation] = await Promise.all([
      api(`/plugins/${encodeURIComponent(id)}`),
      api(`/plugins/${encodeURIComponent(id)}/validation`),
      loadUpdates(),
    ]);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'PLUGIN_NOT_FOUND') return pluginNotFound(main, id);
    throw err;
  }
  const updateResult = h('div', { class: 'install-result', 'aria-live': 'polite' });
  const manifest = validation.manifest ?? {};
  const charts = h('div', { class: 'charts' }, h('p', { class: 'muted' }, 'Waiting for the first sample…'));
  const usage = h('div', { class: 'usage' });
  const rates = [];
  let last = null;

  const act = async (label, fn) => {
    try {
      await fn();
      toast(label);
      onChange();
    } catch (err) {
      failed(err);
    }
  };
  const actions = h(
    'div',
    { class: 'actions' },
    !session.can('operator')
      ? null
      : plugin.enabled
        ? h(
            'button',
            {
              type: 'button',
              id: 'disable',
              onclick: () =>
                act(`Disabled ${id}`, () => api(`/plugins/${encodeURIComponent(id)}/disable`, { method: 'PUT' })),
            },
            'Disable',
          )
        : h(
            'button',
            {
              type: 'button',
              id: 'enable',
              onclick: () =>
                act(`Enabled ${id}`, () => api(`/plugins/${encodeURIComponent(id)}/enable`, { method: 'PUT' })),
            },
            'Enable',
          ),
    // reloading is the operator's, uninstalling the admin's
    plugin.source === 'external' && session.can('operator')
      ? [
          h(
            'button',
            {
              type: 'button',
              id: 'reload',
              onclick: () =>
                act(`Reloaded ${id}`, () => api(`/plugins/${encodeURIComponent(id)}/reload`, { method: 'POST' })),
            },
            'Reload',
          ),
          !session.can('admin')
            ? null
            : h(
                'button',
                {
                  type: 'button',
                  id: 'uninstall',
                  class: 'danger',
                  onclick: async () => {
                    const dependents = validation.dependents ?? [];
                    const ok = await confirmDialog(
                      `Uninstall ${plugin.name}?`,
                      dependents.length
                        ? h(
                            'p',
                            {},
                            'These enabled plugins depend on it and will stop working: ',
                            h('strong', {}, dependents.join(', ')),
                            '.',
                          )
                        : h(
                            'p',
                            {},
                            `${id} ${plugin.version} will be removed from this node. No plugin depends on it.`,
                          ),
                      'Uninstall',
                    );
                    if (!ok) return;
                    try {
                      await api(`/plugins/${encodeURIComponent(id)}${dependents.length ? '?force=true' : ''}`, {
                        method: 'DELETE',
                      });
                      toast(`Uninstalled ${id}`);
                      location.hash = '#/plugins';
                    } catch (err) {
                      failed(err);
                    }
                  },
                },
                'Uninstall…',
              ),
        ]
      : null,
  );

  fill(
    main,
    h('p', {}, h('a', { href: '#/plugins' }, '← All plugins')),
    h(
      'h1',
      {},
      plugin.name,
      ' ',
      h('span', { class: 'muted' }, plugin.version),
      ' ',
      statusBadge(plugin.status),
      ' ',
      signatureBadge(plugin.signature),
      ' ',
      isolationBadge(plugin),
      ' ',
      updateBadge(id),
    ),
    plugin.statusReason ? h('p', { class: 'refused', role: 'alert' }, plugin.statusReason) : null,
    actions,
    plugin.source === 'external' ? [updateButton(id, updateResult, onChange), updateResult] : null,
    h(
      'div',
      { class: 'grid detail-grid' },
      h(
        'section',
        { class: 'card about' },
        h('h2', {}, 'About'),
        kv([
          ['Id', h('code', {}, plugin.id)],
          ['Type', plugin.type],
          ['Source', plugin.source],
          ['Publisher', plugin.publisher],
          ['Author', plugin.author],
          ['Description', plugin.description],
          ['Tags', (plugin.tags ?? []).join(', ')],
          ['Digest', validation.digest ? h('code', { class: 'small digest' }, validation.digest) : null],
          [
            'Signed by',
            validation.signer ? `${validation.signer.publisher} (key ${validation.signer.keyId.slice(0, 16)}…)` : null,
          ],
        ]),
      ),
      section(
        'Components',
        h(
          'ul',
          {},
          Object.entries(plugin.components ?? {}).flatMap(([kind, names]) =>
            names.map((n) =>
              h('li', {}, h('code', {}, n), ' ', h('span', { class: 'muted' }, COMPONENT_KIND[kind] ?? kind)),
            ),
          ),
        ),
      ),
      section('Isolation', isolationList(plugin)),
      section('Permissions requested', permissionsList(manifest.permissions ?? {}, plugin)),
      section(
        'Dependencies',
        Object.keys(plugin.dependencies ?? {}).length
          ? h(
              'ul',
              {},
              Object.entries(plugin.dependencies).map(([d, range]) =>
                h('li', {}, h('a', { href: `#/plugins/${encodeURIComponent(d)}` }, d), ` ${range}`),
              ),
            )
          : h('p', { class: 'muted' }, 'None.'),
        h('h3', {}, 'Dependents'),
        validation.dependents?.length
          ? h(
              'ul',
              {},
              validation.dependents.map((d) => h('li', {}, h('a', { href: `#/plugins/${encodeURIComponent(d)}` }, d))),
            )
          : h('p', { class: 'muted' }, 'None.'),
      ),
    ),
    section('Live', usage, charts),
    section('Validation findings', findingsTable(validation.findings)),
    section(
      'Install history',
      validation.history?.length
        ? h(
            'table',
            {},
            h(
              'thead',
              {},
              h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Action'), h('th', {}, 'Version'), h('th', {}, 'By')),
            ),
            h(
              'tbody',
              {},
              validation.history.map((e) =>
                h(
                  'tr',
                  {},
                  h('td', {}, new Date(e.at).toLocaleString()),
                  h('td', {}, e.action),
                  h('td', {}, e.version),
                  h('td', {}, e.actor),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No installs recorded (built-in or placed by hand).'),
    ),
    manifest && Object.keys(manifest).length
      ? section(
          'Manifest',
          // long lines scroll sideways; the box takes the focus so a keyboard can scroll it too
          h(
            'pre',
            { class: 'manifest', tabindex: '0', 'aria-label': 'manifest.json' },
            JSON.stringify(manifest, null, 2),
          ),
        )
      : null,
  );

  const poll = async () => {
    const s = await api(`/plugins/${encodeURIComponent(id)}/status`);
    const now = Date.now();
    if (last) rates.push({ t: now, v: Math.max(0, ((s.stats.flowFilesIn - last.in) / (now - last.t)) * 1000) });
    last = { t: now, in: s.stats.flowFilesIn };
    if (rates.length > 120) rates.shift();
    const history = (s.sandbox?.history ?? []).map((u) => ({ ...u, t: u.at }));
    fill(
      usage,
      kv([
        ['Sessions', num(s.stats.sessions)],
        ['FlowFiles in / out', `${num(s.stats.flowFilesIn)} / ${num(s.stats.flowFilesOut)}`],
        ['Bytes in / out', `${bytes(s.stats.bytesIn)} / ${bytes(s.stats.bytesOut)}`],
        ['Errors / rollbacks', `${num(s.stats.errors)} / ${num(s.stats.rollbacks)}`],
        [
          'Latency p50 / p99',
          s.stats.latencyMs.p50 === null ? '–' : `${s.stats.latencyMs.p50} / ${s.stats.latencyMs.p99} ms`,
        ],
        [
          'Sandbox',
          s.sandbox
            ? `${s.sandbox.mode}, ${s.sandbox.state}, ${plural(s.sandbox.restarts, 'restart')}`
            : 'none (runs inline)',
        ],
        ['Last crash', s.sandbox?.lastCrash ?? null],
      ]),
    );
    // an empty chart says why: too few samples yet, or a sandbox not started
    const noSamples =
      s.sandbox?.state === 'idle'
        ? 'No samples: the sandbox starts when the flow first sends it work.'
        : 'No samples yet: the host measures the sandbox every few seconds.';
    fill(
      charts,
      lineChart('FlowFiles/s', rates, {
        format: (v) => v.toFixed(1),
        empty: 'Measuring: a rate needs two readings, 2 s apart.',
      }),
      s.sandbox
        ? [
            lineChart(
              'CPU %',
              history.map((u) => ({ t: u.t, v: u.cpuPercent })),
              { format: (v) => `${v.toFixed(1)} %`, max: 100, empty: noSamples },
            ),
            lineChart(
              'Memory',
              history.map((u) => ({ t: u.t, v: u.memoryUsed })),
              { format: bytes, empty: noSamples },
            ),
            lineChart(
              'Tasks in flight',
              history.map((u) => ({ t: u.t, v: u.inFlight })),
              { format: String, max: s.sandbox.limits.maxConcurrentTasks, empty: noSamples },
            ),
          ]
        : h(
            'p',
            { class: 'muted' },
            'CPU, memory and task charts are for sandboxed plugins; this one runs on the host’s thread.',
          ),
    );
  };
  await poll();
  const timer = setInterval(() => void poll().catch(() => {}), 2000);
  return {
    dispose: () => clearInterval(timer),
    // a change made elsewhere (another tab, the CLI, another node) shows here; a removal leaves for the list
    onEvent: (e) => {
      if (!e.type.startsWith('plugin.') || e.data?.pluginId !== id) return;
      if (e.type === 'plugin.unregistered') location.hash = '#/plugins';
      else onChange();
    },
  };
}
