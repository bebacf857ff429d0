/**
 * Hostile plugins (test/fixtures/hostile) in process sandboxes confined by
 * the OS: each attack class is contained, the host keeps serving (a healthy
 * plugin in its own sandbox goes on, unharmed), and every FlowFile of the
 * hostile side is delivered once or still queued. A test is skipped only
 * where the probe says the mechanism it relies on is not on this machine.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createFlowController, type FlowController } from '../../src/flow/controller.ts';
import { createPluginManager, type PluginManager } from '../../src/index.ts';
import { checkManifest } from '../../src/plugin/manifest.ts';
import { DEFAULT_PIDS_MAX } from '../../src/sandbox/cgroup-layout.ts';
import { confinementState, probeConfinement, unreadableBy } from '../../src/sandbox/confinement.ts';
import { type Emitted, registerSink, registerSource } from '../flow-harness.ts';
import { ROOT, runCli, sandboxWritable, tempDir, until } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, treeDigest, trustKey, upperCode } from '../plugin-fixtures.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'hostile');
const a0600Secret = `root-only-${randomBytes(8).toString('hex')}`;
const N = 10;

const report = await probeConfinement();
const needsBwrap = report.bwrap.ok ? false : `bubblewrap is not usable here: ${report.bwrap.detail}`;
const needsCgroup = (c: 'memory' | 'cpu' | 'pids') =>
  needsBwrap || (report.cgroup[c] ? false : `no writable cgroup ${c} controller here: ${report.cgroup.detail}`);

interface Arena {
  manager: PluginManager;
  flow: FlowController;
  id: string;
  dataDir: string;
  pluginDir: string;
  secret: string;
  hostile: Emitted[];
  healthy: Emitted[];
  /** Feeds the hostile plugin N FlowFiles whose `target` attribute is `target` (plus their number). */
  attack(target: Record<string, unknown>): Promise<void>;
  /** Every FlowFile of the hostile side: queued anywhere in the flow, or delivered. */
  count(): number;
}

/**
 * A manager with the hostile fixture and a healthy plugin, each in its own
 * process sandbox, a secret in the data directory, and the healthy side of
 * the flow already run once (so its sandbox is up when the attack starts).
 */
