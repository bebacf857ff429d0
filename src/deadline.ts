/** Deadlines: one way to give a promise a time limit. */

/**
 * Settles as `work` does, or rejects with `message` once `ms` have passed
 * first; the timer is cleared either way (it never keeps the process up).
 * The work itself is not stopped: whoever gave it must end it when that
 * matters (a sandbox is killed, a child process too).
 *
 * @example
 * const mod = await withDeadline(import(url), 10_000, 'loading the entry module did not finish within 10000 ms');
 */
export function withDeadline<T>(work: T | PromiseLike<T>, ms: number, message: string): Promise<Awaited<T>> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    Promise.resolve(work).finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]) as Promise<Awaited<T>>;
}

/**
 * Resolves once `done()` holds, asking every `pollMs`, or once `timeoutMs`
 * have passed (whichever comes first; it never rejects). For counters that
 * fall on their own, such as tasks in flight, each within its deadline.
 */
export async function pollUntil(
  done: () => boolean,
  pollMs: number,
  timeoutMs = Number.POSITIVE_INFINITY,
): Promise<void> {
  const start = Date.now();
  while (!done() && Date.now() - start < timeoutMs) await new Promise((r) => setTimeout(r, pollMs));
}

/**
 * How long to wait before attempt `n` after `n` failures in a row: `baseMs`
 * doubled per failure after the first, at most `capMs`.
 *
 * @example
 * backoffMs(3, 250, 30_000); // 1000
 */
export function backoffMs(failures: number, baseMs: number, capMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, failures - 1), capMs);
}
