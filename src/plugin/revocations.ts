/**
 * The revocation watch: each running plugin whose key or release is
 * revoked is stopped at once (its sandbox closed, what it ran rolled back),
 * put in `error` with the code, alerted and audited; the flow stops its
 * processors and their queues keep what they hold.
 *
 * Revocations made where the manager does not hear of them (the CLI on the
 * same data directory, a one-shot command on a cluster's database) are
 * found by looking at the revocation lists every few seconds; a change seen
 * here (the API, the embedding program, another node's notification) is
 * acted on at once through `check()`.
 */

import { isAlertCode } from '../alerts.ts';
import type { ManagerCore } from './core.ts';
import type { ExternalPlugins } from './external.ts';
import { revocationFindings, revocationsFingerprint } from './guards.ts';

/** How often the revocation lists are looked at for changes this manager did not hear of. */
const REVOCATION_CHECK_MS = 2000;

export class RevocationWatch {
  readonly #core: ManagerCore;
  #timer: NodeJS.Timeout | undefined;
  #check: Promise<void> = Promise.resolve();

  constructor(core: ManagerCore) {
    this.#core = core;
  }

  async start(): Promise<void> {
    const core = this.#core;
    let seen = await revocationsFingerprint(core.store());
    this.#timer = setInterval(() => {
      void (async () => {
        const now = await revocationsFingerprint(core.store());
        if (now === seen) return;
        await this.check('trust-store');
        // seen only once acted on: a store that went away meanwhile (reported by /healthz) is tried again next time
        seen = now;
      })().catch((err) => core.log.debug({ err: (err as Error).message }, 'checking the revocation lists failed'));
    }, REVOCATION_CHECK_MS);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  /** Checks every running plugin against the revocation lists, one check at a time. */
  check(actor: string): Promise<void> {
    const run = this.#check.then(() => this.#withdrawEach(actor));
    this.#check = run.catch(() => {});
    return run;
  }

  async #withdrawEach(actor: string): Promise<void> {
    const core = this.#core;
    if (core.isClosed()) return;
    let external: ExternalPlugins;
    try {
      external = core.externals();
    } catch {
      return; // not started
    }
    // a sandbox replaced by an upgrade may still be finishing tasks of a revoked release: closed first, at once
    for (const { sandbox, release } of external.retiring()) {
      const findings = await revocationFindings(core.store(), release);
      if (findings.length === 0) continue;
      await sandbox.close();
      core.log.warn(
        { plugin: release.id, version: release.version, actor },
        'revoked release’s retiring sandbox stopped',
      );
    }
    let failed: unknown = null;
    for (const release of external.running()) {
      // one plugin that cannot be stopped (the store went away mid-way) does not keep the others running
      await this.#withdrawOne(external, release.id, actor).catch((err) => {
        failed = err;
        core.log.error({ plugin: release.id, err: (err as Error).message }, 'stopping a revoked plugin failed');
      });
    }
    if (failed) throw failed;
  }

  /** Stops one plugin if the release it runs is revoked (under its lock: a reload or install may swap it meanwhile). */
  async #withdrawOne(external: ExternalPlugins, id: string, actor: string): Promise<void> {
    const core = this.#core;
    const running = external.running().find((r) => r.id === id);
    if (!running || (await revocationFindings(core.store(), running)).length === 0) return;
    await core.withLock(id, async () => {
      const current = external.running().find((r) => r.id === id);
      const findings = current ? await revocationFindings(core.store(), current) : [];
      if (!current || findings.length === 0 || !(await external.withdraw(id, findings))) return;
      for (const f of findings) {
        // the lists' findings are KEY_REVOKED and RELEASE_REVOKED, both alert codes
        if (!isAlertCode(f.code)) continue;
        core.raiseAlert({
          code: f.code,
          plugin: id,
          processor: null,
          message: `${id} ${current.version} was stopped: ${f.message}`,
        });
      }
      await core.audit.ok(actor, 'withdraw', id, {
        version: current.version,
        keyId: current.keyId,
        codes: findings.map((f) => f.code),
        reason: findings[0]!.message,
      });
      core.log.warn({ plugin: id, version: current.version, actor }, 'revoked plugin stopped');
    });
  }
}
