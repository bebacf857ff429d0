// Isolation as an operator sees it: the REST API and /healthz on a host
// whose probe lacks bubblewrap (a report given to the manager, as on such a
// host), and the CLI's trust flags and environment on this one.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { chromium } from 'playwright-core';
import { createFlowController } from '../../src/flow/controller.ts';
import { createPluginManager, type PluginManagerOptions } from '../../src/index.ts';
import type { ConfinementReport } from '../../src/sandbox/confinement.ts';
import { buildServer } from '../../src/server/app.ts';
import { registerSink, registerSource, waitQuiet } from '../flow-harness.ts';
import { CHROMIUM, CHROMIUM_FLAGS, CHROMIUM_MISSING, ROOT, runCli, tempDir } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

const TOKEN = 'isolation-test-token';

const NO_BWRAP: ConfinementReport = {
  bwrap: { ok: false, path: null, detail: 'bwrap not found' },
  cgroup: { version: 1, memory: true, cpu: true, pids: true, detail: 'test' },
  prlimit: true,
  level: 'partial',
  missing: ['bubblewrap: apt-get install bubblewrap'],
};

/** A server over two signed plugins, acme.untrusted and acme.trusted (listed for a worker). */
async function serve(t: TestContext, options: PluginManagerOptions) {
  const dir = tempDir(t);
  const dirs = { dataDir: join(dir, 'data'), pluginDir: join(dir, 'plugins') };
  const key = newKey();
  for (const id of ['acme.untrusted', 'acme.trusted']) await sign(makePlugin(dirs.pluginDir, { id }), key);
  await beforeLoad(dirs, (m) => trustKey(m, key));
  const manager = await createPluginManager({
    ...dirs,
    logLevel: false,
    workerPlugins: ['acme.trusted'],
    confinementReport: NO_BWRAP,
    ...options,
  });
  const { app } = await buildServer({ manager, token: TOKEN });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(async () => {
    await app.close();
    await manager.shutdown();
  });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const get = async (url: string, auth = true) => {
    const res = await app.inject({ method: 'GET', url, headers: auth ? { authorization: `Bearer ${TOKEN}` } : {} });
    return { status: res.statusCode, body: res.json() };
  };
  return { manager, get, base };
}

describe('isolation over REST', () => {
  test('without bubblewrap: the process plugin is in error with ISOLATION_UNAVAILABLE, /healthz says what is missing, the worker plugin serves', async (t) => {
    const { manager, get } = await serve(t, {});
    const health = await get('/healthz', false);
    assert.equal(health.status, 200);
    assert.deepEqual(health.body.isolation, {
      level: 'partial',
      missing: ['bubblewrap: apt-get install bubblewrap'],
      weakAccepted: false,
    });
    const untrusted = (await get('/api/plugins/acme.untrusted')).body;
    assert.equal(untrusted.status, 'error');
    assert.equal(untrusted.isolation, 'process');
    assert.match(untrusted.statusReason, /^ISOLATION_UNAVAILABLE: .*bubblewrap: apt-get install bubblewrap/);
    assert.equal(untrusted.confinement.level, 'partial');
    const list = (await get('/api/plugins')).body as {
      id: string;
      isolation: string;
      confinement: { level: string };
    }[];
    const trusted = list.find((p) => p.id === 'acme.trusted')!;
    assert.equal(trusted.isolation, 'worker');
    assert.equal(trusted.confinement.level, 'trusted');
    const sandboxes = (await get('/api/sandboxes')).body as { namespace: string; isolation: { level: string } }[];
    assert.deepEqual(
      sandboxes.map((s) => [s.namespace, s.isolation.level]),
      [['acme.trusted', 'trusted']],
    );

    // the host and the trusted plugin go on: a flow through it delivers every FlowFile once
    const flow = await createFlowController({ manager, repository: 'memory' });
    t.after(() => flow.close());
    const out: { content: Buffer }[] = [];
    flow.createProcessorByType(registerSource(manager, [{ content: 'a' }, { content: 'b' }]), { id: 'src' });
    flow.createProcessorByType('Trusted', { id: 'up' });
    flow.createProcessorByType(registerSink(manager, out as never), { id: 'sink' });
    flow.connect({ source: 'src', relationship: 'success', destination: 'up' });
    flow.connect({ source: 'up', relationship: 'success', destination: 'sink' });
    await flow.startAll();
    await waitQuiet(flow, 60, 60_000);
    assert.deepEqual(out.map((o) => o.content.toString()).sort(), ['A', 'B']);
    assert.equal((await get('/healthz', false)).body.status, 'ok');
  });

  test('with allowWeakIsolation the plugin runs, and /healthz, the plugin and /api/sandboxes say weak', async (t) => {
    const { manager, get } = await serve(t, { allowWeakIsolation: true });
    assert.equal((await get('/healthz', false)).body.isolation.weakAccepted, true);
    const untrusted = (await get('/api/plugins/acme.untrusted')).body;
    assert.equal(untrusted.status, 'active');
    assert.deepEqual(untrusted.confinement, {
      level: 'partial',
      missing: ['bubblewrap: apt-get install bubblewrap'],
      weak: true,
      summary: untrusted.confinement.summary,
    });
    // its first load started it: /api/sandboxes shows what the running process got
    assert.equal(manager.sandboxOf('acme.untrusted')?.state, 'ready');
    const sandboxes = (await get('/api/sandboxes')).body as {
      namespace: string;
      mode: string;
      isolation: {
        actual: boolean;
        level: string;
        weak: boolean;
        missing: string[];
        holds: { bwrap: boolean; network: string; cgroup: unknown };
      };
    }[];
    const s = sandboxes.find((x) => x.namespace === 'acme.untrusted')!;
    assert.equal(s.mode, 'process');
    assert.equal(s.isolation.weak, true);
    assert.equal(s.isolation.actual, true);
    assert.equal(s.isolation.holds.bwrap, false);
    assert.deepEqual(s.isolation.missing, ['bubblewrap: apt-get install bubblewrap']);
    const status = (await get('/api/plugins/acme.untrusted/status')).body;
    assert.equal(status.sandbox.isolation.weak, true);
  });
});

