/**
 * A private PostgreSQL server for the tests that need one: initdb in a
 * temporary folder, listening on a free loopback port, stopped and started
 * at will (to test a database that goes away). Uses Debian's binaries
 * (`apt-get install postgresql`, which .ci/run does); run as root, the server
 * runs as the `postgres` user, as PostgreSQL insists.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function binDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0]!, 'bin') : null;
}

/** Why the PostgreSQL tests cannot run here, or null when they can. */
export const PG_MISSING: string | null = binDir()
  ? null
  : 'PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does it)';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface PgServer {
  readonly port: number;
  /** The address of a database on it (made by `createDatabase`). */
  url(database: string): string;
  createDatabase(name: string): string;
  stop(): void;
  start(): void;
  /** Stops the server and removes its folder. */
  destroy(): void;
}

export async function startPostgres(): Promise<PgServer> {
  const bin = binDir();
  if (!bin) throw new Error(PG_MISSING!);
  const root = mkdtempSync(join(tmpdir(), 'databridge-pg-'));
  const data = join(root, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(root, Number(execFileSync('id', ['-u', 'postgres']).toString()), 0);
  const run = (cmd: string, args: string[]) => {
    const [file, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]]
      : [join(bin, cmd), args];
    const r = spawnSync(file, argv, { encoding: 'utf8', cwd: root });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout}`);
  };
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'databridge', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const options = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const start = () => run('pg_ctl', ['-D', data, '-o', options, '-l', join(root, 'log'), '-w', '-t', '30', 'start']);
  const stop = () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  start();
  const psql = (sql: string) =>
    run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'databridge', '-d', 'postgres', '-c', sql]);
  return {
    port,
    url: (database) => `postgres://databridge@127.0.0.1:${port}/${database}`,
    createDatabase(name) {
      psql(`CREATE DATABASE "${name}"`);
      return `postgres://databridge@127.0.0.1:${port}/${name}`;
    },
    stop,
    start,
    destroy() {
      try {
        stop();
      } catch {
        // stopped already
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}
