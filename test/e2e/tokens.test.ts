// Named tokens with roles, through the real CLI and a real `databridge serve`: what each role may do,
// a token made or revoked works (or stops working) at once, the audit log names it, and its secret is
// shown once and kept nowhere. Then TLS: serve with a self-signed certificate made here.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, selfSignedCert, startServe, tempDir, until } from '../helpers.ts';

interface Answer {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

let dir = '';
let server: { child: ChildProcess; base: string; token: string; output: () => string };
const secrets: string[] = [];

const state = () => ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'plugins')];

async function call(method: string, path: string, token: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${server.base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

/** A token made with the CLI while the server runs, as an operator would. */
async function cliToken(name: string, role: string): Promise<string> {
  const r = await runCli(['token', 'create', name, '--role', role, '--json', ...state()]);
  assert.equal(r.code, 0, r.stderr);
  const made = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(made).sort(), ['name', 'role', 'token']);
  assert.deepEqual([made.name, made.role], [name, role]);
  assert.match(made.token, /^dbt_[A-Za-z0-9_-]{43}$/);
  secrets.push(made.token);
  return made.token;
}

function assertForbidden(answer: Answer, needed: string, what: string): void {
  assert.equal(answer.status, 403, `${what}: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.error?.code, 'FORBIDDEN_ROLE', what);
  assert.match(answer.body.error!.message, new RegExp(`needs the ${needed} role`), what);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

describe('named tokens with roles', () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'databridge-tokens-'));
    // the sandboxes' uid reads the example plugins' folders inside it
    chmodSync(dir, 0o755);
    server = await startServe(['--seed-examples', ...state()], { DATABRIDGE_TOKEN: '' });
  });
  after(async () => {
    if (server) await stop(server.child);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the CLI makes a token and shows its secret once; bad roles and names are bad usage; list shows no secret', async () => {
    const r = await runCli(['token', 'create', 'night-shift', '--role', 'operator', ...state()]);
    assert.equal(r.code, 0, r.stderr);
    const secret = /(dbt_[A-Za-z0-9_-]{43})/.exec(r.stdout)?.[1];
    assert.ok(secret, r.stdout);
    secrets.push(secret);
    assert.match(r.stdout, /will not be shown again/);

    const badRole = await runCli(['token', 'create', 'x', '--role', 'root', ...state()]);
    assert.equal(badRole.code, 2);
    assert.match(badRole.stderr, /viewer, operator, admin/);
    const badName = await runCli(['token', 'create', 'Not A Name', '--role', 'viewer', ...state()]);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /USAGE/);
    const noRole = await runCli(['token', 'create', 'x', ...state()]);
    assert.equal(noRole.code, 2);

    const again = await runCli(['token', 'create', 'night-shift', '--role', 'viewer', '--json', ...state()]);
    assert.equal(again.code, 1);
    assert.equal(JSON.parse(again.stdout).error.code, 'TOKEN_EXISTS');
    const taken = await runCli(['token', 'create', 'admin', '--role', 'viewer', ...state()]);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /TOKEN_EXISTS/);

    const list = await runCli(['token', 'list', '--json', ...state()]);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as Record<string, unknown>[];
    const mine = listed.find((k) => k.name === 'night-shift');
    assert.deepEqual(Object.keys(mine!).sort(), ['createdAt', 'createdBy', 'lastUsedAt', 'name', 'role']);
    assert.equal(mine!.role, 'operator');
    assert.match(String(mine!.createdBy), /^cli/);
    const text = await runCli(['token', 'list', ...state()]);
    assert.match(text.stdout, /night-shift\s+operator/);
    for (const out of [list.stdout, text.stdout]) assert.ok(!out.includes(secret) && !out.includes('dbt_'));

    const unknown = await runCli(['token', 'revoke', 'nobody', ...state()]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /TOKEN_NOT_FOUND/);
    for (const sub of ['create', 'list', 'revoke']) {
      const help = await runCli(['token', sub, '--help']);
      assert.equal(help.code, 0, `token ${sub} --help`);
      assert.match(help.stdout, /--data-dir/);
    }
  });

  test('a viewer reads plugins, metrics and events, and gets 403 FORBIDDEN_ROLE on every change', async () => {
    const viewer = await cliToken('dashboard', 'viewer');
    // made by another process while the server runs, and taken at once
    assert.deepEqual((await call('GET', '/api/whoami', viewer)).body, { name: 'dashboard', role: 'viewer' });
    const plugins = await call('GET', '/api/plugins', viewer);
    assert.equal(plugins.status, 200);
    const metrics = await fetch(`${server.base}/metrics`, { headers: { authorization: `Bearer ${viewer}` } });
    assert.equal(metrics.status, 200);
    await metrics.body?.cancel();
    const events = await fetch(`${server.base}/api/events`, { headers: { authorization: `Bearer ${viewer}` } });
    assert.equal(events.status, 200);
    await events.body?.cancel();
    assertForbidden(await call('PUT', '/api/plugins/builtin.LogAttribute/disable', viewer), 'operator', 'disable');
    assertForbidden(await call('PUT', '/api/plugins/builtin.LogAttribute/enable', viewer), 'operator', 'enable');
    assertForbidden(await call('POST', '/api/plugins/install', viewer), 'admin', 'install');
    assertForbidden(
      await call('POST', '/api/trust/keys', viewer, { publisher: 'evil', publicKey: 'x' }),
      'admin',
      'trust',
    );
    assertForbidden(await call('GET', '/api/tokens', viewer), 'admin', 'token list');
    assertForbidden(await call('POST', '/api/tokens', viewer, { name: 'mine', role: 'admin' }), 'admin', 'make');
  });

  test('an operator enables, disables and reloads, but cannot install, trust or make tokens; the audit log names it', async () => {
    const operator = await cliToken('on-call', 'operator');
    const list = (await call('GET', '/api/plugins', operator)).body as unknown as { id: string; source: string }[];
    const external = list.find((p) => p.source === 'external');
    const id = external?.id ?? 'builtin.LogAttribute';
    assert.equal((await call('PUT', `/api/plugins/${id}/disable?force=true`, operator)).status, 200);
    assert.equal((await call('PUT', `/api/plugins/${id}/enable`, operator)).status, 200);
    if (external) assert.equal((await call('POST', `/api/plugins/${id}/reload`, operator)).status, 200);
    assertForbidden(await call('POST', '/api/plugins/install', operator), 'admin', 'install');
    assertForbidden(await call('DELETE', `/api/plugins/${id}`, operator), 'admin', 'uninstall');
    assertForbidden(
      await call('POST', '/api/trust/keys', operator, { publisher: 'evil', publicKey: 'x' }),
      'admin',
      'trust',
    );
    assertForbidden(await call('POST', '/api/namespaces', operator, { name: 'etl' }), 'admin', 'namespace');
    assertForbidden(await call('POST', '/api/tokens', operator, { name: 'mine', role: 'admin' }), 'admin', 'make');
    const audit = (await call('GET', `/api/audit?target=${id}&limit=10`, server.token)).body as unknown as {
      action: string;
      actor: string;
    }[];
    assert.ok(
      audit.some((e) => e.action === 'disable' && e.actor === 'token:on-call'),
      JSON.stringify(audit),
    );
    assert.ok(audit.some((e) => e.action === 'enable' && e.actor === 'token:on-call'));
  });

  test('a token the admin makes over the API works at once; revoked, it gets 401 at once; both audited', async () => {
    const made = await call('POST', '/api/tokens', server.token, { name: 'ci', role: 'operator' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.deepEqual(Object.keys(made.body).sort(), ['name', 'role', 'token']);
    const secret = String(made.body.token);
    secrets.push(secret);
    assert.deepEqual((await call('GET', '/api/whoami', secret)).body, { name: 'ci', role: 'operator' });
    assert.deepEqual((await call('GET', '/api/whoami', server.token)).body, { name: 'admin', role: 'admin' });

    const dup = await call('POST', '/api/tokens', server.token, { name: 'ci', role: 'viewer' });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error?.code, 'TOKEN_EXISTS');
    assert.equal((await call('POST', '/api/tokens', server.token, { name: 'x', role: 'root' })).status, 400);
    assert.equal((await call('POST', '/api/tokens', server.token, { name: 'Bad Name', role: 'viewer' })).status, 400);

    const listed = await call('GET', '/api/tokens', server.token);
    assert.equal(listed.status, 200);
    const listedText = JSON.stringify(listed.body);
    assert.match(listedText, /"name":"ci"/);
    assert.ok(!listedText.includes('dbt_'), 'no secret in the list');
    assert.ok(!/hash/.test(listedText), 'no hash in the list');

    assert.equal((await call('DELETE', '/api/tokens/ci', server.token)).status, 204);
    const after = await call('GET', '/api/whoami', secret);
    assert.equal(after.status, 401);
    assert.equal(after.body.error?.code, 'UNAUTHORIZED');
    const again = await call('DELETE', '/api/tokens/ci', server.token);
    assert.equal(again.status, 404);
    assert.equal(again.body.error?.code, 'TOKEN_NOT_FOUND');

    const audit = (await call('GET', '/api/audit?target=ci', server.token)).body as unknown as {
      action: string;
      actor: string;
    }[];
    assert.deepEqual(
      audit.map((e) => [e.action, e.actor]),
      [
        ['token.revoke', 'token:admin'],
        ['token.create', 'token:admin'],
      ],
    );
  });

  test('a token revoked with the CLI stops working on the running server', async () => {
    const secret = await cliToken('temp', 'viewer');
    assert.equal((await call('GET', '/api/plugins', secret)).status, 200);
    const r = await runCli(['token', 'revoke', 'temp', ...state()]);
    assert.equal(r.code, 0, r.stderr);
    // another process's revoke reaches this server when its short cache entry runs out
    await until(
      'the revoked token to be refused',
      async () => (await call('GET', '/api/plugins', secret)).status === 401,
    );
  });

  test('the state store holds no secret', () => {
    assert.ok(secrets.length >= 4);
    const files = ['state.db', 'state.db-wal'].map((f) => join(dir, 'data', f)).filter(existsSync);
    assert.ok(files.length > 0);
    for (const file of files) {
      const bytes = readFileSync(file);
      for (const secret of secrets) assert.ok(!bytes.includes(secret), `${file} holds a secret`);
    }
  });
});

function get(
  make: typeof httpRequest | typeof httpsRequest,
  url: string,
  options: { ca?: Buffer } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = make(url, { ...options, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('TLS', () => {
  test('serve --tls-cert/--tls-key serves HTTPS with that certificate, prints an https link, and no plain HTTP', async (t) => {
    const d = tempDir(t);
    const { cert, key } = selfSignedCert(d, '/CN=localhost', ['-addext', 'subjectAltName=IP:127.0.0.1']);
    const dirs = ['--data-dir', join(d, 'data'), '--plugin-dir', join(d, 'plugins')];
    const tls = await startServe(['--tls-cert', cert, '--tls-key', key, ...dirs], { DATABRIDGE_TOKEN: '' });
    t.after(() => stop(tls.child));
    assert.match(tls.base, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = readFileSync(cert);
    const health = await get(httpsRequest, `${tls.base}/healthz`, { ca });
    assert.equal(health.status, 200);
    assert.equal(JSON.parse(health.body).status, 'ok');
    // without trusting the certificate the client refuses it: the server really speaks TLS with it
    await assert.rejects(get(httpsRequest, `${tls.base}/healthz`));
    // plain HTTP on the same port gets no answer
    await assert.rejects(get(httpRequest, `${tls.base.replace('https:', 'http:')}/healthz`));
  });

  test('a certificate without its key (or the other way round) is bad usage', async (t) => {
    const d = tempDir(t);
    const dirs = ['--data-dir', join(d, 'data'), '--plugin-dir', join(d, 'plugins')];
    const flag = await runCli(['serve', '--port', '0', '--tls-cert', join(d, 'cert.pem'), ...dirs]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--tls-key/);
    const env = await runCli(['serve', '--port', '0', ...dirs], { env: { DATABRIDGE_TLS_KEY: join(d, 'key.pem') } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /--tls-cert/);
    const missing = await runCli(['serve', '--port', '0', '--tls-cert', 'nope.pem', '--tls-key', 'nope.key', ...dirs]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot be read/);
  });
});
