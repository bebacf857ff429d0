// One writer per data directory: the lock on it, held by the OS for as long as its holder runs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isDataBridgeError } from '../../src/errors.ts';
import { acquireDataDirLock, LOCK_INFO, probeDataDirLock, readHolder } from '../../src/store/lock.ts';
import { ROOT, tempDir, until } from '../helpers.ts';

test('a second holder is refused naming the first; after release the next one gets it', async (t) => {
  const data = join(tempDir(t), 'data');
  const first = await acquireDataDirLock(data, { command: 'serve' });
  first.update({ address: 'http://127.0.0.1:1234' });
  assert.equal(statSync(join(data, LOCK_INFO)).mode & 0o777, 0o600, 'lock.json is the owner’s only');
  await assert.rejects(
    acquireDataDirLock(data, { command: 'run' }),
    (err: unknown) =>
      isDataBridgeError(err, 'DATA_DIR_LOCKED') &&
      err.message.includes(`pid ${process.pid}`) &&
      err.message.includes('http://127.0.0.1:1234') &&
      (err.details as { pid: number }).pid === process.pid,
  );
  assert.equal(probeDataDirLock(data)?.holder?.command, 'serve');
  first.release();
  assert.equal(probeDataDirLock(data), null);
  assert.ok(!existsSync(join(data, LOCK_INFO)), 'a released lock leaves no holder behind');
  const second = await acquireDataDirLock(data, { command: 'run' });
  assert.equal(readHolder(data)?.command, 'run');
  second.release();
});

test('a lock whose holder died is taken over: its lock.json names a dead pid', async (t) => {
  const data = join(tempDir(t), 'data');
  // a holder in another process, killed without a chance to let go
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { acquireDataDirLock } from ${JSON.stringify(join(ROOT, 'src/store/lock.ts'))};
       await acquireDataDirLock(${JSON.stringify(data)}, { command: 'serve' });
       process.stdout.write('held\\n'); setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  await until('the child holds the lock', () => out.includes('held'));
  await assert.rejects(acquireDataDirLock(data, { command: 'run' }), /in use by serve \(pid \d+/);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  assert.equal(readHolder(data)?.pid, child.pid, 'the dead holder’s lock.json is still there');
  const lock = await acquireDataDirLock(data, { command: 'run' });
  assert.equal(readHolder(data)?.pid, process.pid);
  lock.release();
});

test('a lock.json left with a pid that is not running does not hold the directory by itself', async (t) => {
  const data = join(tempDir(t), 'data');
  mkdirSync(data);
  writeFileSync(
    join(data, LOCK_INFO),
    JSON.stringify({ pid: 2 ** 22 + 1, command: 'serve', host: 'x', startedAt: '', address: null }),
  );
  assert.equal(probeDataDirLock(data), null);
  const lock = await acquireDataDirLock(data, { command: 'serve' });
  assert.equal(readHolder(data)?.pid, process.pid);
  lock.release();
});

test('probing a data directory that does not exist makes nothing', (t) => {
  const dir = tempDir(t);
  assert.equal(probeDataDirLock(join(dir, 'data')), null);
  assert.deepEqual(readdirSync(dir), []);
});

test('a CLI command waits for another CLI command that holds the directory, not for a server', async (t) => {
  const data = join(tempDir(t), 'data');
  const cli = await acquireDataDirLock(data, { command: 'cli plugin install' });
  const waiting = acquireDataDirLock(data, { command: 'cli plugin disable', waitForCliMs: 30_000 });
  setTimeout(() => cli.release(), 200);
  const next = await waiting;
  assert.equal(JSON.parse(readFileSync(join(data, LOCK_INFO), 'utf8')).command, 'cli plugin disable');
  next.release();
  const server = await acquireDataDirLock(data, { command: 'serve' });
  await assert.rejects(
    acquireDataDirLock(data, { command: 'cli plugin disable', waitForCliMs: 30_000 }),
    /in use by serve/,
  );
  server.release();
});

test('taking the lock makes the data directory 0700, and only it: a plugin directory beside it stays reachable', async (t) => {
  const site = join(tempDir(t), 'site');
  const lock = await acquireDataDirLock(join(site, 'data'), { command: 'serve' });
  t.after(() => lock.release());
  assert.equal(statSync(join(site, 'data')).mode & 0o777, 0o700);
  // the sandbox uid must pass through the parent to reach <site>/plugins (it was made 0700 too, and every plugin failed)
  assert.notEqual(statSync(site).mode & 0o001, 0, `${site} is open to others`);
});
