/**
 * A counting limit: at most `max()` holders at once, the others waiting in
 * arrival order. `max` is asked on every acquire, so a limit changed
 * meanwhile holds from the next one. A woken waiter looks again before it
 * takes a place (one that arrived in between may have taken it).
 *
 * @example
 * const downloads = new Limiter(8);
 * await downloads.run(() => fetchOne(url));
 */
export class Limiter {
  readonly #max: () => number;
  #held = 0;
  readonly #waiters: (() => void)[] = [];

  constructor(max: number | (() => number)) {
    this.#max = typeof max === 'number' ? () => max : max;
  }

  /** Places held now. */
  get held(): number {
    return this.#held;
  }

  /** Waits for a place; returns its release (calling it again does nothing). */
  async acquire(): Promise<() => void> {
    while (this.#held >= this.#max()) await new Promise<void>((r) => this.#waiters.push(r));
    this.#held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#held--;
      this.#waiters.shift()?.();
    };
  }

  /** Runs `fn` in a place of its own. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
