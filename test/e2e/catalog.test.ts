/**
 * The catalog through the server: the /api/catalog routes against a real
 * registry (Verdaccio on loopback), the update look raising an event and
 * the metric, and the console's Catalog page, update badge and Update
 * action in chromium.
 */

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { startRegistry, suiteScope, type TestRegistry } from '../catalog/registry.ts';
import { makeRelease } from '../catalog/releases.ts';
import { CHROMIUM, CHROMIUM_FLAGS, runCli, startServe, tempDir } from '../helpers.ts';
import { beforeLoad, newKey, trustKey } from '../plugin-fixtures.ts';

const key = newKey();

describe('the catalog through the REST API and the console', () => {
  const scope = suiteScope(after);
  let registry: TestRegistry;
  let server: { child: ChildProcess; base: string; token: string; output: () => string };
  let state: string[];

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${server.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text };
  };

  before(async () => {
    registry = await startRegistry(scope);
    const work = tempDir(scope as never);
    const releases: { id: string; version: string; key?: typeof key; dependencies?: Record<string, string> }[] = [
      { id: 'acme.base', version: '1.0.0', key },
      { id: 'acme.base', version: '1.4.0', key },
      { id: 'acme.report', version: '1.0.0', key, dependencies: { 'acme.base': '^1.2.0' } },
      { id: 'acme.loose', version: '1.0.0' },
      { id: 'acme.uses-loose', version: '1.0.0', key, dependencies: { 'acme.loose': '^1.0.0' } },
    ];
    for (const spec of releases) await registry.publish((await makeRelease(work, spec)).tgz);
    const dirs = { dataDir: join(work, 'data'), pluginDir: join(work, 'plugins') };
    state = ['--data-dir', dirs.dataDir, '--plugin-dir', dirs.pluginDir];
    await beforeLoad(dirs, (m) => trustKey(m, key));
    server = await startServe(
      [
        '--data-dir',
        dirs.dataDir,
        '--plugin-dir',
        dirs.pluginDir,
        '--catalog',
        registry.url,
        '--catalog-check-interval',
        '0',
      ],
      { DATABRIDGE_TOKEN: '' },
    );
    scope.after(async () => {
      if (server.child.exitCode !== null) return;
      const exited = new Promise((r) => server.child.once('exit', r));
      server.child.kill('SIGTERM');
      await exited;
    });
  });

  test('search, info, install by range, refused sets, updates with an event and a metric', async () => {
    const search = await call('GET', '/api/catalog/search?q=report');
    assert.equal(search.status, 200);
    assert.deepEqual(search.body.catalogs, [registry.url]);
    assert.deepEqual(
      search.body.results.map((r: { id: string }) => r.id),
      ['acme.report'],
    );

    const info = await call('GET', '/api/catalog/plugins/acme.report');
    assert.equal(info.status, 200, JSON.stringify(info.body));
    assert.equal(info.body.check.valid, true);
    assert.equal(info.body.check.signer.publisher, 'acme');
    assert.equal(info.body.installed, null);
    const loose = await call('GET', '/api/catalog/plugins/acme.loose');
    assert.equal(loose.body.check.valid, false);
    assert.ok(loose.body.check.findings.some((f: { code: string }) => f.code === 'SIGNATURE_MISSING'));

    const refused = await call('POST', '/api/catalog/install', { plugins: ['acme.uses-loose'] });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.error.code, 'INSTALL_REFUSED');
    assert.ok(
      refused.body.error.details.findings.some((f: { message: string }) => /^acme\.loose@1\.0\.0: /.test(f.message)),
    );
    assert.deepEqual(
      ((await call('GET', '/api/plugins')).body as { source: string }[]).filter((p) => p.source === 'external'),
      [],
    );
    const notFound = await call('GET', '/api/catalog/plugins/acme.nothing');
    assert.equal(notFound.status, 404);
    assert.equal(notFound.body.error.code, 'CATALOG_PLUGIN_NOT_FOUND');

    // the CLI installs by name through the server that holds the data directory: live, audited as the CLI's user
    const cli = await runCli(['plugin', 'install', 'acme.base@~1.0.0', '--json', ...state]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).installed[0].version, '1.0.0');
    const base = (await call('GET', '/api/plugins/acme.base')).body;
    assert.deepEqual([base.version, base.status], ['1.0.0', 'active']);
    const [audit] = (await call('GET', '/api/audit?target=acme.base')).body as { actor: string; action: string }[];
    assert.match(audit!.actor, /^cli:/);

    // the look for updates raises catalog.updates on the event stream and sets the metric
    const events = await fetch(`${server.base}/api/events`, { headers: { authorization: `Bearer ${server.token}` } });
    const reader = events.body!.getReader();
    const check = await call('POST', '/api/catalog/updates/check');
    assert.equal(check.status, 200);
    assert.deepEqual(check.body.updates, [
      { id: 'acme.base', installed: '1.0.0', latest: '1.4.0', catalog: registry.url },
    ]);
    let stream = '';
    while (!stream.includes('event: catalog.updates')) {
      const { value, done } = await reader.read();
      if (done) break;
      stream += new TextDecoder().decode(value);
    }
    await reader.cancel();
    assert.match(stream, /event: catalog\.updates\ndata: .*"latest":"1\.4\.0"/);
    assert.deepEqual((await call('GET', '/api/catalog/updates')).body.updates, check.body.updates);
    const metrics = await call('GET', '/metrics');
    assert.match(metrics.body as string, /^databridge_plugin_updates_available 1$/m);
  });

  describe('console', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed` }, () => {
    let browser: Browser;
    let page: Page;
    const problems: string[] = [];
    before(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
      page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('console', (m) => {
        // the refused install below answers 422 on purpose
        if (m.type() === 'error' && !/status of 422/.test(m.text())) problems.push(m.text());
      });
    });
    after(() => browser?.close());

    test('an update badge in the table, the Update action, and the Catalog page installs with dependencies', async () => {
      await page.goto(`${server.base}/?token=${server.token}`);
      const row = page.locator('tr[data-plugin="acme.base"]');
      await row.filter({ hasText: 'update 1.4.0' }).waitFor();
      await row.getByRole('link').click();
      await page.locator('#update').click();
      // the page shows the plugin anew: the new version, and no badge
      await page.locator('#toasts').filter({ hasText: 'Updated acme.base' }).waitFor();
      await page.locator('h1').filter({ hasText: '1.4.0' }).waitFor();
      assert.equal(await page.locator('h1').filter({ hasText: 'update 1.4.0' }).count(), 0);
      assert.equal(await page.locator('#update').count(), 0);

      await page.goto(`${server.base}/#/catalog`);
      await page.locator('#catalog-search').fill('report');
      await page.locator('#catalog-go').click();
      await page.locator('tr[data-catalog-plugin="acme.report"] button').click();
      await page.locator('#catalog-verdict').filter({ hasText: 'signed by acme' }).waitFor();
      await page.locator('#catalog-install').click();
      await page.getByText('Installed acme.report 1.0.0').waitFor();
      if (process.env.DATABRIDGE_SCREENSHOTS) {
        mkdirSync(process.env.DATABRIDGE_SCREENSHOTS, { recursive: true });
        await page.screenshot({ path: join(process.env.DATABRIDGE_SCREENSHOTS, 'catalog.png'), fullPage: true });
      }

      await page.locator('#catalog-search').fill('loose');
      await page.locator('#catalog-go').click();
      await page.locator('tr[data-catalog-plugin="acme.uses-loose"] button').click();
      await page.locator('#catalog-verdict').filter({ hasText: 'signed by acme' }).waitFor();
      await page.locator('#catalog-install').click();
      await page.locator('.refused').filter({ hasText: 'INSTALL_REFUSED' }).waitFor();
      assert.ok((await page.locator('table.findings tr.sev-error').count()) >= 1, 'every finding is shown');
      assert.deepEqual(problems, []);
    });
  });
});
