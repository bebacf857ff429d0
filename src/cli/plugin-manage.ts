/**
 * `databridge plugin install|uninstall|enable|disable|reload`: through the
 * server that holds the data directory, else on the local data and plugin
 * directories (src/cli/remote.ts).
 */

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { isPluginId } from '../catalog/names.ts';
import { createError } from '../errors.ts';
import type { InstallOutcome } from '../plugin/installer.ts';
import { projectSource } from '../plugin/project.ts';
import type { PluginInfo } from '../plugin/types.ts';
import { cliActor, formatFindings, print, type StateOptions, withManager, withStateOptions } from './common.ts';
import { installFromCatalog, withCatalogOption } from './plugin-catalog.ts';
import { bundleOf } from './plugin-upload.ts';
import { changeState } from './remote.ts';

/** What the install line says it did. */
const DONE: Record<InstallOutcome['action'], string> = {
  install: 'installed',
  upgrade: 'upgraded to',
  downgrade: 'downgraded to',
  reinstall: 'reinstalled',
  rollback: 'rolled back to',
  uninstall: 'uninstalled',
};

interface ForceOptions extends StateOptions {
  force?: boolean;
}

export function registerPluginManagement(plugin: Command): void {
  withCatalogOption(
    withStateOptions(
      plugin
        .command('install')
        .description(
          'install a .tgz bundle or a plugin folder, or ID[@RANGE] from the catalogs with its dependencies, with every check the server makes',
        )
        .argument('<source...>', 'a .tgz bundle or a plugin folder; or plugin ids, each with an optional @range')
        .option(
          '--force',
          'allow a version below the highest installed, reinstall the same release, or break an installed plugin’s dependency range',
        ),
    ),
  ).action(async (sources: string[], opts: ForceOptions) => {
    const [source] = sources as [string];
    const path = resolve(source);
    // a name that is no file or folder here is a plugin id for the catalogs
    const looksLikeFile = /\.(tgz|tar\.gz)$/.test(source) || source.includes('/') || source.includes('\\');
    if (!existsSync(path) && !looksLikeFile && isPluginId(source.split('@')[0]!))
      return installFromCatalog(sources, opts);
    if (!existsSync(path)) throw createError('USAGE', { message: `${source} does not exist` });
    if (sources.length > 1) throw createError('USAGE', { message: 'one bundle or folder at a time' });
    if (projectSource(path))
      throw createError('USAGE', {
        message: `${source} is a plugin project (its source, not a plugin): pack it (databridge plugin pack ${source} --key <your.key>) and install the .tgz, or build it (databridge plugin build ${source}) and install ${join(source, 'dist')}`,
      });
    const { plugin: info, outcome } = await changeState(opts, 'plugin install', {
      server: async (client) =>
        (
          await client.call<{ plugin: PluginInfo; outcome: InstallOutcome }>(
            'POST',
            `/api/plugins/install${opts.force ? '?force=true' : ''}`,
            { bundle: await bundleOf(path) },
          )
        ).body,
      local: () => withManager(opts, (m) => m.install(path, { force: opts.force, actor: cliActor() })),
    });
    print(
      opts.json,
      { plugin: info, outcome },
      () =>
        `${formatFindings(outcome.findings)}${DONE[outcome.action]} ${outcome.id}@${outcome.version} (status ${info.status}${info.statusReason ? `: ${info.statusReason}` : ''})`,
    );
  });

  withStateOptions(
    plugin
      .command('uninstall')
      .description('remove an installed plugin (refused while enabled plugins depend on it)')
      .argument('<id>', 'the plugin id')
      .option('--force', 'remove it even though enabled plugins depend on it'),
  ).action(async (id: string, opts: ForceOptions) => {
    await changeState(opts, 'plugin uninstall', {
      server: async (client) => {
        await client.call('DELETE', `/api/plugins/${encodeURIComponent(id)}${opts.force ? '?force=true' : ''}`);
      },
      local: () => withManager(opts, (m) => m.uninstall(id, { force: opts.force, actor: cliActor() })),
    });
    print(opts.json, { uninstalled: id }, () => `uninstalled ${id}`);
  });

  for (const action of ['enable', 'disable'] as const) {
    const command = plugin
      .command(action)
      .description(
        action === 'enable' ? 'enable a plugin' : 'disable a plugin (refused while enabled plugins depend on it)',
      )
      .argument('<id>', 'the plugin id');
    if (action === 'disable') command.option('--force', 'disable it even though enabled plugins depend on it');
    withStateOptions(command).action(async (id: string, opts: ForceOptions) => {
      const info = await changeState(opts, `plugin ${action}`, {
        server: async (client) =>
          (
            await client.call<PluginInfo>(
              'PUT',
              `/api/plugins/${encodeURIComponent(id)}/${action}${opts.force ? '?force=true' : ''}`,
            )
          ).body,
        local: () =>
          withManager(opts, (m) =>
            action === 'enable'
              ? m.enable(id, { actor: cliActor() })
              : m.disable(id, { actor: cliActor(), force: opts.force }),
          ),
      });
      print(
        opts.json,
        info,
        () => `${action}d ${id} (status ${info.status}${info.statusReason ? `: ${info.statusReason}` : ''})`,
      );
    });
  }

  withStateOptions(
    plugin.command('reload').description('validate and load a plugin’s files again').argument('<id>', 'the plugin id'),
  ).action(async (id: string, opts: StateOptions) => {
    const info = await changeState(opts, 'plugin reload', {
      server: async (client) =>
        (await client.call<PluginInfo>('POST', `/api/plugins/${encodeURIComponent(id)}/reload`)).body,
      local: () => withManager(opts, (m) => m.reload(id, { actor: cliActor() })),
    });
    print(opts.json, info, () => `reloaded ${id}@${info.version} (status ${info.status})`);
  });
}
