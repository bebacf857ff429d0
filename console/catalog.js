// The Catalog page (search the catalogs, a plugin's releases, publisher and
// signature state, install with dependencies) and what the plugins pages
// show of updates: a badge in the table and an Update action.

import { api } from './api.js';
import { badge, failed, fill, findingsTable, h, toast } from './dom.js';
import { session } from './session.js';

/** Plugin id → the newer release the server's last look found. */
let updates = new Map();

/** Takes the server's update state (from /api/catalog/updates or a catalog.updates event). */
export function setUpdates(state) {
  updates = new Map((state?.updates ?? []).map((u) => [u.id, u]));
}

export async function loadUpdates() {
  setUpdates(await api('/catalog/updates').catch(() => null));
}

/** The "update available" badge of a plugin, or nothing. */
export function updateBadge(id) {
  const u = updates.get(id);
  return u ? badge(`update ${u.latest}`, 'warn', `${u.latest} is in ${u.catalog}; ${u.installed} is installed`) : null;
}

/** Refused: the code, the message and every finding, as a refused upload shows them. */
function refusal(title, err) {
  return [
    h(
      'div',
      { class: 'refused', role: 'alert' },
      h('h3', {}, title),
      h('p', {}, h('code', {}, err.code), ' ', err.message),
    ),
    findingsTable(err.details?.findings ?? []),
  ];
}

function installedList(answer) {
  if (!answer.installed.length) return h('p', { class: 'ok' }, 'Nothing to do: everything asked for is installed.');
  return h(
    'ul',
    { class: 'installed-set' },
    answer.installed.map((m) =>
      h(
        'li',
        {},
        `${m.action === 'install' ? 'Installed' : `${m.action[0].toUpperCase()}${m.action.slice(1)}d`} ${m.id} ${m.version}`,
        m.previous && m.previous !== m.version ? ` (was ${m.previous})` : '',
        m.signer ? `, signed by ${m.signer.publisher}` : ', unsigned',
      ),
    ),
  );
}

/** The Update action of a plugin's page (admin), when the last look found a newer release. */
export function updateButton(id, out, onChange) {
  const u = updates.get(id);
  if (!u || !session.can('admin')) return null;
  return h(
    'button',
    {
      type: 'button',
      id: 'update',
      onclick: async () => {
        fill(out, h('p', {}, `Updating ${id} to ${u.latest}…`));
        try {
          const answer = await api('/catalog/update', { method: 'POST', body: { plugins: [id] } });
          fill(out, installedList(answer));
          updates.delete(id);
          toast(`Updated ${id}`);
          onChange();
        } catch (err) {
          fill(out, ...refusal(`Updating ${id} was refused`, err));
        }
      },
    },
    `Update to ${u.latest}`,
  );
}

async function showInfo(panel, id) {
  fill(panel, h('p', {}, `Reading ${id} from the catalog and verifying its release…`));
  let info;
  try {
    info = await api(`/catalog/plugins/${encodeURIComponent(id)}`);
  } catch (err) {
    fill(panel, ...refusal(`${id} could not be read`, err));
    return;
  }
  const out = h('div', { class: 'install-result', 'aria-live': 'polite' });
  const version = h(
    'select',
    { id: 'catalog-version', 'aria-label': 'Version' },
    info.releases.map((r) => h('option', { value: r.version }, r.deprecated ? `${r.version} (deprecated)` : r.version)),
  );
  const check = info.check;
  const verdict = check.valid
    ? check.signer
      ? badge(`signed by ${check.signer.publisher}`, 'ok', `key ${check.signer.keyId}`)
      : badge('unsigned (allowed here)', 'warn')
    : badge('would be refused', 'bad');
  fill(
    panel,
    h('h2', {}, info.id),
    h('p', {}, info.description),
    h(
      'dl',
      { class: 'kv' },
      h('dt', {}, 'Package'),
      h('dd', {}, h('code', {}, info.package), ' in ', info.catalog),
      h('dt', {}, 'Installed'),
      h('dd', {}, info.installed ?? 'no'),
      h('dt', {}, 'Publisher'),
      h('dd', {}, info.releases[0]?.publisher ?? '–'),
      h('dt', {}, 'Releases'),
      h('dd', {}, info.releases.map((r) => r.version).join(', ')),
      h('dt', {}, `Release ${check.version}`),
      h('dd', { id: 'catalog-verdict' }, verdict),
    ),
    check.findings.length ? findingsTable(check.findings) : null,
    session.can('admin')
      ? h(
          'div',
          { class: 'actions' },
          h('label', {}, 'Version ', version),
          h(
            'button',
            {
              type: 'button',
              id: 'catalog-install',
              onclick: async () => {
                const spec = `${info.id}@${version.value}`;
                fill(out, h('p', {}, `Installing ${spec} with its dependencies…`));
                try {
                  const answer = await api('/catalog/install', { method: 'POST', body: { plugins: [spec] } });
                  fill(out, installedList(answer));
                  toast(`Installed ${spec}`);
                } catch (err) {
                  fill(out, ...refusal(`${spec} was refused`, err));
                }
              },
            },
            'Install with dependencies',
          ),
        )
      : null,
    out,
  );
}

export async function catalogView(main) {
  const results = h('div', { class: 'table-wrap', id: 'catalog-results' });
  const panel = h('section', { class: 'catalog-info', id: 'catalog-info', 'aria-live': 'polite' });
  const input = h('input', {
    type: 'search',
    id: 'catalog-search',
    placeholder: 'words in a plugin’s name or description',
  });
  const run = async () => {
    fill(results, h('p', { class: 'muted' }, 'Searching…'));
    let answer;
    try {
      answer = await api(`/catalog/search?q=${encodeURIComponent(input.value)}`);
    } catch (err) {
      fill(results, ...refusal('The catalogs could not be searched', err));
      return;
    }
    if (!answer.results.length) {
      fill(results, h('p', { class: 'muted' }, `No plugin found in ${answer.catalogs.join(', ')}.`));
      return;
    }
    fill(
      results,
      h(
        'table',
        { class: 'plugins' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Plugin', 'Version', 'Publisher', 'Catalog'].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        h(
          'tbody',
          {},
          answer.results.map((r) =>
            h(
              'tr',
              { 'data-catalog-plugin': r.id },
              h(
                'td',
                {},
                h('button', { type: 'button', class: 'row-link', onclick: () => void showInfo(panel, r.id) }, r.id),
                h('div', { class: 'muted small' }, r.description),
              ),
              h('td', {}, r.version),
              h('td', {}, r.publisher ?? '–'),
              h('td', { class: 'muted small' }, r.catalog),
            ),
          ),
        ),
      ),
    );
  };
  await loadUpdates();
  const known = [...updates.values()];
  fill(
    main,
    h('h1', {}, 'Catalog'),
    known.length
      ? h('p', { class: 'updates-note' }, `Updates available: ${known.map((u) => `${u.id} ${u.latest}`).join(', ')}`)
      : null,
    h(
      'form',
      {
        class: 'filters',
        role: 'search',
        onsubmit: (e) => {
          e.preventDefault();
          void run().catch(failed);
        },
      },
      h('label', { class: 'filter grow' }, 'Search the catalogs', input),
      h('button', { type: 'submit', id: 'catalog-go' }, 'Search'),
    ),
    results,
    panel,
  );
  await run();
  return {};
}
