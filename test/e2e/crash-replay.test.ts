/**
 * A crash replays the interrupted session (issue 18, item 14): `databridge
 * run` killed with SIGKILL while PutFile writes, then resumed, ends with one
 * file per input, nothing sent to failure, and no temporary file left.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN, runCli, tempDir } from '../helpers.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `run` and kills it with SIGKILL once `out` holds at least `atLeast` entries (or the run ends first). */
async function runAndKill(args: string[], out: string, atLeast: number): Promise<'killed' | 'ended'> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
  let ended = false;
  const exited = new Promise((r) => child.on('exit', r)).then(() => {
    ended = true;
  });
  while (!ended && !(existsSync(out) && readdirSync(out).length >= atLeast)) await sleep(5);
  if (ended) return 'ended';
  child.kill('SIGKILL');
  await exited;
  return 'killed';
}

test('SIGKILL while PutFile writes, then resume: one file per input, none failed, no temporary file', async (t) => {
  const dir = tempDir(t);
  const input = join(dir, 'in');
  const out = join(dir, 'out');
  const failed = join(dir, 'failed');
  mkdirSync(input);
  const N = 3000;
  const expected = new Map<string, string>();
  for (let i = 0; i < N; i++) {
    const name = `f${String(i).padStart(5, '0')}.txt`;
    const content = `${name}\n${'x'.repeat(200 + (i % 50))}\n`;
    writeFileSync(join(input, name), content);
    expected.set(name, content);
  }
  const flow = join(dir, 'flow.json');
  writeFileSync(
    flow,
    JSON.stringify({
      processors: [
        { id: 'read', type: 'GetFile', properties: { 'Input Directory': input, 'Batch Size': '500' } },
        // the default strategy: a file that exists is a conflict, unless it is this very write replayed
        {
          id: 'write',
          type: 'PutFile',
          properties: { Directory: out },
          schedule: { batchSize: 200 },
          autoTerminate: ['success'],
        },
        {
          id: 'rejects',
          type: 'PutFile',
          properties: { Directory: failed, 'Conflict Resolution Strategy': 'replace' },
          autoTerminate: ['success', 'failure'],
        },
      ],
      connections: [
        { source: 'read', relationship: 'success', destination: 'write' },
        { source: 'write', relationship: 'failure', destination: 'rejects' },
      ],
    }),
  );
  const data = join(dir, 'data');
  const args = ['run', flow, '--data-dir', data, '--plugin-dir', join(dir, 'plugins')];
  // twice killed in the middle of the writes, then run to the end
  const first = await runAndKill(args, out, N / 4);
  const second = await runAndKill(args, out, N / 2);
  assert.deepEqual([first, second], ['killed', 'killed'], 'each run was killed mid-flow');
  const last = await runCli([...args, '--json'], { timeoutMs: 120_000 });
  assert.equal(last.code, 0, last.stderr);

  const written = readdirSync(out).sort();
  assert.deepEqual(
    written.filter((n) => !expected.has(n)),
    [],
    'nothing in the folder but the inputs (no temporary file)',
  );
  assert.equal(written.length, N, 'one file per input');
  for (const name of written) assert.equal(readFileSync(join(out, name), 'utf8'), expected.get(name), name);
  assert.deepEqual(existsSync(failed) ? readdirSync(failed) : [], [], 'no replayed write went to failure');
  assert.deepEqual(readdirSync(input), [], 'every input was taken');
});
