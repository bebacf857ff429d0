// One writer per data directory. A second `serve` (or a `run`) on a data directory a server holds is refused naming
// it (two servers once ran the same flow on one repository and one state.db); an address in use says which and how
// to choose another; and state-changing CLI commands go through the running server, so their effect is live and
// audited (`plugin disable` once printed "disabled" while the server kept the plugin running).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPluginManager } from '../../src/index.ts';
import { acquireDataDirLock, readHolder } from '../../src/store/lock.ts';
import { BIN, ROOT, runCli, selfSignedCert, startServe, tempDir, until } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function api<T = unknown>(
  base: string,
  token: string,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) },
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

interface Plugin {
  id: string;
  status: string;
  enabled: boolean;
  version: string;
}

describe('with a server holding the data directory', () => {
  let dir: string;
  let dirs: string[];
  let server: Awaited<ReturnType<typeof startServe>>;
  let key: ReturnType<typeof newKey>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'databridge-lock-'));
    // a process sandbox (uid 65534 under root) reads the plugin folders inside
    chmodSync(dir, 0o755);
    dirs = ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'plugins')];
    key = newKey();
    writeFileSync(join(dir, 'acme.pub'), key.publicKeyPem);
    const one = makePlugin(join(dir, 'src'), { id: 'acme.one' });
    await sign(one, key);
    await beforeLoad({ dataDir: join(dir, 'data'), pluginDir: join(dir, 'plugins') }, async (m) => {
      await trustKey(m, key);
      await m.install(one, { actor: 'test' });
    });
    server = await startServe(dirs, { DATABRIDGE_TOKEN: '' });
  });
  after(async () => {
    await stop(server.child);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a second serve, and a run, on the same data directory are refused naming the holder', async () => {
    const second = await runCli(['serve', '--port', '0', ...dirs]);
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, /error DATA_DIR_LOCKED: .*in use by serve/);
    assert.ok(second.stderr.includes(`pid ${server.child.pid}`), second.stderr);
    assert.ok(second.stderr.includes(server.base), second.stderr);
    assert.ok(!second.stdout.includes('serving'), 'it never started');

    const run = await runCli(['run', join(ROOT, 'examples', 'flows', 'generate.json'), ...dirs, '--json']);
    assert.equal(run.code, 1, run.stderr);
    const refusal = JSON.parse(run.stdout).error;
    assert.equal(refusal.code, 'DATA_DIR_LOCKED');
    assert.equal(refusal.details.pid, server.child.pid);
    assert.equal(refusal.details.address, server.base);
  });

  test('plugin disable and enable through the CLI act on the running server at once, audited as the CLI user', async () => {
    assert.equal((await api<Plugin>(server.base, server.token, '/api/plugins/acme.one')).body.status, 'active');
    const disabled = await runCli(['plugin', 'disable', 'acme.one', ...dirs]);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.match(disabled.stdout, /disabled acme\.one \(status inactive\)/);
    // no waiting: the server answered the CLI's request, so it holds the change already
    const off = (await api<Plugin>(server.base, server.token, '/api/plugins/acme.one')).body;
    assert.equal(off.enabled, false);
    assert.equal(off.status, 'inactive');

    const enabled = await runCli(['plugin', 'enable', 'acme.one', ...dirs, '--json']);
    assert.equal(enabled.code, 0, enabled.stderr);
    assert.equal(JSON.parse(enabled.stdout).status, 'active');
    assert.equal((await api<Plugin>(server.base, server.token, '/api/plugins/acme.one')).body.status, 'active');

    const audit = (
      await api<{ actor: string; action: string; target: string }[]>(
        server.base,
        server.token,
        '/api/audit?target=acme.one',
      )
    ).body;
    const disable = audit.find((e) => e.action === 'disable');
    assert.match(disable?.actor ?? '', /^cli:/, 'the audit log names the CLI’s user, as without a server');
  });

  test('install, reload and uninstall through the CLI are live on the server', async () => {
    const two = makePlugin(join(dir, 'src2'), { id: 'acme.two' });
    await sign(two, key);
    const installed = await runCli(['plugin', 'install', two, ...dirs]);
    assert.equal(installed.code, 0, installed.stderr);
    assert.match(installed.stdout, /installed acme\.two@1\.0\.0 \(status active\)/);
    assert.equal((await api<Plugin>(server.base, server.token, '/api/plugins/acme.two')).body.status, 'active');

    const reloaded = await runCli(['plugin', 'reload', 'acme.two', ...dirs]);
    assert.equal(reloaded.code, 0, reloaded.stderr);

    // the server's own refusal comes back as the CLI's, with its code
    const missing = await runCli(['plugin', 'disable', 'acme.nope', ...dirs]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error PLUGIN_NOT_FOUND/);

    // a policy flag cannot loosen the server's policy from the CLI: said, not silently dropped
    const loosened = await runCli(['plugin', 'install', two, '--allow-unsigned', '--force', ...dirs]);
    assert.equal(loosened.code, 2, loosened.stderr);
    assert.match(loosened.stderr, /--allow-unsigned cannot apply: the server at .* holds this data directory/);

    const removed = await runCli(['plugin', 'uninstall', 'acme.two', ...dirs]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal((await api(server.base, server.token, '/api/plugins/acme.two')).status, 404);
  });

  test('plugin list shows the server’s live registry', async () => {
    const list = await runCli(['plugin', 'list', '--search', 'acme.one', '--json', ...dirs]);
    assert.equal(list.code, 0, list.stderr);
    const plugins = JSON.parse(list.stdout) as Plugin[];
    assert.deepEqual(
      plugins.map((p) => [p.id, p.status]),
      [['acme.one', 'active']],
    );
  });

  test('trust, tokens and namespaces through the CLI are live on the server', async () => {
    const other = newKey();
    writeFileSync(join(dir, 'other.pub'), other.publicKeyPem);
    const added = await runCli([
      'trust',
      'add',
      '--publisher',
      'beta',
      '--key',
      join(dir, 'other.pub'),
      ...dirs,
      '--json',
    ]);
    assert.equal(added.code, 0, added.stderr);
    const keyId = JSON.parse(added.stdout).keyId as string;
    const trust = (
      await api<{ keys: { keyId: string; namespaces: string[] }[] }>(server.base, server.token, '/api/trust')
    ).body;
    assert.deepEqual(trust.keys.find((k) => k.keyId === keyId)?.namespaces, ['beta.*']);
    const revoked = await runCli(['trust', 'revoke', keyId.slice(0, 12), ...dirs]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const listed = await runCli(['trust', 'list', ...dirs, '--json']);
    const revokedKey = JSON.parse(listed.stdout).keys.find((k: { keyId: string }) => k.keyId === keyId);
    assert.ok(revokedKey.revokedAt, 'trust list reads the server’s store');

    const made = await runCli(['token', 'create', 'dash', '--role', 'viewer', ...dirs, '--json']);
    assert.equal(made.code, 0, made.stderr);
    const secret = JSON.parse(made.stdout).token as string;
    assert.equal((await api(server.base, secret, '/api/plugins/stats')).status, 200, 'the new token works at once');
    const gone = await runCli(['token', 'revoke', 'dash', ...dirs]);
    assert.equal(gone.code, 0, gone.stderr);
    // revoked through the server: refused at once, not after its cache runs out
    assert.equal((await api(server.base, secret, '/api/plugins/stats')).status, 401);

    const created = await runCli(['namespace', 'create', 'acme.one', '--max-memory-mb', '96', ...dirs]);
    assert.equal(created.code, 0, created.stderr);
    const set = await runCli(['namespace', 'set', 'acme.one', '--max-execution-ms', '1500', ...dirs, '--json']);
    assert.equal(set.code, 0, set.stderr);
    const ns = (await api<{ limits: Record<string, number> }>(server.base, server.token, '/api/namespaces/acme.one'))
      .body;
    assert.equal(ns.limits.maxMemoryMB, 96, 'set keeps the limits it was not given');
    assert.equal(ns.limits.maxExecutionMS, 1500);
    assert.equal(ns.limits.maxFileHandles, 256, 'a limit not given at create is the default, not unheld');
    const nsList = await runCli(['namespace', 'list', ...dirs]);
    assert.match(nsList.stdout, /acme\.one/);
    const deleted = await runCli(['namespace', 'delete', 'acme.one', ...dirs]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((await api(server.base, server.token, '/api/namespaces/acme.one')).status, 404);
  });
});

describe('without a server', () => {
  test('namespace commands work on the state directly, and bad input is bad usage', async (t) => {
    const dir = tempDir(t);
    const dirs = ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'plugins')];
    const created = await runCli(['namespace', 'create', 'acme.x', '--max-concurrent-tasks', '2', ...dirs]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /created namespace acme\.x .*maxConcurrentTasks=2/);
    const set = await runCli(['namespace', 'set', 'acme.x', '--display-name', 'Acme X', ...dirs, '--json']);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(JSON.parse(set.stdout).displayName, 'Acme X');
    assert.equal(JSON.parse(set.stdout).limits.maxConcurrentTasks, 2);
    assert.equal(JSON.parse(set.stdout).limits.maxMemoryMB, 256, 'a limit not given at create is the default');
    const nothing = await runCli(['namespace', 'set', 'acme.x', ...dirs]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /give a limit/);
    const notNumber = await runCli(['namespace', 'create', 'acme.y', '--max-memory-mb', 'lots', ...dirs]);
    assert.equal(notNumber.code, 2);
    assert.match(notNumber.stderr, /--max-memory-mb must be a whole number, not "lots"/);
    const cpu = await runCli(['namespace', 'create', 'acme.cpu', '--max-cpu-percent', '50', ...dirs, '--json']);
    assert.equal(cpu.code, 0, cpu.stderr);
    assert.equal(JSON.parse(cpu.stdout).limits.maxCPUPercent, 50);
    const tooMuch = await runCli(['namespace', 'set', 'acme.cpu', '--max-cpu-percent', '99999', ...dirs]);
    assert.equal(tooMuch.code, 2, tooMuch.stderr);
    assert.match(tooMuch.stderr, /maxCPUPercent must be an integer from 1 to 12800/);
    const missing = await runCli(['namespace', 'delete', 'acme.none', ...dirs]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /NAMESPACE_NOT_FOUND/);

    const manager = await createPluginManager({
      dataDir: join(dir, 'data'),
      pluginDir: join(dir, 'plugins'),
      logLevel: false,
    });
    t.after(() => manager.shutdown());
    const audit = await manager.store.listAudit({ limit: 10 });
    assert.ok(audit.some((e) => e.action === 'namespace.create' && e.actor.startsWith('cli:')));
  });

  test('a state-changing command is refused naming a run that holds the data directory', async (t) => {
    const dir = tempDir(t);
    const data = join(dir, 'data');
    const dirs = ['--data-dir', data, '--plugin-dir', join(dir, 'plugins')];
    const run = spawn(
      process.execPath,
      [BIN, 'run', join(ROOT, 'examples', 'flows', 'generate.json'), '--duration', '10 min', '--memory', ...dirs],
      { stdio: 'ignore' },
    );
    t.after(() => stop(run));
    await until('the run holds the data directory', () => readHolder(data)?.command === 'run');
    const refused = await runCli(['namespace', 'create', 'acme.z', ...dirs]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, new RegExp(`DATA_DIR_LOCKED: .*in use by run \\(pid ${run.pid}\\)`));
  });

  test('a serve started while a CLI command holds the data directory waits for it, then starts', async (t) => {
    const dir = tempDir(t);
    const data = join(dir, 'data');
    const cli = await acquireDataDirLock(data, { command: 'cli plugin install' });
    const starting = startServe(['--data-dir', data, '--plugin-dir', join(dir, 'plugins')], { DATABRIDGE_TOKEN: '' });
    // held long enough for the server to reach the lock and wait; before, it was refused at once (and exited)
    setTimeout(() => cli.release(), 3000);
    const server = await starting;
    t.after(() => stop(server.child));
    assert.equal(readHolder(data)?.pid, server.child.pid);
  });

  test('a serve killed with SIGKILL leaves its lock behind, and the next one takes it over', async (t) => {
    const dir = tempDir(t);
    const data = join(dir, 'data');
    const dirs = ['--data-dir', data, '--plugin-dir', join(dir, 'plugins')];
    const first = await startServe(dirs, { DATABRIDGE_TOKEN: '' });
    const died = new Promise((r) => first.child.once('exit', r));
    first.child.kill('SIGKILL');
    await died;
    assert.equal(readHolder(data)?.pid, first.child.pid, 'the dead server’s lock.json is still there');
    const second = await startServe(dirs, { DATABRIDGE_TOKEN: '' });
    t.after(() => stop(second.child));
    assert.equal(readHolder(data)?.pid, second.child.pid);
    // the CLI goes through the second server: its change is there at once
    const created = await runCli(['namespace', 'create', 'acme.after', ...dirs]);
    assert.equal(created.code, 0, created.stderr);
    assert.equal((await api(second.base, second.token, '/api/namespaces/acme.after')).status, 200);
  });

  test('an address in use says which one, and how to choose another', async (t) => {
    const dir = tempDir(t);
    const first = await startServe(['--data-dir', join(dir, 'a'), '--plugin-dir', join(dir, 'plugins')], {
      DATABRIDGE_TOKEN: '',
    });
    t.after(() => stop(first.child));
    const port = new URL(first.base).port;
    const second = await runCli([
      'serve',
      '--port',
      port,
      '--data-dir',
      join(dir, 'b'),
      '--plugin-dir',
      join(dir, 'plugins'),
    ]);
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`error ADDRESS_IN_USE: 127\\.0\\.0\\.1:${port} is already in use`));
    assert.match(second.stderr, /--port/);
    assert.match(second.stderr, /DATABRIDGE_PORT/);
    // it let go of its own data directory on the way out
    assert.equal(readHolder(join(dir, 'b')), null);
  });

  test('through a server on HTTPS, the CLI pins the server’s own certificate', async (t) => {
    const dir = tempDir(t);
    // a name that is not the loopback address: the CLI trusts this certificate because the server serves it
    const { cert, key } = selfSignedCert(dir, '/CN=databridge.example');
    const dirs = ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'plugins')];
    const server = await startServe(['--tls-cert', cert, '--tls-key', key, ...dirs], { DATABRIDGE_TOKEN: '' });
    t.after(() => stop(server.child));
    assert.match(server.base, /^https:/);
    const created = await runCli(['namespace', 'create', 'acme.tls', ...dirs]);
    assert.equal(created.code, 0, created.stderr);
    assert.ok(readFileSync(join(dir, 'data', 'lock.json'), 'utf8').includes(cert));
  });
});
