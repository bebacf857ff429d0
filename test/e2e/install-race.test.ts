// An install and an uninstall of the same plugin, racing over the REST API, serialize: each answer
// says what the audit log says happened, in the order it happened.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { packPlugin } from '../../src/plugin/bundle.ts';
import type { AuditEntry } from '../../src/store/types.ts';
import { startApiServer } from '../helpers.ts';
import { makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

const TOKEN = 'race-test-token-0123456789';
const ROUNDS = 40;

test('install?force=true racing DELETE of the same plugin: every answer matches the audit log', async (t) => {
  const { dir, manager, base } = await startApiServer(t, TOKEN);
  const key = newKey();
  await trustKey(manager, key);
  const src = makePlugin(join(dir, 'src', 'acme.race'), { id: 'acme.race' });
  await sign(src, key);
  await packPlugin(src, join(dir, 'race.tgz'));
  const bundle = new Uint8Array(readFileSync(join(dir, 'race.tgz')));
  const headers = { authorization: `Bearer ${TOKEN}` };

  let lastSeq = (await manager.store.listAudit({ limit: 1 }))[0]?.seq ?? 0;
  for (let round = 0; round < ROUNDS; round++) {
    const install = fetch(`${base}/api/plugins/install?force=true`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/gzip' },
      body: bundle,
    });
    // the uninstall goes out at varying points of the install (validation, the move, the bookkeeping)
    await delay(round % 8);
    const uninstall = fetch(`${base}/api/plugins/acme.race`, { method: 'DELETE', headers });
    const [installed, removed] = await Promise.all([install, uninstall]);
    const installBody = (await installed.json()) as { plugin?: { id: string }; error?: { code: string } };
    await removed.arrayBuffer();

    const entries: AuditEntry[] = (await manager.store.listAudit({ limit: 100 }))
      .filter((e) => e.seq > lastSeq)
      .reverse();
    lastSeq = entries.at(-1)?.seq ?? lastSeq;
    const what = `round ${round}: install ${installed.status}, uninstall ${removed.status}; audit ${entries
      .map((e) => `${e.action}:${e.result}`)
      .join(', ')}`;
    const installs = entries.filter((e) => e.action === 'install');
    const uninstalls = entries.filter((e) => e.action === 'uninstall');
    assert.equal(installs.length, 1, what);
    assert.equal(uninstalls.length, 1, what);
    // the install was done: its answer says so, with the plugin it installed
    assert.equal(installs[0]!.result, 'ok', what);
    assert.equal(installed.status, 201, what);
    assert.equal(installBody.plugin?.id, 'acme.race', what);
    if (uninstalls[0]!.result === 'ok') {
      assert.equal(removed.status, 204, what);
    } else {
      assert.equal(removed.status, 404, what);
      assert.deepEqual(uninstalls[0]!.details, { code: 'PLUGIN_NOT_FOUND' }, what);
    }
    // and the state is what the last change left
    const last = entries.filter((e) => e.result === 'ok').at(-1)!;
    assert.equal(manager.registry.has('acme.race'), last.action === 'install', what);
  }
});
