/** `databridge plugin list`: the registered plugins, as a table or JSON. */

import type { Command } from 'commander';
import { createError } from '../errors.ts';
import type { PluginManager } from '../plugin/manager.ts';
import { PLUGIN_SOURCES, PLUGIN_STATUSES, PLUGIN_TYPES, type PluginInfo, type PluginQuery } from '../plugin/types.ts';
import { print, type StateOptions, table, withManager, withStateOptions } from './common.ts';
import { readState } from './remote.ts';

interface ListOptions extends StateOptions {
  search?: string;
  type?: string;
  tag?: string[];
  status?: string;
  source?: string;
  enabled?: boolean;
}

export function registerPluginList(plugin: Command): void {
  withStateOptions(
    plugin
      .command('list')
      .description('list registered plugins (built-in and installed)')
      .option('--search <text>', 'free-text search over id, name, description, tags')
      .option('--type <type>', `only this type (${PLUGIN_TYPES.join(', ')})`)
      .option('--tag <tag>', 'only plugins with this tag (repeatable)', (v: string, p: string[]) => [...p, v], [])
      .option('--status <status>', `only this status (${PLUGIN_STATUSES.join(', ')})`)
      .option('--source <source>', `only this source (${PLUGIN_SOURCES.join(', ')})`)
      .option('--enabled', 'only enabled plugins')
      .option('--disabled', 'only disabled plugins'),
  ).action(async (opts: ListOptions & { disabled?: boolean }) => {
    const query = toQuery(opts);
    // the server's registry where one holds the data directory (its live statuses); else a look that makes nothing
    const { plugins, isolation } = await readState(opts, {
      server: async (client) => ({
        plugins: (await client.call<PluginInfo[]>('GET', `/api/plugins/search${searchString(query)}`)).body,
        isolation: (await client.call<{ isolation: IsolationStatus }>('GET', '/healthz')).body.isolation,
      }),
      local: () =>
        withManager(opts, async (m) => ({ plugins: m.search(query), isolation: m.isolationStatus() }), {
          readOnly: true,
        }),
    });
    print(opts.json, plugins, () =>
      plugins.length === 0
        ? 'No plugins match.'
        : table(
            ['ID', 'VERSION', 'TYPE', 'SOURCE', 'ISOLATION', 'STATUS', 'ENABLED'],
            plugins.map((p) => [
              p.id,
              p.version,
              p.type,
              p.source,
              isolationCell(p),
              `${p.statusReason ? `${p.status} (${p.statusReason})` : p.status}${p.signature?.acceptedUnsigned ? `, unsigned: accepted at install by ${p.signature.acceptedUnsigned.actor}` : ''}`,
              p.enabled ? 'yes' : 'no',
            ]),
          ),
    );
    if (!opts.json && isolation.level !== 'full') {
      process.stderr.write(
        isolation.weakAccepted
          ? `warning: weaker isolation accepted: process sandboxes run with ${isolation.level} confinement; missing ${isolation.missing.join('; ')}\n`
          : `note: this host cannot confine process sandboxes fully (${isolation.level}): plugins that need one are refused with ISOLATION_UNAVAILABLE; missing ${isolation.missing.join('; ')}\n`,
      );
    }
  });
}

type IsolationStatus = ReturnType<PluginManager['isolationStatus']>;

/** The API's query string for a search. */
function searchString(query: PluginQuery): string {
  const params = new URLSearchParams();
  if (query.text) params.set('q', query.text);
  if (query.type) params.set('type', query.type);
  for (const tag of query.tags ?? []) params.append('tag', tag);
  if (query.status) params.set('status', query.status);
  if (query.source) params.set('source', query.source);
  if (query.enabled !== undefined) params.set('enabled', String(query.enabled));
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** `process (full)`, `process (none, weak)`, `worker (trusted)`. */
function isolationCell(p: PluginInfo): string {
  const c = p.confinement;
  if (!c) return p.isolation;
  return `${p.isolation} (${c.level}${c.weak ? ', weak' : ''})`;
}

function toQuery(opts: ListOptions & { disabled?: boolean }): PluginQuery {
  const check = <T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined => {
    if (value === undefined) return undefined;
    if (!allowed.includes(value as T)) {
      throw createError('USAGE', { message: `--${name} must be one of ${allowed.join(', ')}, not "${value}"` });
    }
    return value as T;
  };
  if (opts.enabled && opts.disabled)
    throw createError('USAGE', { message: '--enabled and --disabled exclude each other' });
  return {
    text: opts.search,
    type: check('type', opts.type, PLUGIN_TYPES),
    tags: opts.tag,
    status: check('status', opts.status, PLUGIN_STATUSES),
    source: check('source', opts.source, PLUGIN_SOURCES),
    enabled: opts.enabled ? true : opts.disabled ? false : undefined,
  };
}
