/**
 * One writer per data directory, from the CLI's side: a state-changing
 * command goes through the REST API of the server that holds the data
 * directory (its `lock.json` gives the address and a per-run credential), so
 * its effect is live and audited there; with no holder it takes the lock
 * itself and works on the state directly. A `run`, or a server still
 * starting, holds the directory without an API to go through: the command is
 * refused naming it (DATA_DIR_LOCKED). A read goes to the server where one
 * runs, and otherwise reads the state without taking the lock or making
 * anything.
 */

import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { resolve } from 'node:path';
import { createError, DataBridgeError, type ErrorCode, isDataBridgeError } from '../errors.ts';
import { ACTOR_HEADER } from '../server/local-cli.ts';
import { acquireDataDirLock, type LockHolder, probeDataDirLock, readHolder } from '../store/lock.ts';
import { cliActor, managerOptions, type StateOptions } from './common.ts';

/** How long a command waits for a CLI command (a short one) that holds the data directory. */
export const WAIT_FOR_CLI_MS = 60_000;
/** How long it waits for a server that holds the data directory to start listening. */
const WAIT_FOR_SERVER_MS = 60_000;
/** An install may validate and load for a while; nothing else takes long. */
const REQUEST_TIMEOUT_MS = 300_000;

/** A server holding the data directory, reached with the local CLI credential. */
export class ServerClient {
  readonly holder: LockHolder;
  readonly #base: URL;
  readonly #token: string;
  readonly #ca: string | undefined;

  constructor(holder: LockHolder & { cliToken: string }, base: string) {
    this.holder = holder;
    this.#base = new URL(base);
    this.#token = holder.cliToken;
    // the server's own certificate, pinned: whatever name it was issued for, it is the one this server serves
    this.#ca = holder.tlsCert ? readFileSync(holder.tlsCert, 'utf8') : undefined;
  }

  /** Where the answer came from, for the CLI's text output. */
  get address(): string {
    return this.holder.address ?? this.#base.origin;
  }

  /** Calls the API; an error answer is thrown as the DataBridgeError it carries. */
  async call<T>(
    method: string,
    path: string,
    body?: { json: unknown } | { bundle: Buffer },
  ): Promise<{ status: number; body: T }> {
    const url = new URL(path, this.#base);
    const payload =
      body === undefined ? undefined : 'json' in body ? Buffer.from(JSON.stringify(body.json)) : body.bundle;
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#token}`,
      [ACTOR_HEADER]: cliActor(),
      accept: 'application/json',
    };
    if (body !== undefined) {
      headers['content-type'] = 'json' in body ? 'application/json' : 'application/gzip';
      headers['content-length'] = String(payload!.length);
    }
    const response = await new Promise<{ status: number; text: string }>((done, fail) => {
      const options = {
        method,
        headers,
        timeout: REQUEST_TIMEOUT_MS,
        ...(url.protocol === 'https:'
          ? { ca: this.#ca, allowPartialTrustChain: true, checkServerIdentity: () => undefined }
          : {}),
      };
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (res: IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => done({ status: res.statusCode ?? 0, text }));
        res.on('error', fail);
      });
      req.on('timeout', () => req.destroy(new Error('no answer in time')));
      req.on('error', (err) =>
        fail(
          createError('SERVER_UNREACHABLE', {
            address: this.address,
            pid: this.holder.pid,
            reason: err.message,
          }),
        ),
      );
      req.end(payload);
    });
    let parsed: unknown = null;
    try {
      parsed = response.text ? JSON.parse(response.text) : null;
    } catch {
      // an answer that is not JSON is reported by its status below
    }
    if (response.status >= 400) {
      const e = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
      if (e?.code && e.message)
        throw new DataBridgeError(e.code as ErrorCode, e.message, { status: response.status, details: e.details });
      throw createError('SERVER_UNREACHABLE', {
        address: this.address,
        pid: this.holder.pid,
        reason: `it answered ${response.status}`,
      });
    }
    return { status: response.status, body: parsed as T };
  }
}

/** What a command does through a server, and what it does on the state itself. */
export interface Routes<T> {
  /** Through the server that holds the data directory. */
  server: (client: ServerClient) => Promise<T>;
  /** On the state, with no server. */
  local: () => Promise<T>;
}

/** The data directory a command's options name, resolved as the manager resolves it. */
export function dataDirOf(opts: StateOptions): string {
  return resolve(managerOptions(opts).dataDir ?? process.env.DATABRIDGE_DATA_DIR ?? 'data');
}

/**
 * Runs a state-changing command: through the server that holds the data
 * directory, or under the lock on the state itself. `command` names it in
 * the lock (`plugin install`), for the refusal another process would get.
 */
export async function changeState<T>(opts: StateOptions, command: string, routes: Routes<T>): Promise<T> {
  const dataDir = dataDirOf(opts);
  let lock: Awaited<ReturnType<typeof acquireDataDirLock>>;
  try {
    lock = await acquireDataDirLock(dataDir, { command: `cli ${command}`, waitForCliMs: WAIT_FOR_CLI_MS });
  } catch (err) {
    if (!isDataBridgeError(err, 'DATA_DIR_LOCKED')) throw err;
    const client = await serverFor(dataDir, err);
    refusePolicyFlags(opts, client);
    return await routes.server(client);
  }
  try {
    return await routes.local();
  } finally {
    lock.release();
  }
}

/** Runs a read: from the server where one holds the data directory, else from the state, taking no lock. */
export async function readState<T>(opts: StateOptions, routes: Routes<T>): Promise<T> {
  const dataDir = dataDirOf(opts);
  const held = probeDataDirLock(dataDir);
  const holder = held?.holder;
  if (holder?.cliToken && (holder.connect ?? holder.address)) {
    return await routes.server(
      new ServerClient(holder as LockHolder & { cliToken: string }, (holder.connect ?? holder.address)!),
    );
  }
  return await routes.local();
}

/**
 * The server to go through, once the lock was refused: a server still
 * starting is waited for; a holder with no API (`run`) is the refusal.
 */
async function serverFor(dataDir: string, refusal: DataBridgeError): Promise<ServerClient> {
  const started = Date.now();
  for (;;) {
    const holder = readHolder(dataDir);
    if (holder?.cliToken && (holder.connect ?? holder.address))
      return new ServerClient(holder as LockHolder & { cliToken: string }, (holder.connect ?? holder.address)!);
    // only a server will have an address to go through; it may still be loading its plugins
    const starting = holder?.command === 'serve' && probeDataDirLock(dataDir) !== null;
    if (!starting || Date.now() - started > WAIT_FOR_SERVER_MS) throw refusal;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The policy flags loosen or tighten what this command would accept; through
 * a server, its own policy decides, and a flag that would be ignored is
 * refused instead of being silently dropped.
 */
function refusePolicyFlags(opts: StateOptions, client: ServerClient): void {
  const given = [
    opts.allowUnsigned ? '--allow-unsigned' : null,
    opts.trustedPublisher?.length ? '--trusted-publisher' : null,
    opts.inlinePlugin ? '--inline-plugin' : null,
    opts.workerPlugin ? '--worker-plugin' : null,
    opts.allowWeakIsolation ? '--allow-weak-isolation' : null,
  ].filter((f): f is string => f !== null);
  if (given.length === 0) return;
  throw createError('USAGE', {
    message: `${given.join(', ')} cannot apply: the server at ${client.address} (pid ${client.holder.pid}) holds this data directory, and its own policy decides. Give ${given.length > 1 ? 'them' : 'it'} to the server (restart it with ${given.length > 1 ? 'them' : 'it'}), or stop it to work on the state directly`,
  });
}
