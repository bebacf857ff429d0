/**
 * One writer per data directory: `serve`, `run` and a state-changing CLI
 * command hold a lock on the data directory while they run.
 *
 * The lock itself is an OS record lock, taken through SQLite on
 * `<data dir>/lock.db` (an empty database; `BEGIN EXCLUSIVE` held for the
 * holder's life). The kernel drops it when the holder's process ends, however
 * it ends, so a lock left by a crash (`kill -9`) is taken over by the next
 * holder, and a pid reused by another program after a reboot is never
 * mistaken for a holder. A pid file alone could do neither without a race.
 *
 * Who holds it is in `<data dir>/lock.json` (mode 0600): the pid, the
 * command, and for a server its address and a per-run credential the CLI
 * may use to act through the server (see docs/operations.md). A holder
 * writes it after taking the lock and removes it on release; a file whose
 * holder is gone is stale and is overwritten by the next holder.
 */

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createError, isDataBridgeError } from '../errors.ts';

export const LOCK_DB = 'lock.db';
export const LOCK_INFO = 'lock.json';

/** Who holds a data directory, as `lock.json` says. */
export interface LockHolder {
  pid: number;
  /** What holds it: `serve`, `run`, or `cli <command>`. */
  command: string;
  host: string;
  startedAt: string;
  /** A server's address as it printed it (`http://127.0.0.1:8080`); null until it listens, and for `run` and the CLI. */
  address: string | null;
  /** Where a client on this machine reaches the server (loopback where it listens on every address). */
  connect?: string | null;
  /** The per-run credential a CLI command of the same user sends to the server (never logged, never served). */
  cliToken?: string | null;
  /** The server's TLS certificate file, which a client pins. */
  tlsCert?: string | null;
}

/** A lock this process holds. */
export interface DataDirLock {
  readonly dataDir: string;
  readonly holder: LockHolder;
  /** Records more about the holder (a server's address once it listens). */
  update(fields: Partial<Pick<LockHolder, 'address' | 'connect' | 'cliToken' | 'tlsCert'>>): void;
  /** Lets go; idempotent. */
  release(): void;
}

export interface AcquireOptions {
  /** What the holder is, for the refusal another process gets. */
  command: string;
  /** Wait this long for a holder that is a CLI command (a short one) to finish; others are refused at once. */
  waitForCliMs?: number;
}

/** How long a holder whose pid is gone may take to let go (the OS closes its files as it ends). */
const DYING_MS = 5000;

/** Whether the holder's process runs (on another host: assumed so). */
function isRunning(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a SQLite error is "database is locked" (SQLITE_BUSY). */
function isBusy(err: unknown): boolean {
  return (err as { errcode?: number }).errcode === 5;
}

/** Reads `lock.json`; null when missing or half-written. */
export function readHolder(dataDir: string): LockHolder | null {
  try {
    const holder = JSON.parse(readFileSync(join(dataDir, LOCK_INFO), 'utf8')) as LockHolder;
    return typeof holder?.pid === 'number' && typeof holder.command === 'string' ? holder : null;
  } catch {
    return null;
  }
}

function writeHolder(dataDir: string, holder: LockHolder): void {
  // a reader never sees a half-written file: written aside, then renamed over
  const tmp = join(dataDir, `${LOCK_INFO}.${process.pid}.${randomBytes(4).toString('hex')}`);
  writeFileSync(tmp, `${JSON.stringify(holder, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, join(dataDir, LOCK_INFO));
}

function lockedError(dataDir: string, holder: LockHolder | null) {
  return createError(
    'DATA_DIR_LOCKED',
    {
      dataDir,
      holder: holder
        ? `${holder.command} (pid ${holder.pid}${holder.host !== hostname() ? ` on ${holder.host}` : ''}${holder.address ? `, serving ${holder.address}` : ''})`
        : 'another process',
    },
    {
      details: {
        dataDir,
        pid: holder?.pid ?? null,
        command: holder?.command ?? null,
        address: holder?.address ?? null,
      },
    },
  );
}

/** Tries once; the open database holds the lock, or null when another process holds it. */
function tryLock(file: string): DatabaseSync | null {
  const db = new DatabaseSync(file, { timeout: 0 });
  try {
    db.exec('BEGIN EXCLUSIVE');
    return db;
  } catch (err) {
    db.close();
    if (isBusy(err)) return null;
    throw err;
  }
}

/**
 * Takes the lock on a data directory (made if missing, 0700), or throws
 * DATA_DIR_LOCKED naming the holder.
 *
 * @example
 * const lock = acquireDataDirLock('data', { command: 'serve' });
 * lock.update({ address: 'http://127.0.0.1:8080' });
 * // … on stop
 * lock.release();
 */
export async function acquireDataDirLock(dataDirGiven: string, options: AcquireOptions): Promise<DataDirLock> {
  const dataDir = resolve(dataDirGiven);
  // as the manager makes it: only the data directory itself is 0700 (a recursive mkdir would give its new parents
  // that mode too, and a plugin directory beside it would be closed to the sandbox uid)
  mkdirSync(dirname(dataDir), { recursive: true });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, LOCK_DB);
  const started = Date.now();
  let db: DatabaseSync | null;
  for (;;) {
    db = tryLock(file);
    if (db) break;
    const holder = readHolder(dataDir);
    // a holder whose process is gone is still being taken down by the OS: its lock goes with it in a moment
    const dying = holder !== null && !isRunning(holder);
    // a CLI command holds it for a moment; a holder that has not written lock.json yet is one starting
    const brief = holder === null || holder.command.startsWith('cli ');
    const wait = dying ? DYING_MS : brief ? (options.waitForCliMs ?? 0) : 0;
    if (Date.now() - started >= wait) throw lockedError(dataDir, holder);
    await new Promise((r) => setTimeout(r, 50));
  }
  const holder: LockHolder = {
    pid: process.pid,
    command: options.command,
    host: hostname(),
    startedAt: new Date().toISOString(),
    address: null,
  };
  let lockDb: DatabaseSync | null = db;
  try {
    writeHolder(dataDir, holder);
  } catch (err) {
    db.close();
    throw err;
  }
  return {
    dataDir,
    holder,
    update(fields) {
      if (!lockDb) return;
      Object.assign(holder, fields);
      writeHolder(dataDir, holder);
    },
    release() {
      if (!lockDb) return;
      // lock.json first: while the lock is still held, no new holder has written its own
      rmSync(join(dataDir, LOCK_INFO), { force: true });
      try {
        lockDb.exec('ROLLBACK');
      } finally {
        lockDb.close();
        lockDb = null;
      }
    },
  };
}

/**
 * Who holds a data directory right now, without taking the lock and without
 * making anything: null when nobody does (or the directory does not exist).
 * A holder still starting may not have said who it is yet: `holder` is then null.
 */
export function probeDataDirLock(dataDirGiven: string): { holder: LockHolder | null } | null {
  const dataDir = resolve(dataDirGiven);
  const file = join(dataDir, LOCK_DB);
  if (!existsSync(file)) return null;
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file, { timeout: 0, readOnly: true });
  } catch {
    return null;
  }
  try {
    db.exec('BEGIN EXCLUSIVE');
    db.exec('ROLLBACK');
    return null;
  } catch (err) {
    if (isBusy(err)) return { holder: readHolder(dataDir) };
    throw err;
  } finally {
    db.close();
  }
}

/** True for the refusal `acquireDataDirLock` throws. */
export function isLockedError(err: unknown): boolean {
  return isDataBridgeError(err, 'DATA_DIR_LOCKED');
}
