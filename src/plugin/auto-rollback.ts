/**
 * Auto-rollback: a freshly upgraded plugin is on probation. A sandbox
 * crash, timeout, memory kill or protocol violation, a failed
 * initialization, or `maxFailures` failed sessions within the probation
 * window, and the previous version (kept in `.previous/`) is put back, with
 * an alert and an audit entry.
 */

import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AlertCode } from '../alerts.ts';
import type { ManagerCore } from './core.ts';
import { type InstallOutcome, PREVIOUS } from './installer.ts';

/** Alerts that end a probation at once. */
const FATAL: ReadonlySet<AlertCode> = new Set<AlertCode>([
  'SANDBOX_CRASHED',
  'EXECUTION_TIMEOUT',
  'MEMORY_LIMIT',
  'SANDBOX_FAILED',
  'SANDBOX_PROTOCOL_VIOLATION',
  'PROCESSOR_INIT_FAILED',
]);

/** How the previous version is installed again (the manager's install). */
export type ReinstallFn = (
  dir: string,
  options: { force: boolean; actor: string },
) => Promise<{ outcome: InstallOutcome }>;

export class AutoRollback {
  readonly #core: ManagerCore;
  readonly #reinstall: ReinstallFn;
  readonly #probation = new Map<string, { version: string; end: () => void }>();

  constructor(core: ManagerCore, reinstall: ReinstallFn) {
    this.#core = core;
    this.#reinstall = reinstall;
  }

  /** Puts a freshly upgraded plugin on probation (when auto-rollback is on). */
  watch(id: string, version: string): void {
    const { enabled, probationMs, maxFailures } = this.#core.config.autoRollback;
    if (!enabled || probationMs === 0) return;
    this.#probation.get(id)?.end();
    let failures = 0;
    const off = this.#core.onAlert((alert) => {
      if (alert.plugin !== id) return;
      if (alert.code === 'PROCESSOR_FAILED') failures++;
      const why = FATAL.has(alert.code)
        ? `${alert.code}: ${alert.message}`
        : failures >= maxFailures
          ? `${failures} failed sessions: ${alert.message}`
          : null;
      if (why === null) return;
      end();
      void this.#rollBack(id, version, why).catch((err) =>
        this.#core.log.error({ plugin: id, err: (err as Error).message }, 'automatic rollback failed'),
      );
    });
    const timer = setTimeout(() => end(), probationMs);
    timer.unref();
    const end = () => {
      off();
      clearTimeout(timer);
      if (this.#probation.get(id)?.end === end) this.#probation.delete(id);
    };
    this.#probation.set(id, { version, end });
  }

  /** Ends every probation. */
  close(): void {
    for (const p of this.#probation.values()) p.end();
  }

  async #rollBack(id: string, badVersion: string, reason: string): Promise<void> {
    const core = this.#core;
    if (!core.isReady()) return;
    const previous = join(core.config.pluginDir, PREVIOUS, id);
    if (!existsSync(previous)) return;
    const copy = await mkdtemp(join(tmpdir(), 'databridge-rollback-'));
    try {
      // the install replaces .previous/ with the bad version: install from a copy of the good one
      await cp(previous, join(copy, id), { recursive: true });
      const { outcome } = await this.#reinstall(join(copy, id), { force: true, actor: 'auto-rollback' });
      await core.store().recordInstall({
        pluginId: id,
        version: outcome.version,
        digest: outcome.digest,
        action: 'rollback',
        actor: 'auto-rollback',
      });
      await core.audit.ok('auto-rollback', 'rollback', id, { from: badVersion, to: outcome.version, reason });
      core.raiseAlert({
        code: 'AUTO_ROLLBACK',
        plugin: id,
        processor: null,
        message: `${id} ${badVersion} was replaced by ${outcome.version} during its probation: ${reason}`,
      });
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  }
}