async function arena(
  t: TestContext,
  fixture: string,
  vars: Record<string, string> = {},
  options: { dir?: string; expect?: 'active' | 'error' } = {},
): Promise<Arena> {
  const dir = options.dir ?? tempDir(t);
  const pluginDir = join(dir, 'plugins');
  const dataDir = join(dir, 'data');
  const id = `evil.${fixture}`;
  const folder = join(pluginDir, id);
  cpSync(join(FIXTURES, fixture), folder, { recursive: true });
  let manifest = readFileSync(join(folder, 'manifest.json'), 'utf8');
  for (const [k, v] of Object.entries(vars)) manifest = manifest.replaceAll(`\${${k}}`, v);
  writeFileSync(join(folder, 'manifest.json'), manifest);
  const healthy = makePlugin(pluginDir, {
    id: 'good.healthy',
    publisher: 'good',
    code: upperCode('Healthy'),
    manifest: { isolation: 'process' },
  });
  const key = newKey();
  const goodKey = newKey();
  await sign(folder, key);
  await sign(healthy, goodKey);
  await beforeLoad({ dataDir, pluginDir }, async (m) => {
    await trustKey(m, key, 'evil');
    await trustKey(m, goodKey, 'good');
  });
  const secret = `secret-${randomBytes(12).toString('hex')}`;
  writeFileSync(join(dataDir, 'admin.token'), secret, { mode: 0o600 });
  const manager = await createPluginManager({ dataDir, pluginDir, logLevel: false });
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(async () => {
    await flow.close();
    await manager.shutdown();
  });
  assert.equal(manager.get(id).status, options.expect ?? 'active', `${id}: ${manager.get(id).statusReason}`);
  const out = { hostile: [] as Emitted[], healthy: [] as Emitted[] };
  const component = readdirComponent(folder);
  if (options.expect !== 'error') {
    flow.createProcessorByType(component, { id: 'hostile', penaltyDuration: '100 ms', schedule: { batchSize: 5 } });
    flow.createProcessorByType(registerSink(manager, out.hostile), { id: 'sink-hostile' });
    flow.connect({ source: 'hostile', relationship: 'success', destination: 'sink-hostile' });
  }
  flow.createProcessorByType('Healthy', { id: 'healthy', schedule: { batchSize: 5 } });
  flow.createProcessorByType(registerSink(manager, out.healthy), { id: 'sink-healthy' });
  flow.connect({ source: 'healthy', relationship: 'success', destination: 'sink-healthy' });
  for (const p of ['healthy', 'sink-healthy', ...(options.expect === 'error' ? [] : ['sink-hostile'])])
    await flow.start(p);
  let feeds = 0;
  const feed = async (to: string, inputs: { content: string; attributes: Record<string, string> }[]) => {
    const src = `src-${++feeds}`;
    flow.createProcessorByType(registerSource(manager, inputs), { id: src });
    flow.connect({ source: src, relationship: 'success', destination: to });
    await flow.start(src);
  };
  await feed(
    'healthy',
    Array.from({ length: N }, (_, i) => ({ content: `ff ${i}`, attributes: { n: String(i) } })),
  );
  await until('the healthy plugin’s first FlowFiles', () => out.healthy.length === N);
  return {
    manager,
    flow,
    id,
    dataDir,
    pluginDir,
    secret,
    ...out,
    attack: async (target) => {
      await feed(
        'hostile',
        Array.from({ length: N }, (_, i) => ({
          content: `ff ${i}`,
          attributes: { n: String(i), target: JSON.stringify({ ...target, n: i }) },
        })),
      );
      await flow.start('hostile');
    },
    count: () =>
      flow
        .stats()
        .connections.filter((c) => c.destination === 'hostile' || c.source === 'hostile')
        .reduce((n, c) => n + c.queued, 0) + out.hostile.length,
  };
}

function readdirComponent(folder: string): string {
  const manifest = JSON.parse(readFileSync(join(folder, 'manifest.json'), 'utf8')) as {
    provides: { processors: string[] };
  };
  return manifest.provides.processors[0]!;
}

/** The hostile side kept every FlowFile (delivered once or queued); the healthy sandbox served on, never restarted. */
async function contained(a: Arena, fed = N): Promise<void> {
  assert.equal(a.count(), fed, 'no FlowFile of the hostile side was lost');
  assert.equal(new Set(a.hostile.map((f) => f.attributes.n)).size, a.hostile.length, 'none was delivered twice');
  const healthy = a.manager.sandboxOf('good.healthy')!;
  const pid = healthy.transport?.pid;
  const inputs = Array.from({ length: N }, (_, i) => ({ content: `more ${i}`, attributes: { n: String(N + i) } }));
  const src = `src-more-${Date.now()}`;
  a.flow.createProcessorByType(registerSource(a.manager, inputs), { id: src });
  a.flow.connect({ source: src, relationship: 'success', destination: 'healthy' });
  await a.flow.start(src);
  await until('the healthy plugin to serve on', () => a.healthy.length === 2 * N);
  assert.ok(a.healthy.every((f) => f.content.toString() === f.content.toString().toUpperCase()));
  assert.equal(healthy.stats.crashes, 0, 'the healthy sandbox never died');
  assert.equal(healthy.transport?.pid, pid, 'the healthy sandbox is the same process');
}

/** The hostile FlowFiles, all delivered, with each attempt's outcome. */
async function outcomes(a: Arena): Promise<Record<string, string>[]> {
  await until('every hostile FlowFile', () => a.hostile.length === N);
  return a.hostile.map((f) =>
    Object.fromEntries(
      Object.entries(f.attributes)
        .filter(([k]) => k.startsWith('outcome.'))
        .map(([k, v]) => [k.slice('outcome.'.length), v]),
    ),
  );
}

function assertRefused(results: Record<string, string>[], names: string[], secret?: string): void {
  for (const r of results) {
    for (const name of names) {
      assert.ok(r[name], `${name} was tried`);
      assert.match(r[name]!, /^refused:/, `${name}: ${r[name]}`);
      if (secret) assert.ok(!r[name]!.includes(secret), `${name} did not obtain the secret`);
    }
  }
}

