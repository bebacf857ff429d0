/**
 * The update watcher: asks the catalogs for newer releases of the installed
 * plugins at start and then on a schedule, keeps the last answer for
 * `/api/catalog/updates` and `/metrics`, and tells a listener when the set
 * of available updates changes. Off when the interval is 0 (an air-gapped
 * site, or a host that should never look outside).
 */

import type { Catalog, OutdatedPlugin } from './catalog.ts';

export interface UpdateState {
  /** When the catalogs were last asked (null: not yet). */
  checkedAt: string | null;
  /** The schedule in minutes; 0 when off. */
  intervalMinutes: number;
  updates: OutdatedPlugin[];
  /** Why the last check failed, if it did (the updates are then those of the check before). */
  error: { code: string; message: string } | null;
}

export class UpdateWatcher {
  readonly #catalog: Catalog;
  readonly #intervalMs: number;
  readonly #onChange: (state: UpdateState) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<UpdateState> | null = null;
  #state: UpdateState;

  constructor(catalog: Catalog, options: { intervalMs: number; onChange?: (state: UpdateState) => void }) {
    this.#catalog = catalog;
    this.#intervalMs = options.intervalMs;
    this.#onChange = options.onChange ?? (() => {});
    this.#state = { checkedAt: null, intervalMinutes: options.intervalMs / 60_000, updates: [], error: null };
  }

  get state(): UpdateState {
    return this.#state;
  }

  /** Checks now and then every interval (nothing when the interval is 0). */
  start(): void {
    if (this.#intervalMs <= 0 || this.#timer) return;
    void this.check();
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Asks the catalogs now (one check at a time: a second caller shares the first's answer). */
  check(): Promise<UpdateState> {
    this.#running ??= this.#check().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #check(): Promise<UpdateState> {
    const before = JSON.stringify(this.#state.updates);
    try {
      const updates = await this.#catalog.outdated();
      this.#state = { ...this.#state, checkedAt: new Date().toISOString(), updates, error: null };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      this.#state = {
        ...this.#state,
        checkedAt: new Date().toISOString(),
        error: { code: e.code ?? 'INTERNAL', message: e.message ?? String(err) },
      };
    }
    if (JSON.stringify(this.#state.updates) !== before) this.#onChange(this.#state);
    return this.#state;
  }

  /** Forgets an update once its plugin is at that version or gone (an install or update just happened). */
  settle(installed: ReadonlyMap<string, string>): void {
    const updates = this.#state.updates.filter((u) => installed.get(u.id) === u.installed);
    if (updates.length !== this.#state.updates.length) {
      this.#state = { ...this.#state, updates };
      this.#onChange(this.#state);
    }
  }
}
