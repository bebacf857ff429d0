/**
 * A real npm registry for the catalog tests: Verdaccio on a loopback port,
 * with a throwaway storage folder and config and no uplinks (an air-gapped
 * catalog). Releases are published as `npm publish` does (one PUT of the
 * packument with the tarball attached), or with npm itself.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { gunzipSync } from 'node:zlib';
import * as tar from 'tar';
import { tempDir } from '../helpers.ts';

export interface TestRegistry {
  url: string;
  /** A token Verdaccio accepts for publishing. */
  token: string;
  /** An npmrc file holding the token, for `npm publish`. */
  npmrc: string;
  /** Publishes a tarball (npm pack layout: package/ on top) with the metadata of its package.json. */
  publish(tgz: Buffer): Promise<void>;
  /** Publishes `tgz` under a package.json of the caller's choosing, optionally with another integrity (a registry that lies). */
  publishAs(tgz: Buffer, pkg: Record<string, unknown>, integrity?: string): Promise<void>;
  close(): Promise<void>;
}

/** The package.json inside an npm tarball. */
export function packageJsonIn(tgz: Buffer): Record<string, unknown> {
  const raw = gunzipSync(tgz);
  let found: string | null = null;
  const parser = new tar.Parser({
    onReadEntry(e) {
      if (e.path === 'package/package.json') {
        const chunks: Buffer[] = [];
        e.on('data', (c: Buffer) => chunks.push(c));
        e.on('end', () => (found = Buffer.concat(chunks).toString('utf8')));
      } else e.resume();
    },
  });
  parser.end(raw);
  if (found === null) throw new Error('no package/package.json in the tarball');
  return JSON.parse(found) as Record<string, unknown>;
}

/**
 * Starts Verdaccio for one test file; closed when `t`'s tests are done.
 * `access: '$authenticated'` makes a private catalog: reading needs a token.
 */
export async function startRegistry(
  t: TestContext | { after(fn: () => unknown): void },
  dir?: string,
  options: { access?: '$all' | '$authenticated' } = {},
): Promise<TestRegistry> {
  const root = dir ?? tempDir(t as TestContext, 'databridge-verdaccio-');
  const config = join(root, 'config.yaml');
  writeFileSync(join(root, 'htpasswd'), '');
  writeFileSync(
    config,
    [
      `storage: ${join(root, 'storage')}`,
      'auth:',
      '  htpasswd:',
      `    file: ${join(root, 'htpasswd')}`,
      '    max_users: 100',
      'uplinks: {}',
      'packages:',
      "  '**':",
      `    access: ${options.access ?? '$all'}`,
      '    publish: $authenticated',
      '    unpublish: $authenticated',
      'server:',
      '  keepAliveTimeout: 0',
      'max_body_size: 60mb',
      'log: { type: stdout, format: json, level: error }',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(process.execPath, [join(import.meta.dirname, 'verdaccio-child.cjs'), config], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`verdaccio exited (${code}): ${stderr}`)));
  });
  const url = `http://127.0.0.1:${port}/`;
  const user = await fetch(`${url}-/user/org.couchdb.user:tester`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'tester', password: 'tester-password' }),
  });
  const { token } = (await user.json()) as { token: string };
  if (!token) throw new Error(`verdaccio gave no token (${user.status})`);
  const npmrc = join(root, 'npmrc');
  writeFileSync(npmrc, `//127.0.0.1:${port}/:_authToken=${token}\n`);

  const publishAs = async (tgz: Buffer, pkg: Record<string, unknown>, claimed?: string) => {
    const name = pkg.name as string;
    const version = pkg.version as string;
    const file = `${name.replace('@', '').replace('/', '-')}-${version}.tgz`;
    const integrity = claimed ?? `sha512-${createHash('sha512').update(tgz).digest('base64')}`;
    const shasum = createHash('sha1').update(tgz).digest('hex');
    const body = {
      _id: name,
      name,
      description: pkg.description,
      'dist-tags': { latest: version },
      versions: {
        [version]: {
          ...pkg,
          _id: `${name}@${version}`,
          dist: { integrity, shasum, tarball: `${url}${name}/-/${file}` },
        },
      },
      _attachments: {
        [file]: { content_type: 'application/octet-stream', data: tgz.toString('base64'), length: tgz.length },
      },
    };
    const res = await fetch(`${url}${name.replace('/', '%2f')}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`publishing ${name}@${version}: HTTP ${res.status} ${await res.text()}`);
  };
  const registry: TestRegistry = {
    url,
    token,
    npmrc,
    publish: (tgz) => publishAs(tgz, packageJsonIn(tgz)),
    publishAs,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
  t.after(() => registry.close());
  return registry;
}

/** Reads a file (helper for tests that publish packed bundles). */
export function bytes(file: string): Buffer {
  return readFileSync(file);
}

/**
 * Clean-ups for what a suite's `before` hook sets up (a hook's own `after`
 * would run as soon as the hook ends): call in the describe body.
 */
export function suiteScope(after: (fn: () => Promise<void>) => void): { after(fn: () => unknown): void } {
  const fns: (() => unknown)[] = [];
  after(async () => {
    for (const fn of fns.reverse()) await fn();
  });
  return { after: (fn) => void fns.push(fn) };
}
