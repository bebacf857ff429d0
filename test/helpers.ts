/** Shared test helpers: temporary folders and running the real CLI. */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { createPluginManager } from '../src/index.ts';
import { buildServer } from '../src/server/app.ts';

export const ROOT = resolve(import.meta.dirname, '..');
export const BIN = join(ROOT, 'bin', 'databridge.js');

/**
 * Debian's chromium, with the flags the browser tests run it with (never a
 * downloaded browser). DATABRIDGE_CHROMIUM names another path (a test of
 * the summary uses one that does not exist).
 */
export const CHROMIUM = process.env.DATABRIDGE_CHROMIUM || '/usr/bin/chromium';
/** Why the browser tests are skipped (the summary names it and the fix), or false where chromium is installed. */
export const CHROMIUM_MISSING: string | false = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed, so the browser tests did not run; install it with: sudo apt-get install chromium`;
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A fresh folder removed after the test. */
export function tempDir(t: TestContext, prefix = 'databridge-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // a process sandbox runs as uid 65534 when the tests run as root: plugin folders inside must be reachable
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A folder a process sandbox may write: when the tests run as root a sandbox
 * runs as uid 65534, and a folder declared writable must be that uid's.
 */
export function sandboxWritable(path: string): string {
  if (process.getuid?.() === 0) chownSync(path, 65534, 65534);
  return path;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `databridge …` as a user would, with the Node that runs the tests. */
export function runCli(
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `check()` gives a truthy value, and resolves with it. A check
 * that throws is tried again (a server restarting, say); the last error is
 * in the message if time runs out. The bound catches a hang, it times
 * nothing: it is generous because test files share two cores.
 */
export async function until<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 30_000,
): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  const start = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Exclude<T, false | 0 | '' | null | undefined>;
    } catch (err) {
      last = err;
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await sleep(25);
  }
}

/**
 * Starts `databridge serve --port 0` with these arguments and resolves with
 * its printed address and token once it serves. The caller kills it.
 */
export function startServe(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; base: string; token: string; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const collect = (d: string) => {
      out += d;
      const m = /open:\s+(https?:\/\/[^/]+)\/\?token=(\S+)/.exec(out);
      if (m) resolve({ child, base: m[1]!, token: m[2]!, output: () => out });
    };
    child.stdout!.setEncoding('utf8').on('data', collect);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
}

/**
 * A plugin manager in a fresh folder with the REST server on a loopback port,
 * both closed after the test.
 */
export async function startApiServer(t: TestContext, token: string) {
  const dir = tempDir(t);
  const manager = await createPluginManager({
    dataDir: join(dir, 'data'),
    pluginDir: join(dir, 'plugins'),
    logLevel: false,
  });
  const { app } = await buildServer({ manager, token });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(async () => {
    await app.close();
    await manager.shutdown();
  });
  const port = (app.server.address() as { port: number }).port;
  return { dir, manager, app, port, base: `http://127.0.0.1:${port}` };
}

/**
 * A self-signed P-256 certificate for `subject` (e.g. `/CN=localhost`),
 * valid a day, made with openssl in `dir`: `cert.pem` and `key.pem`.
 */
export function selfSignedCert(
  dir: string,
  subject: string,
  extra: readonly string[] = [],
): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      subject,
      ...extra,
      '-days',
      '1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}
