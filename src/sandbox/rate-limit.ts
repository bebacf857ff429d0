/**
 * What a sandbox can make the host write to its log: a token bucket per
 * source (a sandbox's log messages, its stderr, its stdout), lines cut to a
 * length, and what is dropped counted and said in one line a second at
 * most. A sandbox decides how much it writes; the host decides how much of
 * it it logs.
 */

/** Log messages a sandbox may have written per second, on average, and at once. */
export const LOG_MESSAGES_PER_SECOND = 100;
export const LOG_MESSAGES_BURST = 200;
/** Lines of a sandbox's stderr or stdout logged per second, on average, and at once (each stream). */
export const OUTPUT_LINES_PER_SECOND = 50;
export const OUTPUT_LINES_BURST = 100;
/** The longest line of a sandbox's stderr or stdout logged: the rest is cut and counted. */
export const OUTPUT_LINE_BYTES = 8 * 1024;

/**
 * A token bucket: `take()` says whether one more may pass. What is refused
 * is counted, and `onDropped(n)` is called once, a second after the first
 * refusal, with how many were refused in between (a timer that keeps
 * nothing alive).
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #onDropped: (dropped: number) => void;
  #tokens: number;
  #at = performance.now();
  #dropped = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(perSecond: number, burst: number, onDropped: (dropped: number) => void) {
    this.#rate = perSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#onDropped = onDropped;
  }

  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate);
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    this.#dropped++;
    this.#timer ??= setTimeout(() => this.flush(), 1000).unref();
    return false;
  }

  /** Says now how many were dropped, if any (the sandbox is gone). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const n = this.#dropped;
    this.#dropped = 0;
    if (n > 0) this.#onDropped(n);
  }
}

/**
 * Splits a stream of a sandbox's output into lines for the host's log:
 * each cut to OUTPUT_LINE_BYTES (a note says how much was cut), at most
 * OUTPUT_LINES_PER_SECOND of them, and a line "dropped N lines" for the
 * rest. Never holds more than one cut line.
 */
export function readLines(stream: NodeJS.ReadableStream | null, fn: (line: string) => void): void {
  if (!stream) return;
  const bucket = new TokenBucket(OUTPUT_LINES_PER_SECOND, OUTPUT_LINES_BURST, (n) =>
    fn(`dropped ${n} lines (more than ${OUTPUT_LINES_PER_SECOND} a second)`),
  );
  const held: Buffer[] = [];
  let heldBytes = 0;
  let cut = 0;
  const emit = (): void => {
    if (bucket.take()) {
      const line = Buffer.concat(held, heldBytes).toString('utf8');
      fn(cut > 0 ? `${line}… (${cut} more bytes cut)` : line);
    }
    held.length = 0;
    heldBytes = 0;
    cut = 0;
  };
  const hold = (part: Buffer): void => {
    const room = OUTPUT_LINE_BYTES - heldBytes;
    if (part.length > room) cut += part.length - room;
    if (room > 0 && part.length > 0) {
      held.push(part.subarray(0, room));
      heldBytes += Math.min(room, part.length);
    }
  };
  stream.on('data', (chunk: Buffer | string) => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let from = 0;
    for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, from)) {
      hold(bytes.subarray(from, i));
      emit();
      from = i + 1;
    }
    hold(bytes.subarray(from));
  });
  stream.on('end', () => {
    if (heldBytes > 0 || cut > 0) emit();
    bucket.flush();
  });
}
