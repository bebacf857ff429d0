/** Runs tasks one at a time per key, in the order they were asked for; tasks of different keys run side by side. */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` once every task queued before it under `key` has settled (a failed one does not stop the next). */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    const run = before.catch(() => {}).then(fn);
    this.#tails.set(key, run);
    try {
      return await run;
    } finally {
      if (this.#tails.get(key) === run) this.#tails.delete(key);
    }
  }

  /** Settles when every task queued so far has. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#tails.values()]);
  }
}
