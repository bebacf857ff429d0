/**
 * Installing, uninstalling and validating plugins for the manager: the
 * store's install history and the audit trail kept, the cluster told, an
 * upgrade put on probation. The steps of one install (checked, staged,
 * validated, moved in at once, loaded) are the installer's (installer.ts).
 */

import { statSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createError } from '../errors.ts';
import type { AutoRollback } from './auto-rollback.ts';
import { readBundle, writeEntries } from './bundle.ts';
import type { ManagerCore } from './core.ts';
import { type InstallContext, type InstallOutcome, install, removePluginFolder } from './installer.ts';
import type { PluginInfo } from './types.ts';
import { UNSIGNED_ACCEPTED, type UnsignedAcceptance, type ValidationReport } from './validator.ts';

export interface InstallOptions {
  actor?: string;
  force?: boolean;
  /** Plugins installed in the same set (a catalog install): the dependents guard leaves their ranges to the set. */
  together?: ReadonlySet<string>;
  /** The release a catalog named: a bundle whose manifest says another id or version is refused (MANIFEST_INVALID). */
  release?: { id: string; version: string };
}

export interface ValidateOptions {
  signatureOnly?: boolean;
  /** Past the rollback guard, as a forced install. */
  force?: boolean;
  /** Plugins (id → version) taken as installed: the other members of a set installed together. */
  assume?: ReadonlyMap<string, string>;
}

export class Installing {
  readonly #core: ManagerCore;
  readonly #rollback: AutoRollback;

  constructor(core: ManagerCore, rollback: AutoRollback) {
    this.#core = core;
    this.#rollback = rollback;
  }

  /** What the installer needs: where, the store, checks, loading, the per-plugin lock. */
  context(): InstallContext {
    const core = this.#core;
    const external = core.externals();
    return {
      pluginDir: core.config.pluginDir,
      store: core.store(),
      limits: core.config.bundleLimits,
      // a replica is what the cluster accepted: validated as a load, without a trial load or a dependency veto
      validate: (dir, o) =>
        o.replica ? external.validate(dir, { checkRollback: false }) : external.check(dir, { force: o.force }),
      activate: async (dir, report) => {
        await external.activate(dir, report, report.manifest!.id);
      },
      lock: (id, fn) => core.withLock(id, fn),
      installed: () => core.registry.list().filter((p) => p.source !== 'builtin'),
    };
  }

  /** See PluginManager.install. */
  async install(
    source: string | Buffer,
    options: InstallOptions = {},
  ): Promise<{ plugin: PluginInfo; outcome: InstallOutcome }> {
    const core = this.#core;
    const actor = options.actor ?? 'embed';
    const from = typeof source === 'string' && statSync(source).isDirectory() ? { folder: source } : { bundle: source };
    let outcome: InstallOutcome;
    let settled: { plugin: PluginInfo } | Error | null = null;
    // recorded, audited and read back inside the plugin's lock: an uninstall racing this install
    // comes after all of it, so the answer is the plugin as this install left it
    const settle = async (done: InstallOutcome) => {
      try {
        await core.store().recordInstall({
          pluginId: done.id,
          version: done.version,
          digest: done.digest,
          action: done.action,
          actor,
        });
        if (done.action === 'upgrade') this.#rollback.watch(done.id, done.version);
        // let in by --allow-unsigned: recorded for this release, so that every later load (and node) honours it
        const external = core.externals();
        const acceptedUnsigned = core.config.allowUnsigned && !external.get(done.id)?.signer;
        if (acceptedUnsigned) {
          const acceptance: UnsignedAcceptance = { actor, at: new Date().toISOString() };
          await core.store().saveScanResult(done.digest, UNSIGNED_ACCEPTED, acceptance);
          const record = external.get(done.id);
          if (record) record.acceptedUnsigned = acceptance;
        }
        await core.audit.ok(actor, 'install', done.id, {
          version: done.version,
          digest: done.digest,
          kind: done.action,
          force: options.force ?? false,
          ...(acceptedUnsigned ? { acceptedUnsigned: true } : {}),
        });
        core.log.info({ plugin: done.id, version: done.version, actor }, `plugin ${done.action}`);
        settled = { plugin: core.registry.get(done.id) };
      } catch (err) {
        // the plugin is in: a failure of the bookkeeping is not a refused install
        settled = err as Error;
      }
    };
    try {
      // a store that is away refuses the change before anything moves
      await core.store().ping();
      const { force, together, release } = options;
      outcome = await install(this.context(), from, { force, together, release }, settle);
    } catch (err) {
      return core.audit.refusal(actor, 'install', typeof source === 'string' ? source : '(upload)', err);
    }
    const result = settled as { plugin: PluginInfo } | Error | null;
    if (result instanceof Error || !result) throw result ?? createError('INTERNAL', {});
    // outside the lock: when another node's higher version won, publishing installs that one here, under the lock
    await core.share(() => core.cluster()?.published(outcome.id), outcome.id);
    return { plugin: result.plugin, outcome };
  }

