/**
 * The plugin directory's watcher: a folder added, changed or removed by
 * hand is validated and loaded, reloaded or unloaded (debounced per
 * folder, under the plugin's lock), and written to the audit trail as the
 * `watcher`'s doing.
 */

import { existsSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import type { ManagerCore } from './core.ts';
import { MAX_DEPTH } from './files.ts';
import { errorCodes } from './findings.ts';
import { isReservedName } from './installer.ts';
import { refusedByVersionGuard } from './version-guard.ts';

export class PluginWatcher {
  readonly #core: ManagerCore;
  #watcher: FSWatcher | undefined;
  readonly #debounce = new Map<string, NodeJS.Timeout>();
  /** Plugin folder names that got another folder since they were last watched. */
  readonly #replaced = new Set<string>();

  constructor(core: ManagerCore) {
    this.#core = core;
  }

  start(): void {
    const { pluginDir: root, watchDebounceMs } = this.#core.config;
    const log = this.#core.log;
    this.#watcher = watch(root, {
      ignoreInitial: true,
      // as deep as a plugin's folders may nest, under the plugin's own folder: a file changed anywhere in it is seen
      depth: MAX_DEPTH + 1,
      ignored: (path) => {
        const first = relative(root, path).split(sep)[0] ?? '';
        return first !== '' && isReservedName(first);
      },
    });
    const changed = (name: string | undefined, replaced: boolean) => {
      if (!name || isReservedName(name)) return;
      clearTimeout(this.#debounce.get(name));
      if (replaced) this.#replaced.add(name);
      this.#debounce.set(
        name,
        setTimeout(() => {
          this.#debounce.delete(name);
          // the folder now at this name is another one: watch it, not the one moved away; changes made while the
          // new watch is being set up are not reported by it, so the folder is looked at once more when it is
          if (this.#replaced.delete(name)) {
            this.rewatch(join(root, name));
            setTimeout(() => changed(name, false), Math.max(500, watchDebounceMs)).unref();
          }
          void this.#folderChanged(name).catch((err) =>
            log.error({ plugin: name, err: (err as Error).message }, 'reload after a change failed'),
          );
        }, watchDebounceMs),
      );
    };
    this.#watcher.on('all', (_event, path) => changed(relative(root, path).split(sep)[0], false));
    // a folder renamed over another (an install's move, or by hand) keeps its name, so chokidar sees no change and
    // keeps watching the folder moved away; the plugin directory's own rename event says a name got a new folder
    this.#watcher.on('raw', (event, path, details) => {
      const watched = (details as { watchedPath?: string } | undefined)?.watchedPath;
      if (event === 'rename' && watched !== undefined && resolve(watched) === root && !path.includes(sep))
        changed(path, true);
    });
    this.#watcher.on('error', (err) =>
      log.error({ err: (err as Error).message }, 'watching the plugin directory failed'),
    );
  }

  /** Watches the folder now at `dir` in place of the one that was there. */
  rewatch(dir: string): void {
    const watcher = this.#watcher;
    if (!watcher) return;
    watcher.unwatch(dir);
    if (existsSync(dir)) watcher.add(dir);
  }

  /** Stops the pending reloads first, then the watching. */
  stopTimers(): void {
    for (const timer of this.#debounce.values()) clearTimeout(timer);
  }

  async close(): Promise<void> {
    this.stopTimers();
    await this.#watcher?.close();
  }

  /** A plugin folder was added, changed or removed. */
  async #folderChanged(name: string): Promise<void> {
    const core = this.#core;
    if (!core.isReady()) return;
    const { registry } = core;
    const dir = join(core.config.pluginDir, name);
    await core.withLock(name, async () => {
      if (!existsSync(dir)) {
        if (registry.has(name) && registry.get(name).source === 'external') {
          registry.unregister(name, { force: true });
          core.externals().forget(name);
          await core.audit.ok('watcher', 'unload', name);
          core.log.info({ plugin: name }, 'plugin folder removed; unloaded');
        }
        return;
      }
      const external = core.externals();
      const report = await external.validate(dir);
      const known = registry.has(name) && registry.get(name).status !== 'error';
      // an install (or a touch) that left the same bytes in place is no change
      if (known && report.digest !== null && report.digest === external.get(name)?.digest) return;
      const ok = await external.activate(dir, report, name);
      if (ok) {
        await core.audit.ok('watcher', 'reload', name, { digest: report.digest });
        // a folder put in place by hand on a cluster node is a release for every node
        await core.share(() => core.cluster()?.published(name), name);
      } else {
        const codes = errorCodes(external.get(name)?.findings ?? []);
        if (known)
          registry.setNotice(
            name,
            `the changed files were refused (${codes.join(', ')}); the loaded version keeps serving`,
          );
        await refusedByVersionGuard(core, name, 'watcher');
        await core.audit.refused('watcher', 'reload', name, { codes });
      }
    });
  }
}