function listen(server: Server | ReturnType<typeof createHttpServer>, at: number | string): Promise<void> {
  return new Promise((resolve) => server.listen(at as number, '127.0.0.1', resolve));
}

describe('process sandboxes confined by the OS', () => {
  test('built-in modules reached without an import read nothing of the host: admin token, data dir, /etc/passwd, /proc', {
    skip: needsBwrap,
  }, async (t) => {
    const a = await arena(t, 'read-secrets');
    await a.attack({
      token: join(a.dataDir, 'admin.token'),
      dataDir: a.dataDir,
      plugin: join(a.pluginDir, a.id),
      hostPid: process.pid,
    });
    const results = await outcomes(a);
    assert.equal(a.manager.sandboxOf(a.id)!.confinement?.bwrap, true, 'it ran under bwrap');
    const passwd = readFileSync('/etc/passwd', 'utf8').split('\n')[0]!;
    assertRefused(
      results,
      ['getBuiltinModule', 'hiddenProcess', 'createRequire', 'computedImport', 'listDataDir', 'procOfHost'],
      a.secret,
    );
    for (const r of results) assert.ok(!r.passwd!.includes(passwd), `the host's /etc/passwd: ${r.passwd}`);
    await contained(a);
  });

  test('global fetch, WebSocket and TCP reach no listener of the host', { skip: needsBwrap }, async (t) => {
    let connections = 0;
    const server = createHttpServer((_req, res) => res.end('reached'));
    server.on('connection', () => connections++);
    await listen(server, 0);
    t.after(() => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    });
    const a = await arena(t, 'reach-network');
    await a.attack({ port: (server.address() as { port: number }).port });
    assertRefused(await outcomes(a), ['fetch', 'webSocket', 'tcp']);
    assert.equal(connections, 0, 'nothing connected to the host’s listener');
    assert.equal(a.manager.sandboxOf(a.id)!.confinement?.network, false);
    await contained(a);
  });

  test('Unix sockets of the host, by path or abstract name, are out of reach', { skip: needsBwrap }, async (t) => {
    let connections = 0;
    const socketDir = mkdtempSync(join(tmpdir(), 'databridge-sock-'));
    t.after(() => rmSync(socketDir, { recursive: true, force: true }));
    const path = join(socketDir, 'host.sock');
    const abstract = `databridge-test-${randomBytes(6).toString('hex')}`;
    const reached = (socket: Socket) => {
      connections++;
      socket.destroy();
    };
    const servers = [createNetServer(reached), createNetServer(reached)];
    await new Promise<void>((r) => servers[0]!.listen(path, r));
    await new Promise<void>((r) => servers[1]!.listen(`\0${abstract}`, r));
    t.after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));
    const a = await arena(t, 'unix-socket');
    await a.attack({ socket: path, abstract });
    assertRefused(await outcomes(a), ['pathSocket', 'abstractSocket']);
    assert.equal(connections, 0, 'nothing connected to the host’s sockets');
    await contained(a);
  });

  test('signals reach neither the host nor another sandbox', { skip: needsBwrap }, async (t) => {
    const a = await arena(t, 'signals');
    const other = a.manager.sandboxOf('good.healthy')!.transport!.pid!;
    await a.attack({ hostPid: process.pid, otherPid: other });
    const results = await outcomes(a);
    assertRefused(results, ['host', 'otherSandbox', 'otherSandboxGroup']);
    for (const r of results) assert.match(r.host!, /ESRCH/, 'the host’s pid does not exist inside');
    // process.ppid inside is the sandbox's own init: a signal to it stays inside
    for (const r of results) assert.match(r.parent!, /^(obtained:sent to 1|refused:)/, r.parent);
    await contained(a);
  });

  test('1.5 GiB of off-heap ArrayBuffers under maxMemoryMB 64: the cgroup kills it, MEMORY_LIMIT, restart, nothing lost', {
    skip: needsCgroup('memory'),
  }, async (t) => {
    const a = await arena(t, 'off-heap');
    await a.attack({});
    const alert = await until('a memory alert', () =>
      a.manager.alerts().find((x) => x.code === 'MEMORY_LIMIT' && x.plugin === a.id),
    );
    assert.match(alert.message, /memory limit of 64 MiB/);
    await until('the sandbox restarted', () => (a.manager.sandboxOf(a.id)?.stats.restarts ?? 0) >= 1);
    assert.equal(a.hostile.length, 0, 'no task of it ever completed');
    await contained(a);
  });

  test('CPU burnt from a timer between tasks is held at maxCPUPercent by the cgroup quota', {
    skip: needsCgroup('cpu'),
  }, async (t) => {
    const a = await arena(t, 'background-cpu');
    await a.attack({});
    await until('every FlowFile through', () => a.hostile.length === N);
    const sandbox = a.manager.sandboxOf(a.id)!;
    assert.ok(sandbox.confinement?.controllers.includes('cpu'), 'a CPU quota holds it');
    const first = await sandbox.usage();
    const from = performance.now();
    // the kernel throttling it, period after period, is the proof; how long that takes does not matter
    const last = await until('the quota to throttle it', async () => {
      const u = await sandbox.usage();
      return u.throttled! >= first.throttled! + 5 && u;
    });
    const wall = (performance.now() - from) / 1000;
    const used = (last.cpu!.user + last.cpu!.system - first.cpu!.user - first.cpu!.system) / 1e6;
    // the quota is 20 ms per 100 ms period: the kernel never grants more, however busy the machine is
    assert.ok(used <= wall * 0.2 * 1.5 + 0.05, `${used.toFixed(3)} s of CPU in ${wall.toFixed(3)} s`);
    // it patched process.cpuUsage and memoryUsage to say 0: the host never asked it
    assert.ok(used > 0, 'the host measured its CPU');
    assert.ok(last.memoryUsed! > 0, 'the host measured its memory');
    await contained(a);
  });

  test('a plugin that may start processes: its shell runs inside, and reads no more than it', {
    skip: needsBwrap,
  }, async (t) => {
    const a = await arena(t, 'child-process');
    await a.attack({ token: join(a.dataDir, 'admin.token'), dataDir: a.dataDir });
    const results = await outcomes(a);
    for (const r of results) assert.equal(r.shRuns, 'obtained:alive', 'the shell runs');
    assertRefused(results, ['catToken', 'catPasswd', 'listData'], a.secret);
    await contained(a);
  });

  test('processes past the pids limit are refused by the kernel', { skip: needsCgroup('pids') }, async (t) => {
    const a = await arena(t, 'many-processes');
    await a.attack({});
    const results = await outcomes(a);
    assertRefused(results, ['spawnMany']);
    for (const r of results) {
      assert.match(r.spawnMany!, /EAGAIN/, r.spawnMany);
      const started = Number(/stopped after (\d+) processes/.exec(r.spawnMany!)?.[1]);
      // Node's own threads and bwrap count too, so fewer than the limit of 64 are sleepers
      assert.ok(started < DEFAULT_PIDS_MAX, `${started} started`);
    }
    await contained(a);
  });

  test('writes outside the declared paths fail, and change nothing on the host', { skip: needsBwrap }, async (t) => {
    const a = await arena(t, 'write-outside');
    const otherPlugin = join(a.pluginDir, 'good.healthy');
    const before = treeDigest(otherPlugin);
    const hostTmp = join(tmpdir(), `databridge-escape-${randomBytes(6).toString('hex')}`);
    t.after(() => rmSync(hostTmp, { force: true }));
    await a.attack({ dataDir: a.dataDir, otherPlugin, plugin: join(a.pluginDir, a.id), hostTmp });
    assertRefused(await outcomes(a), ['dataDir', 'otherPlugin', 'ownFolder', 'hostTmp']);
    assert.equal(existsSync(join(a.dataDir, 'evil.txt')), false);
    assert.equal(existsSync(join(a.pluginDir, a.id, 'evil.txt')), false);
    assert.equal(existsSync(hostTmp), false);
    assert.deepEqual(treeDigest(otherPlugin), before, 'the other plugin’s folder is unchanged');
    await contained(a);
  });

  test('a declared folder is readable and writable inside, by its real path, and nothing else', {
    skip: needsBwrap,
  }, async (t) => {
    const grant = join(tempDir(t), 'grant');
    mkdirSync(grant);
    writeFileSync(join(grant, 'in.txt'), 'granted');
    sandboxWritable(grant);
    const a = await arena(t, 'declared-folder', { GRANT: grant });
    await a.attack({ grant, token: join(a.dataDir, 'admin.token') });
    const results = await outcomes(a);
    for (const r of results) {
      assert.equal(r.read, 'obtained:granted');
      assert.equal(r.write, 'obtained:written');
    }
    assertRefused(results, ['outside'], a.secret);
    for (let i = 0; i < N; i++)
      assert.equal(readFileSync(join(grant, `out-${i}.txt`), 'utf8'), 'written by the sandbox');
    await contained(a);
  });

  test('a writable declared folder: a setuid program planted there is never root’s, root’s 0600 file stays closed', {
    skip: needsBwrap || (process.getuid?.() === 0 ? false : 'DataBridge switches the sandbox’s uid only as root'),
  }, async (t) => {
    const grant = join(tempDir(t), 'grant');
    mkdirSync(grant);
    sandboxWritable(grant);
    writeFileSync(join(grant, 'root-only.txt'), a0600Secret, { mode: 0o600 });
    const a = await arena(t, 'setuid', { GRANT: grant });
    await a.attack({ grant });
    const results = await outcomes(a);
    assertRefused(results, ['rootSecret'], a0600Secret);
    for (let i = 0; i < N; i++) {
      const st = statSync(join(grant, `suid-${i}`));
      assert.notEqual(st.uid, 0, `suid-${i} is not root's`);
      assert.equal(st.uid, 65534, 'it is the sandbox uid’s');
    }
    const report = await probeConfinement();
    assert.equal(report.uid?.switched, true, 'the probe says the sandbox runs as another uid');
    await contained(a);
  });

  test('declared paths that lead to the host’s own files are refused at load, coded, and the host serves on', {
    skip: needsBwrap,
  }, async (t) => {
    const cases: [string, (d: { dataDir: string; pluginDir: string; dir: string }) => unknown, string][] = [
      ['relative to the host’s working directory', () => ({ read: ['data'] }), 'PATH_INVALID'],
      ['with ..', (d) => ({ read: [`${d.dir}/grant/../data`] }), 'PATH_INVALID'],
      ['the data dir', (d) => ({ read: [d.dataDir] }), 'PATH_FORBIDDEN'],
      ['a folder holding the data dir', (d) => ({ read: [d.dir] }), 'PATH_FORBIDDEN'],
      ['a file inside the data dir', (d) => ({ read: [join(d.dataDir, 'admin.token')] }), 'PATH_FORBIDDEN'],
      ['the plugin dir', (d) => ({ write: [d.pluginDir] }), 'PATH_FORBIDDEN'],
      ['DataBridge’s own folder', () => ({ read: [ROOT] }), 'PATH_FORBIDDEN'],
      ['the host’s procfs', () => ({ read: ['/proc'] }), 'PATH_FORBIDDEN'],
      ['/etc', () => ({ read: ['/etc/shadow'] }), 'PATH_FORBIDDEN'],
      ['the whole file system', () => ({ read: ['/'] }), 'PATH_FORBIDDEN'],
    ];
    for (const [what, declare, code] of cases) {
      const dir = tempDir(t);
      const d = { dir, dataDir: join(dir, 'data'), pluginDir: join(dir, 'plugins') };
      mkdirSync(join(dir, 'grant'));
      if (code === 'PATH_INVALID') {
        // caught by the manifest check itself: `plugin sign` refuses it, and so does every load
        const manifest = readFileSync(join(FIXTURES, 'declared-paths', 'manifest.json'), 'utf8');
        const { findings } = checkManifest(JSON.parse(manifest.replace('${FS}', JSON.stringify(declare(d)))));
        assert.deepEqual(
          findings.map((f) => [f.code, f.pointer]),
          [[code, '/permissions/fs/read/0']],
          what,
        );
        continue;
      }
      const a = await arena(t, 'declared-paths', { FS: JSON.stringify(declare(d)) }, { dir, expect: 'error' });
      const status = a.manager.get(a.id);
      assert.equal(status.status, 'error', `${what}: refused`);
      assert.match(status.statusReason ?? '', new RegExp(`^${code}`), `${what}: ${status.statusReason}`);
      assert.equal(a.manager.sandboxOf(a.id), undefined, `${what}: no sandbox started`);
      assert.throws(
        () => a.flow.createProcessorByType('DeclaredPaths', { id: 'hostile' }),
        /PLUGIN_FAILED|evil\.declared-paths/,
      );
      assert.equal(a.count(), 0);
      await contained(a, 0);
    }
  });

  test('a declared path made a symbolic link to the data dir is refused at the next start, not bound', {
    skip: needsBwrap,
  }, async (t) => {
    const grant = join(tempDir(t), 'grant');
    mkdirSync(grant);
    sandboxWritable(grant);
    const a = await arena(t, 'symlink-redirect', { GRANT: grant });
    await a.attack({ grant, dataDir: a.dataDir });
    const results = await outcomes(a);
    assert.ok(lstatSync(join(grant, 'link')).isSymbolicLink(), 'the plugin planted its link');
    assert.ok((a.manager.sandboxOf(a.id)?.stats.restarts ?? 0) >= 2, 'it started again after planting it');
    assertRefused(results, ['listDataDir', 'token'], a.secret);
    for (const r of results) assert.doesNotMatch(r.listDataDir!, /admin\.token/);
    await contained(a);
  });

  test('a processor whose infos hold a null relationship is refused at load, coded; a flow using it is told why', {
    skip: needsBwrap,
  }, async (t) => {
    const a = await arena(t, 'bad-info', {}, { expect: 'error' });
    const status = a.manager.get(a.id);
    assert.match(status.statusReason ?? '', /^LOAD_FAILED: .*relationships/, status.statusReason ?? '');
    assert.match(status.statusReason ?? '', /evil\.bad-info/);
    // what serve --flow and run do with a flow's processor: a coded refusal, never a TypeError
    const err = (() => {
      try {
        a.flow.createProcessorByType('BadInfo', { id: 'hostile' });
        return null;
      } catch (e) {
        return e as Error & { code?: string };
      }
    })();
    assert.ok(err, 'the flow is refused');
    assert.ok(!(err instanceof TypeError), String(err));
    assert.match(String(err.code), /^(PLUGIN_FAILED|COMPONENT_UNKNOWN)$/, `${err.code}: ${err.message}`);
    await contained(a, 0);
    // and the CLI's run, as the attack had it: a coded refusal, not a TypeError
    const flowFile = join(a.dataDir, '..', 'flow.json');
    writeFileSync(
      flowFile,
      JSON.stringify({
        processors: [
          { id: 'gen', type: 'GenerateFlowFile', properties: { 'Max FlowFiles': '3' } },
          { id: 'bad', type: 'BadInfo', autoTerminate: ['success'] },
        ],
        connections: [{ source: 'gen', relationship: 'success', destination: 'bad' }],
      }),
    );
    const run = await runCli([
      'run',
      flowFile,
      '--duration',
      '1s',
      '--data-dir',
      a.dataDir,
      '--plugin-dir',
      a.pluginDir,
    ]);
    assert.notEqual(run.code, 0);
    assert.doesNotMatch(run.stderr, /TypeError|Cannot read properties/, run.stderr);
    assert.match(run.stderr, /FLOW_PLUGIN_UNAVAILABLE|COMPONENT_UNKNOWN|LOAD_FAILED/, run.stderr);
  });

  test('acme.archive (an example) still archives into its declared folder, confined', {
    skip: needsBwrap,
  }, async (t) => {
    const ARCHIVE = '/tmp/databridge-archive';
    mkdirSync(ARCHIVE, { recursive: true });
    sandboxWritable(ARCHIVE);
    const target = sandboxWritable(mkdtempSync(join(ARCHIVE, 'confined-')));
    t.after(() => rmSync(target, { recursive: true, force: true }));
    const dir = tempDir(t);
    const pluginDir = join(dir, 'plugins');
    cpSync(join(ROOT, 'examples', 'plugins', 'acme.archive'), join(pluginDir, 'acme.archive'), { recursive: true });
    const pem = readFileSync(join(ROOT, 'examples', 'keys', 'acme-example.pub'), 'utf8');
    await beforeLoad({ dataDir: join(dir, 'data'), pluginDir }, (m) =>
      m.trust.addKey({ publisher: 'acme', publicKeyPem: pem, namespaces: ['acme.*'] }),
    );
    const manager = await createPluginManager({ dataDir: join(dir, 'data'), pluginDir, logLevel: false });
    const flow = await createFlowController({ manager, repository: 'memory' });
    t.after(async () => {
      await flow.close();
      await manager.shutdown();
    });
    assert.equal(manager.get('acme.archive').status, 'active', manager.get('acme.archive').statusReason ?? '');
    const out: Emitted[] = [];
    const inputs = ['one', 'two', 'three'].map((c) => ({ content: c, attributes: { filename: `${c}.txt` } }));
    flow.createProcessorByType(registerSource(manager, inputs), { id: 'src' });
    flow.createProcessorByType('ArchiveFile', { id: 'archive', properties: { Directory: target } });
    flow.createProcessorByType(registerSink(manager, out), { id: 'sink' });
    flow.connect({ source: 'src', relationship: 'success', destination: 'archive' });
    for (const r of ['success', 'duplicate', 'failure'])
      flow.connect({ source: 'archive', relationship: r, destination: 'sink' });
    await flow.startAll();
    await until('three archived', () => out.length === 3);
    assert.deepEqual(
      out.map((f) => f.attributes['archive.error']),
      [undefined, undefined, undefined],
    );
    for (const c of ['one', 'two', 'three']) assert.equal(readFileSync(join(target, `${c}.txt`), 'utf8'), c);
    assert.equal(manager.sandboxOf('acme.archive')!.confinement?.bwrap, true);
  });

  test('the probe names a folder the sandbox’s uid cannot pass through, and how to open it', (t) => {
    const closed = join(tempDir(t), 'closed');
    mkdirSync(join(closed, 'app', 'src'), { recursive: true });
    chmodSync(closed, 0o700);
    const said = unreadableBy(65534, [join(closed, 'app', 'src')]);
    // root owns it: 65534 is "other", and other has nothing
    if (process.getuid?.() === 0) {
      assert.match(said ?? '', new RegExp(`cannot enter ${closed} \\(mode 0700`));
      assert.match(said ?? '', new RegExp(`chmod o\\+x ${closed}`));
    }
    chmodSync(closed, 0o755);
    assert.equal(unreadableBy(65534, [join(closed, 'app', 'src')]), null);
  });

  test('what `network` reaches is said where a manifest author reads it: the host’s abstract Unix sockets', () => {
    const schema = JSON.parse(readFileSync(join(ROOT, 'schemas', 'plugin-manifest.schema.json'), 'utf8'));
    assert.match(schema.properties.permissions.properties.network.description, /abstract Unix sockets/);
    assert.match(readFileSync(join(ROOT, 'docs', 'isolation.md'), 'utf8'), /\*\*abstract\s+Unix sockets\*\*/);
  });

  test('no sandbox leaves a cgroup behind', { skip: report.cgroup.version ? false : 'no cgroups here' }, async () => {
    const { layout } = await confinementState();
    const bases = layout!.version === 2 ? [layout!.base] : Object.values(layout!.bases);
    const ours = (base: string) => {
      try {
        return readdirSync(base).filter((n) => n.startsWith(`${process.pid}-`));
      } catch {
        return [];
      }
    };
    // the earlier tests' managers are shut down; their sandboxes' cgroups are gone with them
    await until('every sandbox cgroup removed', () => bases.every((b) => ours(b).length === 0));
  });
});
