/**
 * What one client may hold of the server: how long a request may take to
 * arrive, how many connections and event streams may be open. Without
 * them one client with no token held every file descriptor by trickling
 * chunked bodies, and a request whose body came after its token was
 * revoked still acted (attack run of 2026-12-02, findings 1-3).
 */

import { createError } from '../errors.ts';

export interface ServerLimits {
  /**
   * A request's headers and body must have arrived within this (408
   * REQUEST_TIMEOUT, connection closed). 60 s takes a 50 MiB bundle at
   * under 1 MiB/s. Env `DATABRIDGE_REQUEST_TIMEOUT_MS`.
   */
  requestTimeoutMs: number;
  /** A connection with nothing read or written for this long is closed (an event stream writes every 15 s). */
  idleTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /**
   * Connections open at once; more are closed as they arrive, so one
   * client cannot run the process out of file descriptors. Env
   * `DATABRIDGE_MAX_CONNECTIONS`.
   */
  maxConnections: number;
  /** Open `/api/events` streams in all (503 EVENT_STREAMS_FULL beyond). */
  maxEventStreams: number;
  /** Open `/api/events` streams per token (429 EVENT_STREAMS_FULL beyond). */
  maxEventStreamsPerToken: number;
}

export const DEFAULT_SERVER_LIMITS: Readonly<ServerLimits> = Object.freeze({
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 120_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 512,
  maxEventStreams: 100,
  maxEventStreamsPerToken: 8,
});

/** The limits with defaults filled in, and those the environment sets. */
export function serverLimits(given: Partial<ServerLimits> = {}, env: NodeJS.ProcessEnv = process.env): ServerLimits {
  const fromEnv = (name: string): number | undefined => {
    const v = env[name]?.trim();
    if (!v) return undefined;
    const n = Number(v);
    // a limit mistyped is refused, never left silently at its default
    if (!Number.isSafeInteger(n) || n <= 0)
      throw createError('CONFIG_INVALID', { summary: `${name} must be a positive whole number, not "${v}"` });
    return n;
  };
  const limits: ServerLimits = {
    ...DEFAULT_SERVER_LIMITS,
    ...definedOnly({
      requestTimeoutMs: fromEnv('DATABRIDGE_REQUEST_TIMEOUT_MS'),
      maxConnections: fromEnv('DATABRIDGE_MAX_CONNECTIONS'),
    }),
    ...definedOnly(given),
  };
  return limits;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
