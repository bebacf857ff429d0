/**
 * The audit trail: who changed what, and whether it was done or refused.
 * Every change the manager and its jobs make (install, enable, reload, a
 * watcher's reload, a withdrawal, an automatic rollback) is written here.
 */

import type { StateStore } from '../store/types.ts';

export type AuditDetails = Record<string, unknown> | null;

export class AuditTrail {
  readonly #store: () => StateStore;

  constructor(store: () => StateStore) {
    this.#store = store;
  }

  /** A change that was made. */
  async ok(actor: string, action: string, target: string, details: AuditDetails = null): Promise<void> {
    await this.#store().appendAudit({ actor, action, target, result: 'ok', details });
  }

  /** A change that was refused, with what says why. */
  async refused(actor: string, action: string, target: string, details: AuditDetails): Promise<void> {
    await this.#store().appendAudit({ actor, action, target, result: 'refused', details });
  }

  /** Records a refused change (its error's code, and its findings' codes) and throws the error on. */
  async refusal(actor: string, action: string, target: string, err: unknown): Promise<never> {
    const e = err as { code?: string; details?: { findings?: { code: string }[] } | null };
    const findings = e.details?.findings?.map((f) => f.code);
    await this.refused(
      actor,
      action,
      target,
      findings ? { code: e.code ?? 'ERROR', findings } : { code: e.code ?? 'ERROR' },
    );
    throw err;
  }
}
