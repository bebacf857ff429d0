import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { createPluginManager, isDataBridgeError, type PluginManager } from '../../src/index.ts';
import { DEFAULT_BUNDLE_LIMITS, packPlugin, readBundle } from '../../src/plugin/bundle.ts';
import { SIGNATURE_FILE } from '../../src/plugin/signing.ts';
import { tempDir } from '../helpers.ts';
import {
  craftPluginTgz,
  craftTgz,
  makePlugin,
  newKey,
  paxPath,
  sign,
  treeDigest,
  trustKey,
} from '../plugin-fixtures.ts';

interface Setup {
  manager: PluginManager;
  dir: string;
  pluginDir: string;
  key: ReturnType<typeof newKey>;
  snapshot: () => Promise<unknown>;
}

async function setup(t: TestContext, options: Record<string, unknown> = {}, baseline = true): Promise<Setup> {
  const dir = tempDir(t);
  const pluginDir = join(dir, 'plugins');
  const manager = await createPluginManager({ dataDir: join(dir, 'data'), pluginDir, logLevel: false, ...options });
  t.after(() => manager.shutdown());
  const key = newKey();
  await trustKey(manager, key);
  // a plugin already installed: every refusal below must leave it, and the store, as they were
  if (baseline) {
    const good = makePlugin(join(dir, 'src'), { id: 'acme.good' });
    await sign(good, key);
    await manager.install(good);
  }
  const snapshot = async () => ({
    files: treeDigest(pluginDir),
    plugins: manager.list().map((p) => [p.id, p.version, p.status, p.enabled]),
    states: await manager.store.listPluginStates(),
    history: (await manager.store.installHistory()).length,
  });
  return { manager, dir, pluginDir, key, snapshot };
}

/** Installs, expects a refusal carrying `code`, and checks nothing changed. */
async function refused(
  s: Setup,
  source: string | Buffer,
  code: string,
  options: { force?: boolean } = {},
): Promise<void> {
  const before = await s.snapshot();
  const audit = (await s.manager.store.listAudit()).length;
  await assert.rejects(s.manager.install(source, options), (err: unknown) => {
    assert.ok(isDataBridgeError(err), `a coded error, not ${err}`);
    assert.ok(err.code === 'INSTALL_REFUSED' || err.code === 'INSTALL_CONFLICT', err.code);
    const codes = (err.details as { findings: { code: string }[] }).findings.map((f) => f.code);
    assert.ok(codes.includes(code), `expected ${code} among ${codes.join(', ')}`);
    return true;
  });
  assert.deepEqual(await s.snapshot(), before, 'installed plugins and the state store are unchanged');
  const entries = await s.manager.store.listAudit();
  assert.equal(entries.length, audit + 1);
  assert.equal(entries[0]!.result, 'refused', 'the refusal is audited');
}

async function bundleOf(dir: string, out: string): Promise<string> {
  await packPlugin(dir, out);
  return out;
}

