/**
 * The web console in a real browser (Debian's chromium, driven by
 * playwright-core) against a real `databridge serve` with the example
 * plugins and flow: log in, search, disable and enable, install by upload,
 * a refused bundle's findings, an alert arriving live, limits edited, the
 * flow, a narrow screen, and no console errors anywhere.
 *
 * With DATABRIDGE_SCREENSHOTS=<dir> (npm run screenshots) it also saves the
 * main views there.
 */

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_MISSING, CHROMIUM_FLAGS as FLAGS, ROOT, runCli, startServe } from '../helpers.ts';

const SHOTS = process.env.DATABRIDGE_SCREENSHOTS;

let dir = '';
let server: { child: ChildProcess; base: string; token: string; output: () => string };
let browser: Browser;
let context: BrowserContext;
let page: Page;
const problems: string[] = [];
let signedBundle = '';
let unsignedBundle = '';

async function apiGet(path: string): Promise<unknown> {
  const res = await fetch(`${server.base}/api${path}`, { headers: { authorization: `Bearer ${server.token}` } });
  return res.json();
}

/** A change made outside this page (another operator, the CLI). */
async function apiSend(method: string, path: string): Promise<void> {
  const res = await fetch(`${server.base}/api${path}`, {
    method,
    headers: { authorization: `Bearer ${server.token}` },
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status}`);
}

/**
 * HTTP statuses a test provokes on purpose (a wrong token, a refused
 * bundle): Chromium logs each failed request as a console error, which is
 * the API answering as it should, not the page failing.
 */
const provoked = new Set<number>();

function watch(p: Page): void {
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    const status = /status of (\d+)/.exec(m.text());
    if (status && provoked.has(Number(status[1]))) return;
    problems.push(`console: ${m.text()}`);
  });
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
}

async function shot(name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.evaluate("document.getElementById('toasts').replaceChildren()");
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** A copy of the example acme.upper as another plugin (its own id and component), packed. */
async function makeBundles(): Promise<void> {
  const src = join(dir, 'acme.shout');
  cpSync(join(ROOT, 'examples', 'plugins', 'acme.upper'), src, { recursive: true });
  rmSync(join(src, 'signature.dsse.json'));
  const manifest = JSON.parse(readFileSync(join(src, 'manifest.json'), 'utf8'));
  Object.assign(manifest, {
    id: 'acme.shout',
    name: 'Shout',
    version: '1.0.0',
    description: 'Upper-cases text, loudly',
    provides: { processors: ['Shout'] },
    tags: ['text', 'demo'],
  });
  delete manifest.$schema;
  writeFileSync(join(src, 'manifest.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(join(src, 'index.js'), readFileSync(join(src, 'index.js'), 'utf8').replaceAll('UpperCase', 'Shout'));
  unsignedBundle = join(dir, 'acme.shout-unsigned.tgz');
  let r = await runCli(['plugin', 'pack', src, '-o', unsignedBundle]);
  assert.equal(r.code, 0, r.stderr);
  signedBundle = join(dir, 'acme.shout-1.0.0.tgz');
  r = await runCli([
    'plugin',
    'pack',
    src,
    '--key',
    join(ROOT, 'examples', 'keys', 'acme-example.key'),
    '-o',
    signedBundle,
  ]);
  assert.equal(r.code, 0, r.stderr);
}

describe('the web console', { skip: CHROMIUM_MISSING }, () => {
  before(async () => {
    dir = join(tmpdir(), `databridge-console-${process.pid}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    await makeBundles();
    server = await startServe(
      [
        '--seed-examples',
        '--flow',
        join(ROOT, 'examples', 'flows', 'live.json'),
        '--data-dir',
        join(dir, 'data'),
        '--plugin-dir',
        join(dir, 'plugins'),
        // one trusted plugin, to show a worker beside the process sandboxes
        '--worker-plugin',
        'acme.upper',
      ],
      { DATABRIDGE_TOKEN: '' },
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    watch(page);
  });

  after(async () => {
    await browser?.close();
    if (server && server.child.exitCode === null) {
      const exited = new Promise((r) => server.child.once('exit', r));
      server.child.kill('SIGTERM');
      const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('the printed link logs in, and the token leaves the address bar', async () => {
    await page.goto(`${server.base}/?token=${server.token}`);
    await page.locator('tr[data-plugin="acme.upper"]').waitFor();
    assert.ok(!page.url().includes('token='), page.url());
    assert.equal(await page.evaluate(() => sessionStorage.getItem('databridge.token')), server.token);
    const upper = page.locator('tr[data-plugin="acme.upper"]');
    assert.match((await upper.textContent()) ?? '', /active/);
    assert.match((await upper.textContent()) ?? '', /signed · acme/);
    assert.match((await upper.textContent()) ?? '', /worker · trusted/);
    assert.match((await page.locator('tr[data-plugin="acme.reverse"]').textContent()) ?? '', /process · full/);
    // this host confines fully: no isolation banner
    assert.equal(await page.locator('#isolation-banner').isVisible(), false);
    await shot('plugins');
  });

  test('a wrong token gets a clear message; the right one signs in', async () => {
    const other = await context.browser()!.newContext();
    const p = await other.newPage();
    watch(p);
    await p.goto(server.base);
    provoked.add(401);
    await p.locator('#token').fill('not-the-token');
    await p.keyboard.press('Enter');
    await p.locator('#login-error').filter({ hasText: 'refused' }).waitFor();
    provoked.delete(401);
    await p.locator('#token').fill(server.token);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.locator('tr[data-plugin="acme.stamp"]').waitFor();
    await other.close();
  });

  test('search and filters narrow the table; headers sort it', async () => {
    await page.locator('#plugin-search').fill('reverse');
    await page.locator('#plugin-count').filter({ hasText: /^1 of/ }).waitFor();
    assert.deepEqual(
      await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-plugin'))),
      ['acme.reverse'],
    );
    await page.locator('#plugin-search').fill('');
    await page.locator('select[data-filter="source"]').selectOption('external');
    await page.locator('#plugin-count').filter({ hasText: /^6 of/ }).waitFor();
    await page.getByRole('button', { name: 'Version' }).click();
    await page.getByRole('button', { name: 'Version' }).click();
    const ids = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-plugin')));
    assert.equal(ids[0], 'acme.upper', 'highest version first when sorted descending');
    await page.locator('select[data-filter="source"]').selectOption('');
  });

  test('disable shows the alert live; enable starts the processor again', async () => {
    await page.locator('tr[data-plugin="acme.upper"] a').click();
    await page.locator('#disable').waitFor();
    await page.getByText('Install history').waitFor();
    await page.locator('.chart-box').first().waitFor();
    await shot('plugin-detail');
    await page.locator('#disable').click();
    await page.locator('#enable').waitFor();
    assert.equal(((await apiGet('/plugins/acme.upper')) as { enabled: boolean }).enabled, false);
    // the flow's processor stopped, and its alert arrived over the event stream
    await page.locator('.toast-bad', { hasText: 'PLUGIN_UNAVAILABLE' }).waitFor();
    await page.locator('#alert-count').waitFor();
    await page.locator('a[data-nav="events"]').click();
    await page.locator('#feed li.event-alert', { hasText: 'PLUGIN_UNAVAILABLE' }).waitFor();
    await shot('events');
    await page.goBack();
    await page.locator('#enable').click();
    await page.locator('#disable').waitFor();
    const flow = (await apiGet('/flow')) as { processors: Record<string, { state: string }> };
    assert.equal(flow.processors.upper!.state, 'running');
  });

  test('a bundle installs by upload', async () => {
    await page.locator('a[data-nav="plugins"]').click();
    await page.locator('#bundle-file').setInputFiles(signedBundle);
    await page.locator('.install-result', { hasText: 'Installed acme.shout 1.0.0' }).waitFor();
    await page.locator('tr[data-plugin="acme.shout"]').waitFor();
    assert.equal(((await apiGet('/plugins/acme.shout')) as { status: string }).status, 'active');
  });

  test('a refused bundle shows its findings', async () => {
    provoked.add(422);
    await page.locator('#bundle-file').setInputFiles(unsignedBundle);
    const refused = page.locator('.refused', { hasText: 'was refused' });
    await refused.waitFor();
    await page.locator('table.findings', { hasText: 'SIGNATURE_MISSING' }).waitFor();
    provoked.delete(422);
    await shot('install-refused');
  });

  test('an open plugin page follows changes made elsewhere', async () => {
    await page.locator('tr[data-plugin="acme.shout"] a').click();
    await page.locator('#disable').waitFor();
    await apiSend('PUT', '/plugins/acme.shout/disable');
    await page.locator('#enable').waitFor();
    await apiSend('PUT', '/plugins/acme.shout/enable');
    await page.locator('#disable').waitFor();
    await page.locator('a[data-nav="plugins"]').click();
    await page.locator('tr[data-plugin="acme.shout"]').waitFor();
  });

  test('uninstall asks first, naming what happens', async () => {
    await page.locator('tr[data-plugin="acme.shout"] a').click();
    await page.locator('#uninstall').click();
    const dialog = page.locator('dialog.confirm');
    await dialog.waitFor();
    assert.match((await dialog.textContent()) ?? '', /No plugin depends on it/);
    await dialog.getByRole('button', { name: 'Uninstall' }).click();
    await page.locator('tr[data-plugin="acme.upper"]').waitFor();
    assert.equal(await page.locator('tr[data-plugin="acme.shout"]').count(), 0);
  });

  test('namespaces show live gauges, and limits can be edited', async () => {
    await page.locator('a[data-nav="namespaces"]').click();
    const card = page.locator('section[data-namespace="acme.upper"]');
    await card.waitFor();
    assert.equal(await card.locator('[role="meter"]').count(), 4);
    // each sandbox says what holds it: the trusted worker is no boundary, a process sandbox names its confinement
    assert.match((await card.textContent()) ?? '', /worker · trusted.*not a security boundary/);
    const confined = page.locator('section[data-namespace="acme.rates"]');
    await confined.waitFor();
    assert.match((await confined.textContent()) ?? '', /process · full.*bwrap · cgroup v\d \(memory, cpu, pids\)/);
    await shot('namespaces');
    await card.getByRole('button', { name: 'Edit limits' }).click();
    await card.locator('input[name="maxConcurrentTasks"]').fill('2');
    await card.getByRole('button', { name: 'Save limits' }).click();
    await page.locator('.toast', { hasText: 'Saved the limits of acme.upper' }).waitFor();
    const ns = (await apiGet('/namespaces/acme.upper')) as { limits: { maxConcurrentTasks: number } };
    assert.equal(ns.limits.maxConcurrentTasks, 2);
    const sandboxes = (await apiGet('/sandboxes')) as { namespace: string; limits: { maxConcurrentTasks: number } }[];
    assert.equal(sandboxes.find((s) => s.namespace === 'acme.upper')!.limits.maxConcurrentTasks, 2, 'applied live');
  });

  test('the flow view shows processors, their queues, controller services and reporting tasks', async () => {
    await page.locator('a[data-nav="flow"]').click();
    await page.locator('li.processor[data-processor="upper"]').waitFor();
    assert.ok((await page.locator('li.processor').count()) >= 4);
    assert.ok((await page.locator('strong.queued').count()) >= 3);
    // the RateTable runs in acme.rates' sandbox, beside ConvertCurrency
    assert.match((await page.locator('li[data-service="rates"]').textContent()) ?? '', /RateTable.*sandboxed/);
    assert.match((await page.locator('li[data-reporting-task="metrics"]').textContent()) ?? '', /LogMetrics.*running/);
    await shot('flow');
  });

  test('on a narrow screen nothing overflows; the keyboard reaches the navigation', async () => {
    await page.setViewportSize({ width: 390, height: 800 });
    await page.locator('a[data-nav="plugins"]').click();
    await page.locator('tr[data-plugin="acme.upper"]').waitFor();
    const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
    assert.ok(overflow <= 1, `the page is ${overflow}px wider than the screen`);
    await shot('narrow');
    await page.setViewportSize({ width: 1280, height: 800 });
    // a view takes the focus when it opens; the navigation is just before it
    await page.goto(server.base);
    await page.locator('tr[data-plugin="acme.upper"]').waitFor();
    assert.equal(await page.evaluate('document.activeElement?.id'), 'view');
    const reached: string[] = [];
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Shift+Tab');
      reached.push((await page.evaluate("document.activeElement?.textContent?.trim() ?? ''")) as string);
    }
    for (const name of ['Plugins', 'Namespaces', 'Flow'])
      assert.ok(reached.includes(name), `${name} by Tab: ${reached}`);
  });

  test('an admin makes a token on the Tokens page; a viewer token sees who it is and is offered no change', async () => {
    await page.locator('a[data-nav="tokens"]').click();
    assert.equal(await page.locator('#whoami').textContent(), 'admin · admin');
    await page.locator('#token-name').fill('wall-screen');
    await page.locator('#token-role').selectOption('viewer');
    await page.getByRole('button', { name: 'Make token' }).click();
    await page.locator('tr[data-token="wall-screen"]').waitFor();
    const secret = (await page.locator('#new-token').textContent()) ?? '';
    assert.match(secret, /^dbt_/);
    await shot('tokens');

    const other = await context.browser()!.newContext();
    const p = await other.newPage();
    watch(p);
    await p.goto(`${server.base}/?token=${secret}`);
    await p.locator('tr[data-plugin="acme.upper"]').waitFor();
    assert.equal(await p.locator('#whoami').textContent(), 'wall-screen · viewer');
    assert.equal(await p.locator('#dropzone').count(), 0, 'no install for a viewer');
    assert.equal(await p.getByText('Install a bundle').count(), 0);
    assert.equal(await p.locator('a[data-nav="tokens"]').isVisible(), false);
    await p.locator('tr[data-plugin="acme.upper"] a').click();
    await p.getByText('Install history').waitFor();
    for (const id of ['enable', 'disable', 'reload', 'uninstall'])
      assert.equal(await p.locator(`#${id}`).count(), 0, `no ${id} for a viewer`);
    await p.locator('a[data-nav="namespaces"]').click();
    await p.locator('section[data-namespace="acme.upper"]').waitFor();
    assert.equal(await p.getByRole('button', { name: 'Edit limits' }).count(), 0);
    // a page the role may not see (a link an admin shared) is said plainly: no crash, no error page
    provoked.add(403);
    await p.goto(`${server.base}/#/tokens`);
    await p.getByRole('heading', { name: 'Not for this token' }).waitFor();
    assert.match((await p.locator('#view').textContent()) ?? '', /needs the admin role/);
    assert.equal(await p.getByText('Something went wrong').count(), 0);
    provoked.delete(403);
    await other.close();
  });

  // issue 18, item 16: each checked at a desktop and a phone width
  const WIDTHS = [
    ['desktop', 1280],
    ['phone', 390],
  ] as const;

  /**
   * Runs browser code given as text (this project type-checks without the
   * DOM's types) on the first element matching `selector`, with `arg`.
   */
  function inPage<T>(p: Page, selector: string, code: string, arg: unknown = null): Promise<T> {
    return p.evaluate(
      `(${code})(document.querySelector(${JSON.stringify(selector)}), ${JSON.stringify(arg)})`,
    ) as Promise<T>;
  }

  /** Whether `text` inside `selector` is laid out on one line (no break inside it). */
  function onOneLine(p: Page, selector: string, text: string): Promise<boolean> {
    return inPage(
      p,
      selector,
      `(el, wanted) => {
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          const at = node.textContent.indexOf(wanted);
          if (at < 0) continue;
          const range = document.createRange();
          range.setStart(node, at);
          range.setEnd(node, at + wanted.length);
          return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size === 1;
        }
        throw new Error(wanted + ' is not in the element');
      }`,
      text,
    );
  }

  test('the sign-in page offers no "Log out", and names the command as code, not in backticks', async () => {
    for (const [name, width] of WIDTHS) {
      const other = await context.browser()!.newContext({ viewport: { width, height: 800 } });
      const p = await other.newPage();
      watch(p);
      await p.goto(server.base);
      await p.locator('#token').waitFor();
      assert.equal(await p.locator('#logout').isVisible(), false, `${name}: no Log out before signing in`);
      const view = (await p.locator('#view').textContent()) ?? '';
      assert.doesNotMatch(view, /`/, name);
      assert.equal(await p.locator('#view code', { hasText: 'databridge serve' }).count(), 1, name);
      await p.locator('#token').fill(server.token);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.locator('tr[data-plugin="acme.upper"]').waitFor();
      assert.equal(await p.locator('#logout').isVisible(), true, `${name}: Log out once signed in`);
      await p.locator('#logout').click();
      await p.locator('#token').waitFor();
      assert.equal(await p.locator('#logout').isVisible(), false, `${name}: none after signing out`);
      await other.close();
    }
  });

  test('on a phone each plugin card labels its values; on a desktop the header row does', async () => {
    for (const [name, width] of WIDTHS) {
      await page.setViewportSize({ width, height: 800 });
      await page.goto(`${server.base}/#/plugins`);
      const row = page.locator('tr[data-plugin="acme.upper"]');
      await row.waitFor();
      const labels = await inPage<string[]>(
        page,
        'tr[data-plugin="acme.upper"]',
        `(row) => [...row.cells].slice(1).map((td) => getComputedStyle(td, '::before').content)`,
      );
      if (width < 700)
        assert.deepEqual(
          labels,
          ['"Version"', '"Type"', '"Status"', '"Enabled"', '"Signature"', '"Isolation"'],
          `${name}: a bare "yes" says what it answers`,
        );
      else assert.ok(await page.locator('table.plugins thead').isVisible(), name);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('the plugin page gives About room: an e-mail never breaks mid-word, the manifest scrolls, the wording reads', async () => {
    for (const [name, width] of WIDTHS) {
      await page.setViewportSize({ width, height: 800 });
      await page.goto(`${server.base}/#/plugins/acme.archive`);
      await page.locator('section.about').waitFor();
      assert.ok(await onOneLine(page, 'section.about', '<data@acme.example>'), `${name}: the e-mail stays whole`);
      if (width >= 900) {
        const about = await page.locator('section.about').boundingBox();
        const components = await page.locator('section', { hasText: 'Components' }).last().boundingBox();
        assert.ok(about!.width > 1.8 * components!.width, `${name}: About is twice as wide as a small card`);
      }
      assert.equal(
        (
          (await page
            .locator('section', { has: page.getByRole('heading', { name: 'Components' }) })
            .locator('li')
            .textContent()) ?? ''
        ).trim(),
        'ArchiveFile processor',
      );
      const box = await inPage(
        page,
        'pre.manifest',
        `(el) => ({
          scrolls: el.scrollWidth > el.clientWidth && ['auto', 'scroll'].includes(getComputedStyle(el).overflowX),
          focusable: el.tabIndex === 0,
        })`,
      );
      assert.deepEqual(box, { scrolls: true, focusable: true }, `${name}: long lines scroll, by keyboard too`);
      const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
      assert.ok(overflow <= 1, `${name}: the page is ${overflow}px wider than the screen`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('a chart with nothing to draw says why instead of showing a dash', async () => {
    // acme.archive is in no flow: nothing moves through it, and its sandbox may not have started.
    // Opened afresh (from the list), so its charts start with no reading.
    await page.goto(`${server.base}/#/plugins`);
    await page.locator('tr[data-plugin="acme.archive"] a').click();
    await page.locator('.chart-box').first().waitFor();
    const charts = await inPage<{ title: string; caption: string; line: boolean; why: string | null }[]>(
      page,
      '.charts',
      `(el) => [...el.querySelectorAll('.chart-box')].map((b) => ({
        title: b.querySelector('figcaption').firstChild.textContent,
        caption: b.querySelector('figcaption').textContent,
        line: b.querySelector('svg path') !== null,
        why: b.querySelector('.chart-empty')?.textContent ?? null,
      }))`,
    );
    assert.equal(charts.length, 4);
    for (const c of charts) {
      assert.doesNotMatch(c.caption, /–/, `${c.title}: no bare dash`);
      assert.ok(c.line || (c.why ?? '').length > 10, `${c.title}: a line, or the reason there is none`);
    }
    // the first reading of a rate has nothing to compare with
    const rate = charts.find((c) => c.title === 'FlowFiles/s')!;
    assert.ok(rate.line || /a rate needs two readings/.test(rate.why ?? ''), JSON.stringify(rate));
    const sandbox = (await page.locator('.usage dt:text-is("Sandbox") + dd').textContent()) ?? '';
    if (/idle/.test(sandbox))
      for (const c of charts.filter((x) => x.title !== 'FlowFiles/s'))
        assert.match(c.why ?? '', /sandbox starts when the flow first sends it work/, c.title);
  });

  test('an unknown plugin address says so, with the way back', async () => {
    for (const [name, width] of WIDTHS) {
      await page.setViewportSize({ width, height: 800 });
      provoked.add(404);
      await page.goto(`${server.base}/#/plugins/acme.nothing-here`);
      await page.getByRole('heading', { name: 'No such plugin' }).waitFor();
      assert.match((await page.locator('#view').textContent()) ?? '', /acme\.nothing-here/);
      assert.equal(await page.getByText('Something went wrong').count(), 0, name);
      await page.getByRole('link', { name: '← All plugins' }).click();
      await page.locator('tr[data-plugin="acme.upper"]').waitFor();
      // the page asks for the plugin more than once (its status, its charts): each 404 is the one provoked, until it is left
      provoked.delete(404);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('counts read as English: one time, two times', async () => {
    const forms = await page.evaluate(`import('/console/dom.js').then(({ plural }) =>
      [plural(1, 'time'), plural(2, 'time'), plural(0, 'error'), plural(1, 'restart')])`);
    assert.deepEqual(forms, ['1 time', '2 times', '0 errors', '1 restart']);
    await page.locator('a[data-nav="flow"]').click();
    const task = page.locator('li[data-reporting-task="metrics"]');
    await task.waitFor();
    const ran = /ran (\d+) (times?)\b/.exec((await task.textContent()) ?? '');
    assert.ok(ran, 'the reporting task says how often it ran');
    assert.equal(ran[2], ran[1] === '1' ? 'time' : 'times');
  });

  test('no console errors on any page', () => {
    assert.deepEqual(problems, []);
  });
});