describe('isolation on the command line', () => {
  test('--worker-plugin and DATABRIDGE_WORKER_PLUGINS trust a plugin for a worker; plugin list shows mode and level', async (t) => {
    const dir = tempDir(t);
    const state = ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'plugins')];
    const key = join(ROOT, 'examples', 'keys', 'acme-example.pub');
    assert.equal((await runCli(['trust', 'add', '--publisher', 'acme', '--key', key, ...state])).code, 0);
    const install = await runCli(['plugin', 'install', join(ROOT, 'examples', 'plugins', 'acme.upper'), ...state]);
    assert.equal(install.code, 0, install.stderr);
    const list = async (args: string[], env: Record<string, string> = {}) => {
      const r = await runCli(['plugin', 'list', '--source', 'external', '--json', ...state, ...args], { env });
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { isolation: string; confinement: { level: string } }[])[0]!;
    };
    const plain = await list([]);
    assert.equal(plain.isolation, 'process');
    assert.ok(['full', 'partial', 'none'].includes(plain.confinement.level));
    assert.equal((await list(['--worker-plugin', 'acme.*'])).isolation, 'worker');
    assert.equal((await list([], { DATABRIDGE_WORKER_PLUGINS: 'acme.upper' })).isolation, 'worker');
    // a flag wins over the environment
    assert.equal(
      (await list(['--inline-plugin', 'acme.upper'], { DATABRIDGE_WORKER_PLUGINS: 'acme.upper' })).isolation,
      'inline',
    );
    assert.equal((await list([], { DATABRIDGE_INLINE_PLUGINS: '*' })).isolation, 'inline');
    const text = await runCli(['plugin', 'list', '--source', 'external', ...state, '--worker-plugin', 'acme.upper']);
    assert.match(text.stdout, /ISOLATION/);
    assert.match(text.stdout, /worker \(trusted\)/);
    const bad = await runCli(['plugin', 'list', ...state, '--worker-plugin', 'acme.*.x']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /CONFIG_INVALID/);
  });
});

describe('isolation in the console', { skip: CHROMIUM_MISSING }, () => {
  test('weaker isolation accepted: a banner on every page names what is missing; the plugin’s badge says weak', async (t) => {
    const { base } = await serve(t, { allowWeakIsolation: true });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    t.after(() => browser.close());
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/?token=${TOKEN}`);
    const banner = page.locator('#isolation-banner');
    await banner.waitFor();
    assert.match(
      (await banner.textContent()) ?? '',
      /Weaker isolation accepted.*bubblewrap: apt-get install bubblewrap/,
    );
    const row = page.locator('tr[data-plugin="acme.untrusted"]');
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /process · partial \(weak\)/);
    assert.match((await page.locator('tr[data-plugin="acme.trusted"]').textContent()) ?? '', /worker · trusted/);
    await page.locator('a[data-nav="namespaces"]').click();
    await page.locator('section[data-namespace="acme.untrusted"]').waitFor();
    assert.ok(await banner.isVisible(), 'the banner stays on every page');
    assert.match(
      (await page.locator('section[data-namespace="acme.untrusted"]').textContent()) ?? '',
      /no bwrap.*weaker isolation accepted/,
    );
    assert.deepEqual(errors, []);
  });
});