describe('install refuses hostile plugins with a coded finding, changing nothing', () => {
  test('MANIFEST_INVALID: bad JSON, unknown fields, prototype keys, oversized manifest', async (t) => {
    const s = await setup(t);
    const bad = makePlugin(join(s.dir, 'a'), { id: 'acme.bad' });
    writeFileSync(join(bad, 'manifest.json'), '{ "id": "acme.bad", ');
    await refused(s, bad, 'MANIFEST_INVALID');
    const extra = makePlugin(join(s.dir, 'b'), { id: 'acme.extra', manifest: { colour: 'red' } });
    await refused(s, extra, 'MANIFEST_INVALID');
    const proto = makePlugin(join(s.dir, 'c'), { id: 'acme.proto' });
    writeFileSync(
      join(proto, 'manifest.json'),
      readFileSync(join(proto, 'manifest.json'), 'utf8').replace('{', '{"__proto__": {"admin": true},'),
    );
    await refused(s, proto, 'MANIFEST_INVALID');
    const big = makePlugin(join(s.dir, 'd'), { id: 'acme.big', manifest: { description: 'x'.repeat(70_000) } });
    await refused(s, big, 'MANIFEST_INVALID');
    assert.equal(({} as { admin?: boolean }).admin, undefined, 'no prototype was polluted');
  });

  test('FILE_MISSING, FILE_UNLISTED, CHECKSUM_MISMATCH: files that differ from the signed list', async (t) => {
    const s = await setup(t);
    const missing = makePlugin(join(s.dir, 'm'), { id: 'acme.missing', files: { 'lib/extra.js': 'export {}' } });
    await sign(missing, s.key);
    rmSync(join(missing, 'lib', 'extra.js'));
    await refused(s, missing, 'FILE_MISSING');
    const unlisted = makePlugin(join(s.dir, 'u'), { id: 'acme.unlisted' });
    await sign(unlisted, s.key);
    writeFileSync(join(unlisted, 'payload.js'), 'export const evil = 1;');
    await refused(s, unlisted, 'FILE_UNLISTED');
    const tampered = makePlugin(join(s.dir, 't'), { id: 'acme.tampered' });
    await sign(tampered, s.key);
    appendFileSync(join(tampered, 'index.js'), '\nglobalThis.pwned = true;\n');
    await refused(s, tampered, 'CHECKSUM_MISMATCH');
    assert.equal((globalThis as { pwned?: boolean }).pwned, undefined, 'the tampered code never ran');
  });

  test('SIGNATURE_MISSING and CHECKSUM_MISSING: an unsigned plugin when the policy wants signatures', async (t) => {
    const s = await setup(t);
    const plain = makePlugin(join(s.dir, 'p'), { id: 'acme.plain' });
    await refused(s, plain, 'SIGNATURE_MISSING');
    await refused(s, plain, 'CHECKSUM_MISSING');
    await sign(plain); // checksums, no signature
    await refused(s, plain, 'SIGNATURE_MISSING');
  });

  test('SIGNATURE_INVALID: a forged signature, or a statement for another plugin', async (t) => {
    const s = await setup(t);
    const forged = makePlugin(join(s.dir, 'f'), { id: 'acme.forged' });
    await sign(forged, s.key);
    const env = JSON.parse(readFileSync(join(forged, SIGNATURE_FILE), 'utf8'));
    const sig = Buffer.from(env.signatures[0].sig, 'base64');
    sig[0]! ^= 0xff;
    env.signatures[0].sig = sig.toString('base64');
    writeFileSync(join(forged, SIGNATURE_FILE), JSON.stringify(env));
    await refused(s, forged, 'SIGNATURE_INVALID');
    // a valid signature of another release, copied over
    const other = makePlugin(join(s.dir, 'o'), { id: 'acme.other' });
    await sign(other, s.key);
    const copy = makePlugin(join(s.dir, 'c'), { id: 'acme.copycat' });
    writeFileSync(join(copy, SIGNATURE_FILE), readFileSync(join(other, SIGNATURE_FILE)));
    await refused(s, copy, 'SIGNATURE_INVALID');
    writeFileSync(join(copy, SIGNATURE_FILE), '{"payloadType": 5}');
    await refused(s, copy, 'SIGNATURE_INVALID');
  });

  test('PUBLISHER_UNTRUSTED: an unknown key, or a key of another publisher', async (t) => {
    const s = await setup(t);
    const stranger = makePlugin(join(s.dir, 's'), { id: 'acme.stranger' });
    await sign(stranger, newKey());
    await refused(s, stranger, 'PUBLISHER_UNTRUSTED');
    const globex = newKey();
    await trustKey(s.manager, globex, 'globex', ['*']);
    const impostor = makePlugin(join(s.dir, 'i'), { id: 'acme.impostor', publisher: 'acme' });
    await sign(impostor, globex);
    await refused(s, impostor, 'PUBLISHER_UNTRUSTED');
  });

  test('KEY_REVOKED: a revoked key signs no more', async (t) => {
    const s = await setup(t);
    const p = makePlugin(join(s.dir, 'r'), { id: 'acme.revoked' });
    await sign(p, s.key);
    const [k] = await s.manager.trust.list();
    await s.manager.trust.revokeKey(k!.keyId, 'leaked');
    await refused(s, p, 'KEY_REVOKED');
  });

  test('NAMESPACE_FORBIDDEN: acme’s key cannot sign globex.*, and builtin.* is reserved', async (t) => {
    const s = await setup(t);
    const foreign = makePlugin(join(s.dir, 'n'), { id: 'globex.tool', publisher: 'acme' });
    await sign(foreign, s.key);
    await refused(s, foreign, 'NAMESPACE_FORBIDDEN');
    const builtin = makePlugin(join(s.dir, 'b'), { id: 'builtin.sneaky', publisher: 'acme' });
    await refused(s, builtin, 'NAMESPACE_FORBIDDEN');
  });

  test('VERSION_ROLLBACK and VERSION_CONFLICT: lower versions need force; the same version must be the same bytes', async (t) => {
    const s = await setup(t);
    const v2 = makePlugin(join(s.dir, 'v2'), { id: 'acme.versioned', version: '2.0.0' });
    await sign(v2, s.key);
    await s.manager.install(v2);
    const v1 = makePlugin(join(s.dir, 'v1'), { id: 'acme.versioned', version: '1.0.0' });
    await sign(v1, s.key);
    await refused(s, v1, 'VERSION_ROLLBACK');
    const twin = makePlugin(join(s.dir, 'twin'), {
      id: 'acme.versioned',
      version: '2.0.0',
      code: `${readFileSync(join(v2, 'index.js'), 'utf8')}// other bytes\n`,
    });
    await sign(twin, s.key);
    await refused(s, twin, 'VERSION_CONFLICT');
    await refused(s, twin, 'VERSION_CONFLICT', { force: true });
    const { outcome } = await s.manager.install(v1, { force: true });
    assert.equal(outcome.action, 'downgrade');
    assert.equal(s.manager.get('acme.versioned').version, '1.0.0');
    // the highest version seen is still remembered
    assert.equal((await s.manager.store.getPluginState('acme.versioned'))?.highestVersion, '2.0.0');
  });

  test('RELEASE_REVOKED, ENGINE_INCOMPATIBLE, PERMISSION_UNDECLARED', async (t) => {
    const s = await setup(t);
    const revoked = makePlugin(join(s.dir, 'r'), { id: 'acme.bad-release', version: '3.1.0' });
    await sign(revoked, s.key);
    await s.manager.trust.revokeRelease('acme.bad-release', '3.1.0', 'ships a backdoor');
    await refused(s, revoked, 'RELEASE_REVOKED');
    const future = makePlugin(join(s.dir, 'e'), {
      id: 'acme.future',
      manifest: { engines: { databridge: '>=99.0.0' } },
    });
    await sign(future, s.key);
    await refused(s, future, 'ENGINE_INCOMPATIBLE');
    const sneaky = makePlugin(join(s.dir, 'x'), {
      id: 'acme.sneaky',
      code: `import { execSync } from 'node:child_process';\n// require('node:net') in a comment is not an import\nconst s = "import('node:fs')";\n${readFileSync(join(makePlugin(join(s.dir, 'tmp')), 'index.js'), 'utf8')}`,
    });
    await sign(sneaky, s.key);
    await s.manager
      .install(sneaky)
      .then(() => assert.fail('installed'))
      .catch((err) => {
        const findings = (err.details as { findings: { code: string; message: string }[] }).findings;
        const perms = findings.filter((f) => f.code === 'PERMISSION_UNDECLARED');
        assert.equal(perms.length, 1, 'only the real import counts, not comments or strings');
        assert.match(perms[0]!.message, /child_process/);
      });
  });

  test('ARCHIVE_UNSAFE: links, devices, FIFOs, .., absolute paths, setuid, case and NFC collisions', async (t) => {
    const s = await setup(t);
    const base = makePlugin(join(s.dir, 'base'), { id: 'acme.archived' });
    await sign(base, s.key);
    const cases: Record<string, Parameters<typeof craftPluginTgz>[1]> = {
      symlink: [{ path: 'evil', type: '2', linkpath: '/etc/passwd' }],
      hardlink: [{ path: 'evil', type: '1', linkpath: '../../../etc/passwd' }],
      'char device': [{ path: 'tty', type: '3' }],
      'block device': [{ path: 'disk', type: '4' }],
      fifo: [{ path: 'pipe', type: '6' }],
      'dot-dot': [{ path: '../../escaped.js', data: 'owned' }],
      absolute: [{ path: '/tmp/absolute.js', data: 'owned' }],
      setuid: [{ path: 'suid.sh', data: '#!/bin/sh', mode: 0o4755 }],
      'case collision': [{ path: 'INDEX.JS', data: 'shadow' }],
      'not NFC': [{ path: 'cafe\u0301.js', data: 'x' }],
      // names the file system refuses (ENAMETOOLONG, EEXIST, ENOTDIR used to answer 500 INTERNAL)
      'a 10,000-character name': [paxPath('a'.repeat(10_000)), { path: 'long', data: 'x' }],
      '200 é: 400 bytes in one name': [paxPath('\u00e9'.repeat(200)), { path: 'e', data: 'x' }],
      '25 nested 200-character folders': [
        paxPath(`${Array(25).fill('d'.repeat(200)).join('/')}/f`),
        { path: 'f', data: 'x' },
      ],
      'a file, then a file inside it': [
        { path: 'a', data: 'x' },
        { path: 'a/b', data: 'y' },
      ],
      'a file, then a folder of its name': [
        { path: 'lib2', data: 'x' },
        { path: 'LIB2/c.js', data: 'y' },
      ],
    };
    for (const [name, extra] of Object.entries(cases)) {
      await t.test(name, async () => refused(s, craftPluginTgz(base, extra), 'ARCHIVE_UNSAFE'));
    }
    await refused(
      s,
      gzipSync(Buffer.from('this is not a tar archive at all, just text padded out'.repeat(30))),
      'ARCHIVE_UNSAFE',
    );
  });

  test('ARCHIVE_TOO_LARGE: a gzip bomb, too many files, a file past the cap', async (t) => {
    const s = await setup(t, {
      bundleLimits: { maxExpandedBytes: 1024 * 1024, maxFiles: 20, maxFileBytes: 256 * 1024 },
    });
    const base = makePlugin(join(s.dir, 'base'), { id: 'acme.big' });
    await sign(base, s.key);
    const bomb = craftTgz([
      { path: 'manifest.json', data: readFileSync(join(base, 'manifest.json')) },
      { path: 'zeros.bin', data: Buffer.alloc(64 * 1024 * 1024) },
    ]);
    assert.ok(bomb.length < 200 * 1024, `the bomb is small (${bomb.length} bytes)`);
    await refused(s, bomb, 'ARCHIVE_TOO_LARGE');
    const many = craftPluginTgz(
      base,
      Array.from({ length: 30 }, (_, i) => ({ path: `f${i}.txt`, data: 'x' })),
    );
    await refused(s, many, 'ARCHIVE_TOO_LARGE');
    const fat = craftPluginTgz(base, [{ path: 'fat.bin', data: Buffer.alloc(300 * 1024, 7) }]);
    await refused(s, fat, 'ARCHIVE_TOO_LARGE');
  });

  test('ARCHIVE_TOO_LARGE says its sizes in human units (MiB, KiB), not byte counts', async () => {
    const bomb = craftTgz([
      { path: 'manifest.json', data: '{}' },
      { path: 'zeros.bin', data: Buffer.alloc(8 * 1024 * 1024) },
    ]);
    const limits = { ...DEFAULT_BUNDLE_LIMITS, maxExpandedBytes: 2 * 1024 * 1024, maxRatio: 1e9 };
    const expanded = await readBundle(bomb, limits);
    assert.equal(expanded.findings[0]?.message, 'the bundle expands past 2 MiB');
    const fat = craftTgz([{ path: 'fat.bin', data: Buffer.alloc(300 * 1024 + 512, 7) }]);
    const file = await readBundle(fat, { ...DEFAULT_BUNDLE_LIMITS, maxFileBytes: 256 * 1024 });
    assert.equal(file.findings[0]?.message, '300.5 KiB; one file may have 256 KiB');
  });

  test('a bundle inflates off the event loop, under the same caps: the loop turns while bombs are refused', async () => {
    const bomb = craftTgz([
      { path: 'manifest.json', data: '{}' },
      { path: 'zeros.bin', data: Buffer.alloc(64 * 1024 * 1024) },
    ]);
    let turns = 0;
    let running = true;
    const spin = () => {
      turns++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    const results = await Promise.all(Array.from({ length: 4 }, () => readBundle(bomb)));
    running = false;
    for (const r of results) {
      assert.deepEqual(
        r.findings.map((f) => f.code),
        ['ARCHIVE_TOO_LARGE'],
      );
      assert.equal(r.entries.length, 0);
    }
    // gunzipSync inflated each bomb whole in one turn of the loop
    assert.ok(turns > 4, `the event loop turned ${turns} times while four bombs were read`);
  });

  test('STRUCTURE_INVALID: a folder holding a link out of it, or an entry point that is not there', async (t) => {
    const s = await setup(t);
    const linked = makePlugin(join(s.dir, 'l'), { id: 'acme.linked' });
    symlinkSync('/etc/passwd', join(linked, 'passwd'));
    await refused(s, linked, 'STRUCTURE_INVALID');
    const noEntry = makePlugin(join(s.dir, 'n'), { id: 'acme.noentry', manifest: { entryPoint: 'missing.js' } });
    await sign(noEntry, s.key);
    await refused(s, noEntry, 'STRUCTURE_INVALID');
  });

  test('SCANNER_FAILED: a scanner that fails, hangs or throws fails the validation; its findings count', async (t) => {
    const p = (s: Setup, id: string) => {
      const dir = makePlugin(join(s.dir, id), { id });
      return sign(dir, s.key).then(() => dir);
    };
    const failing = await setup(
      t,
      { scanners: [{ name: 'exit-1', command: [process.execPath, '-e', 'process.exit(1)'] }] },
      false,
    );
    await refused(failing, await p(failing, 'acme.scan-a'), 'SCANNER_FAILED');
    const hanging = await setup(
      t,
      {
        scanners: [
          { name: 'sleepy', command: [process.execPath, '-e', 'setTimeout(() => {}, 60000)'], timeoutMs: 300 },
        ],
      },
      false,
    );
    await refused(hanging, await p(hanging, 'acme.scan-b'), 'SCANNER_FAILED');
    const throwing = await setup(
      t,
      {
        scanners: [
          {
            name: 'fn',
            scan: async () => {
              throw new Error('scanner crashed');
            },
          },
        ],
      },
      false,
    );
    await refused(throwing, await p(throwing, 'acme.scan-c'), 'SCANNER_FAILED');
    const picky = await setup(
      t,
      {
        scanners: [
          {
            name: 'av',
            command: [
              process.execPath,
              '-e',
              'console.log(JSON.stringify({findings:[{code:"MALWARE",message:"EICAR"}]}))',
            ],
          },
        ],
      },
      false,
    );
    await refused(picky, await p(picky, 'acme.scan-d'), 'SCANNER_FINDING');
  });

  test('COMPONENT_CONFLICT: a processor type another plugin provides', async (t) => {
    const s = await setup(t);
    const clash = makePlugin(join(s.dir, 'c'), { id: 'acme.clash', processors: ['Good'] });
    await sign(clash, s.key);
    await refused(s, clash, 'COMPONENT_CONFLICT');
  });

  test('a good bundle installs; a bundle with a wrapper folder installs too', async (t) => {
    const s = await setup(t);
    const p = makePlugin(join(s.dir, 'ok'), { id: 'acme.bundled' });
    await sign(p, s.key);
    const { plugin } = await s.manager.install(await bundleOf(p, join(s.dir, 'ok.tgz')));
    assert.equal(plugin.status, 'active');
    const w = makePlugin(join(s.dir, 'w'), { id: 'acme.wrapped' });
    await sign(w, s.key);
    mkdirSync(join(s.dir, 'wrap'));
    const { readdirSync } = await import('node:fs');
    const entries = readdirSync(w).map((n) => ({ path: `package/${n}`, data: readFileSync(join(w, n)) }));
    const { plugin: wrapped } = await s.manager.install(craftTgz(entries));
    assert.equal(wrapped.id, 'acme.wrapped');
  });
});
