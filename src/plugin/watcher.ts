/**
 * The plugin directory's watcher: a folder added, changed or removed by
 * hand is validated and loaded, reloaded or unloaded (debounced per
 * folder, under the plugin's lock), and written to the audit trail as the
 * `watcher`'s doing.
 */

import { existsSync, lstatSync, type FSWatcher as NodeWatcher, readdirSync, watch as watchDir } from 'node:fs';
import { join, sep } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import type { ManagerCore } from './core.ts';
import { MAX_DEPTH } from './files.ts';
import { errorCodes } from './findings.ts';
import { isReservedName } from './installer.ts';
import { refusedByVersionGuard } from './version-guard.ts';

export class PluginWatcher {
  readonly #core: ManagerCore;
  /** The plugin directory itself: folders added, removed or renamed over one another. */
  #root: NodeWatcher | undefined;
  /** One watcher per plugin folder, made anew when another folder takes the name. */
  readonly #folders = new Map<string, FSWatcher>();
  readonly #debounce = new Map<string, NodeJS.Timeout>();
  /** Names whose folder was renamed away or in since their last look: watched anew at that look, once. */
  readonly #replaced = new Set<string>();
  #closed = false;

  constructor(core: ManagerCore) {
    this.#core = core;
  }

  start(): void {
    const root = this.#core.config.pluginDir;
    this.#closed = false;
    // the plugin directory's own entries: a folder added, removed, or renamed over another (an install's move, or by
    // hand). A folder renamed over another keeps its name, so only this rename says the name has a new folder; the
    // folder's own watcher followed the one moved away and is made anew. Node's watcher, not chokidar: chokidar shares
    // one OS watch per path between its instances, and the folders' watchers watch these paths too
    this.#root = watchDir(root, (event, name) => {
      if (name && !name.includes(sep) && !isReservedName(name)) this.#changed(name, event === 'rename');
    });
    this.#root.on('error', (err) => this.#failed(err));
    for (const entry of readdirSync(root, { withFileTypes: true }))
      if (entry.isDirectory() && !isReservedName(entry.name)) this.#watchFolder(entry.name, false);
  }

  /**
   * Watches the folder now named `name` in place of the one that was there. Changes made before the new watcher is
   * ready are not reported by it, so the folder is looked at once more when it is.
   */
  #rewatch(name: string): void {
    this.#unwatch(name);
    if (lstatSync(join(this.#core.config.pluginDir, name), { throwIfNoEntry: false })?.isDirectory())
      this.#watchFolder(name, true);
  }

  #watchFolder(name: string, relook: boolean): void {
    const watcher = watch(join(this.#core.config.pluginDir, name), {
      ignoreInitial: true,
      // as deep as a plugin's folders may nest: a file changed anywhere in it is seen
      depth: MAX_DEPTH,
    });
    this.#folders.set(name, watcher);
    // a watcher replaced meanwhile speaks no more for the name
    const changed = () => {
      if (this.#folders.get(name) === watcher) this.#changed(name, false);
    };
    watcher.on('all', changed);
    if (relook) watcher.once('ready', changed);
    watcher.on('error', (err) => this.#failed(err));
  }

  #unwatch(name: string): void {
    const watcher = this.#folders.get(name);
    if (!watcher) return;
    this.#folders.delete(name);
    void closeForGood(watcher);
  }

  /**
   * Something under `name` changed (`replaced`: a folder was renamed away from or into it): looked at once the
   * changes have settled, and a replaced name's folder watched anew then, once however many renames it took.
   */
  #changed(name: string, replaced: boolean): void {
    if (this.#closed) return;
    clearTimeout(this.#debounce.get(name));
    if (replaced) this.#replaced.add(name);
    this.#debounce.set(
      name,
      setTimeout(() => {
        this.#debounce.delete(name);
        if (this.#replaced.delete(name)) this.#rewatch(name);
        void this.#folderChanged(name).catch((err) =>
          this.#core.log.error({ plugin: name, err: (err as Error).message }, 'reload after a change failed'),
        );
      }, this.#core.config.watchDebounceMs),
    );
  }

  #failed(err: unknown): void {
    this.#core.log.error({ err: (err as Error).message }, 'watching the plugin directory failed');
  }

  /** Stops the pending reloads first, then the watching. */
  stopTimers(): void {
    this.#closed = true;
    for (const timer of this.#debounce.values()) clearTimeout(timer);
    this.#debounce.clear();
    this.#replaced.clear();
  }

  async close(): Promise<void> {
    this.stopTimers();
    this.#root?.close();
    this.#root = undefined;
    const folders = [...this.#folders.values()];
    this.#folders.clear();
    await Promise.all(folders.map(closeForGood));
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
        // the version guard first: a release whose own files were changed in place is stopped, and then must not be
        // said to keep serving (its reason says why it stopped)
        const withdrawn = await refusedByVersionGuard(core, name, 'watcher');
        if (known)
          registry.setNotice(
            name,
            withdrawn ? null : `the changed files were refused (${codes.join(', ')}); the loaded version keeps serving`,
          );
        await core.audit.refused('watcher', 'reload', name, { codes });
      }
    });
  }
}

/**
 * Closes a chokidar watcher so that it stays closed. chokidar 5 still handles the events in flight after `close()`,
 * and a file removed then (the folder being deleted) can make it `add()` the folder's parent "to watch for its
 * return", which reopens the watcher and holds an OS watch open for good. An `add` after closing is dropped.
 */
function closeForGood(watcher: FSWatcher): Promise<void> {
  watcher.add = () => watcher;
  return watcher.close();
}
