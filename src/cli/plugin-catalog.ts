/** `databridge plugin search|info|outdated|update` and `plugin install ID[@RANGE]`: plugins from catalogs. */

import type { Command } from 'commander';
import { type CatalogInstallResult, createCatalog } from '../catalog/catalog.ts';
import { parseSpec } from '../catalog/names.ts';
import { catalogAddresses } from '../catalog/settings.ts';
import type { PluginManager } from '../plugin/manager.ts';
import {
  cliActor,
  formatFindings,
  oneLine,
  print,
  type StateOptions,
  table,
  withManager,
  withStateOptions,
} from './common.ts';
import { changeState, type ServerClient } from './remote.ts';

export interface CatalogOptions extends StateOptions {
  catalog?: string[];
  force?: boolean;
}

/** Adds `--catalog <url>` (repeatable). */
export function withCatalogOption(command: Command): Command {
  return command.option(
    '--catalog <url>',
    'an npm-compatible registry to use as a catalog (repeatable, asked in order; env DATABRIDGE_CATALOG, comma-separated; default the public npm registry)',
    (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
  );
}

function withCatalog<T>(
  opts: CatalogOptions,
  fn: (catalog: ReturnType<typeof createCatalog>, manager: PluginManager) => Promise<T>,
  readOnly = false,
) {
  const catalogs = catalogAddresses(opts.catalog);
  // a look (search, info, outdated) makes nothing where it is run: no ./data, no ./plugins
  return withManager(opts, (m) => fn(createCatalog(m, { catalogs }), m), { readOnly });
}

const DONE: Record<string, string> = {
  install: 'installed',
  upgrade: 'upgraded',
  downgrade: 'downgraded',
  reinstall: 'reinstalled',
};

/**
 * An install or update from the catalogs: through the server that holds the
 * data directory (with the catalogs the server is configured with; its
 * audit names the CLI's user), else on the state itself.
 */
function catalogChange(
  opts: CatalogOptions,
  command: string,
  path: string,
  plugins: readonly string[],
  local: () => Promise<CatalogInstallResult>,
): Promise<CatalogInstallResult> {
  return changeState(opts, command, {
    server: async (client: ServerClient) =>
      (
        await client.call<CatalogInstallResult>('POST', `${path}${opts.force ? '?force=true' : ''}`, {
          json: { plugins },
        })
      ).body,
    local,
  });
}

/** The text answer of an install or update. */
export function describeInstall(result: CatalogInstallResult): string {
  if (!result.installed.length) return 'nothing to install: everything asked for is installed and up to date';
  return result.installed
    .map(
      (m) =>
        `${DONE[m.action] ?? m.action} ${m.id}@${m.version}${m.previous && m.previous !== m.version ? ` (was ${m.previous})` : ''} from ${m.catalog}${m.signer ? `, signed by ${m.signer.publisher}` : ', unsigned'}`,
    )
    .join('\n');
}

/** `plugin install ID[@RANGE]…` from the catalogs (plugin-manage.ts sends ids here). */
export async function installFromCatalog(specs: readonly string[], opts: CatalogOptions): Promise<void> {
  const parsed = specs.map(parseSpec);
  const result = await catalogChange(opts, 'plugin install', '/api/catalog/install', specs, () =>
    withCatalog(opts, (c) => c.install(parsed, { force: opts.force, actor: cliActor() })),
  );
  print(opts.json, result, () => describeInstall(result));
}

export function registerPluginCatalog(plugin: Command): void {
  withCatalogOption(
    withStateOptions(
      plugin
        .command('search')
        .description('search the catalogs for plugins (packages with the keyword databridge-plugin)')
        .argument('[text]', 'words to look for in names and descriptions', ''),
    ),
  ).action(async (text: string, opts: CatalogOptions) => {
    const catalogs = catalogAddresses(opts.catalog);
    const hits = await withManager(opts, (m) => createCatalog(m, { catalogs }).search(text), { readOnly: true });
    print(opts.json, hits, () =>
      hits.length
        ? table(
            ['ID', 'VERSION', 'PUBLISHER', 'DESCRIPTION'],
            hits.map((h) => [h.id, h.version, h.publisher ?? '', h.description]),
          )
        : 'no plugins found',
    );
  });

  withCatalogOption(
    withStateOptions(
      plugin
        .command('info')
        .description(
          'a plugin’s releases in the catalogs, and the release an install would take, verified here (nothing is installed)',
        )
        .argument('<id[@range]>', 'the plugin id, optionally with a semver range'),
    ),
  ).action(async (spec: string, opts: CatalogOptions) => {
    const { id, range } = parseSpec(spec);
    const info = await withCatalog(opts, (c) => c.info(id, range), true);
    print(opts.json, info, () => {
      const verdict = info.check.valid
        ? info.check.signer
          ? `verifies: signed by ${info.check.signer.publisher} (key ${info.check.signer.keyId.slice(0, 16)}…)`
          : 'verifies (unsigned, allowed by policy)'
        : 'would be refused:';
      return [
        `${info.id} (${info.package} in ${oneLine(info.catalog)})`,
        oneLine(info.description),
        `installed: ${info.installed ?? 'no'}`,
        `releases: ${info.releases.map((r) => r.version).join(', ')}`,
        `${info.check.version} ${verdict}`,
        formatFindings(info.check.findings).trimEnd(),
      ]
        .filter(Boolean)
        .join('\n');
    });
  });

  withCatalogOption(
    withStateOptions(plugin.command('outdated').description('installed plugins with a newer release in the catalogs')),
  ).action(async (opts: CatalogOptions) => {
    const list = await withCatalog(opts, (c) => c.outdated(), true);
    print(opts.json, list, () =>
      list.length
        ? table(
            ['ID', 'INSTALLED', 'LATEST', 'CATALOG'],
            list.map((o) => [o.id, o.installed, o.latest, o.catalog]),
          )
        : 'every plugin is up to date',
    );
  });

  withCatalogOption(
    withStateOptions(
      plugin
        .command('update')
        .description(
          'update plugins to their newest release in the catalogs, with what those need (all outdated ones when no id is given)',
        )
        .argument('[ids...]', 'the plugins to update')
        .option('--force', 'update even if an installed plugin’s dependency range would no longer hold'),
    ),
  ).action(async (ids: string[], opts: CatalogOptions) => {
    const result = await catalogChange(opts, 'plugin update', '/api/catalog/update', ids, () =>
      withCatalog(opts, (c) => c.update(ids, { force: opts.force, actor: cliActor() })),
    );
    print(opts.json, result, () => describeInstall(result));
  });
}