  /** See PluginManager.uninstall. */
  async uninstall(id: string, options: InstallOptions = {}): Promise<void> {
    const core = this.#core;
    const actor = options.actor ?? 'embed';
    await core.withLock(id, async () => {
      try {
        const info = core.registry.get(id);
        if (info.source === 'builtin') throw createError('PLUGIN_BUILTIN', { id, action: 'uninstall' });
        await core.store().ping();
        core.registry.unregister(id, { force: options.force });
      } catch (err) {
        return core.audit.refusal(actor, 'uninstall', id, err);
      }
      const store = core.store();
      const state = await store.getPluginState(id);
      await removePluginFolder(core.config.pluginDir, id);
      core.externals().forget(id);
      await store.savePluginState(id, { version: null });
      await store.recordInstall({
        pluginId: id,
        version: state?.version ?? '0.0.0',
        digest: null,
        action: 'uninstall',
        actor,
      });
      await core.audit.ok(actor, 'uninstall', id, options.force ? { force: true } : null);
      core.log.info({ plugin: id, actor }, 'plugin uninstalled');
      await core.share(() => core.cluster()?.removed(id), id);
    });
  }

  /** See PluginManager.validate. */
  async validate(target: string, options: ValidateOptions = {}): Promise<ValidationReport> {
    const external = this.#core.externals();
    // verify checks the signature only; validate what an install checks, a trial load included
    // (`assume`: plugins of a catalog set, counted as installed for the dependency check)
    const assumed = options.assume ? { installed: new Map([...external.installed(), ...options.assume]) } : {};
    const check = (dir: string) =>
      options.signatureOnly
        ? external.validate(dir, { checkRollback: false, signatureOnly: true })
        : external.check(dir, { force: options.force, ...assumed });
    if (statSync(target).isDirectory()) return check(target);
    const { entries, findings } = await readBundle(target, this.#core.config.bundleLimits);
    const empty = { manifest: null, files: [], digest: null, statement: null, signer: null };
    if (findings.length) return { valid: false, findings, ...empty };
    const work = await mkdtemp(join(tmpdir(), 'databridge-validate-'));
    try {
      // the trial load's sandbox runs as another uid: it must read the extracted files
      await chmod(work, 0o755);
      await writeEntries(join(work, 'plugin'), entries);
      return await check(join(work, 'plugin'));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** A release another cluster node published, installed here as a replica. */
  async replicate(bytes: Buffer, actor: string): Promise<void> {
    const outcome = await install(this.context(), { bundle: bytes }, { replica: true });
    await this.#core.audit.ok(actor, 'replicate', outcome.id, { version: outcome.version, digest: outcome.digest });
  }

  /** An uninstall another cluster node made: unloaded and its folder removed here (the shared state is that node's). */
  async removeReplica(id: string): Promise<void> {
    this.#core.registry.unregister(id, { force: true });
    await removePluginFolder(this.#core.config.pluginDir, id);
    this.#core.externals().forget(id);
  }
}
