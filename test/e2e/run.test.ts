import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { JournalFlowFileRepository } from '../../src/flow/flowfile-repository.ts';
import { BIN, ROOT, runCli, tempDir } from '../helpers.ts';

interface Summary {
  processors: Record<string, { in: number; out: number; tasks: number; errors: number }>;
  connections: { source: string; relationship: string; destination: string; queued: number }[];
  alerts: { code: string; plugin: string; message: string }[];
  stoppedBy: string;
  resumed: number;
}

function writeFlow(dir: string, flow: unknown): string {
  const file = join(dir, 'flow.json');
  writeFileSync(file, JSON.stringify(flow));
  return file;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('databridge run', () => {
  test('the example files flow writes exactly what it promises, byte for byte', async (t) => {
    const dir = tempDir(t);
    cpSync(join(ROOT, 'examples', 'flows'), join(dir, 'examples', 'flows'), { recursive: true });
    cpSync(join(ROOT, 'examples', 'data'), join(dir, 'examples', 'data'), { recursive: true });
    const flow = join(dir, 'examples', 'flows', 'redact-files.json');
    // run from another folder: the flow's paths are relative to the flow file
    const r = await runCli(['run', flow, '--data-dir', join(dir, 'state'), '--json'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as Summary;
    assert.equal(summary.stoppedBy, 'idle');
    const inputs = readdirSync(join(dir, 'examples', 'data', 'in'));
    assert.ok(inputs.length >= 2);
    for (const name of inputs) {
      const original = readFileSync(join(dir, 'examples', 'data', 'in', name), 'utf8');
      const expected = `# redacted by DataBridge from ${name}\n${original.replace(/\d/g, '#')}`;
      assert.equal(readFileSync(join(dir, 'examples', 'out', 'redacted', name), 'utf8'), expected, name);
      assert.equal(
        gunzipSync(readFileSync(join(dir, 'examples', 'out', 'gzip', `${name}.gz`))).toString('utf8'),
        expected,
      );
    }
    assert.equal(summary.processors.read!.out, inputs.length);
    assert.equal(summary.processors.write!.in, inputs.length);
    assert.ok(summary.connections.every((c) => c.queued === 0));
    assert.deepEqual(summary.alerts, []);
  });

  test('an invalid flow exits 1 listing every finding with its pointer, and runs nothing', async (t) => {
    const dir = tempDir(t);
    const file = writeFlow(dir, {
      processors: [
        { id: 'gen', type: 'GenerateFlowFile' },
        { id: 'oops', type: 'Nope' },
      ],
      connections: [{ source: 'gen', relationship: 'success', destination: 'missing' }],
    });
    const r = await runCli(['run', file, '--data-dir', join(dir, 'd')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FLOW_UNKNOWN_TYPE \/processors\/1\/type/);
    assert.match(r.stderr, /FLOW_DANGLING_CONNECTION \/connections\/0\/destination/);
    assert.match(r.stderr, /FLOW_INVALID/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    const json = await runCli(['run', file, '--data-dir', join(dir, 'd'), '--json']);
    assert.equal(json.code, 1);
    const body = JSON.parse(json.stdout) as { error: { code: string; details: { findings: unknown[] } } };
    assert.equal(body.error.code, 'FLOW_INVALID');
    assert.equal(body.error.details.findings.length, 2);
    const bad = await runCli(['run', join(dir, 'absent.json')]);
    assert.equal(bad.code, 2);
    const badJson = await runCli(['run', writeFlow(dir, 'x').replace('flow.json', 'flow.json'), '--duration', 'soon']);
    assert.equal(badJson.code, 2, 'a bad --duration is bad usage');
  });

  test('each finding is printed once; an unknown field and a duplicate id are reported with the rest', async (t) => {
    const dir = tempDir(t);
    const file = writeFlow(dir, {
      bogus: 1,
      processors: [
        { id: 'a', type: 'NoSuchType' },
        { id: 'a', type: 'GenerateFlowFile', autoTerminate: ['success'] },
        { id: 'gen', type: 'GenerateFlowFile', properties: { 'File Size': 'lots' }, autoTerminate: ['success'] },
      ],
    });
    const r = await runCli(['run', file, '--data-dir', join(dir, 'd')]);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    for (const finding of [
      'error FLOW_SCHEMA /bogus',
      'error FLOW_UNKNOWN_TYPE /processors/0/type',
      'error FLOW_DUPLICATE_ID /processors/1/id',
      'error FLOW_PROPERTY_INVALID /processors/2/properties/File Size',
    ]) {
      assert.equal(lines.filter((l) => l.startsWith(`${finding}:`)).length, 1, `${finding} once in:\n${r.stderr}`);
    }
    assert.equal(lines.filter((l) => l.startsWith('error FLOW_INVALID')).length, 1);
  });

  test('Ctrl-C stops cleanly, leaving queued FlowFiles; the next run resumes them', async (t) => {
    const dir = tempDir(t);
    const file = writeFlow(dir, {
      processors: [
        { id: 'gen', type: 'GenerateFlowFile', properties: { 'Batch Size': '200', 'Max FlowFiles': '200' } },
        {
          id: 'slow',
          type: 'UpdateAttribute',
          properties: { seen: 'yes' },
          schedule: { period: '50 ms', batchSize: 5 },
        },
        { id: 'end', type: 'LogAttribute', autoTerminate: ['success'] },
      ],
      connections: [
        { source: 'gen', relationship: 'success', destination: 'slow' },
        { source: 'slow', relationship: 'success', destination: 'end' },
      ],
    });
    const data = join(dir, 'd');
    const child = spawn(process.execPath, [BIN, 'run', file, '--data-dir', data, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    // wait for the generator's session to reach the journal, not for a fixed time: machines are slow under load
    const journal = join(data, 'repository', 'flowfiles', 'journal.0');
    for (let i = 0; i < 500 && !(existsSync(journal) && statSync(journal).size > 20_000); i++) await sleep(20);
    await sleep(300);
    child.kill('SIGINT');
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 130);
    const first = JSON.parse(stdout) as Summary;
    assert.equal(first.stoppedBy, 'signal');
    const left = first.connections.reduce((n, c) => n + c.queued, 0);
    assert.ok(left > 0 && left < 200, `some were left queued: ${left}`);
    assert.equal(first.processors.end!.in + left, 200, 'none lost');

    const second = await runCli(['run', file, '--data-dir', data, '--json', '--idle', '500ms'], { timeoutMs: 90_000 });
    assert.equal(second.code, 0, second.stderr);
    const s2 = JSON.parse(second.stdout) as Summary;
    assert.equal(s2.resumed, left);
    // the generator makes its 200 anew; the resumed ones come on top
    assert.equal(s2.processors.end!.in, left + 200);
    assert.ok(s2.connections.every((c) => c.queued === 0));
  });

  test('SIGKILL mid-stream loses and duplicates no FlowFile; a restart delivers each once', async (t) => {
    const dir = tempDir(t);
    const out = join(dir, 'out');
    mkdirSync(out);
    const N = 1500;
    const file = writeFlow(dir, {
      processors: [
        {
          id: 'gen',
          type: 'GenerateFlowFile',
          properties: {
            'File Size': '100 B',
            'Batch Size': String(N),
            'Max FlowFiles': String(N),
            'Unique FlowFiles': 'true',
          },
        },
        {
          id: 'tag',
          type: 'UpdateAttribute',
          properties: { stage: '${filename}' },
          schedule: { period: '20 ms', batchSize: 20 },
        },
        { id: 'hash', type: 'HashContent', schedule: { batchSize: 20 } },
        {
          id: 'put',
          type: 'PutFile',
          properties: { Directory: out, 'Conflict Resolution Strategy': 'replace' },
          schedule: { batchSize: 20 },
          autoTerminate: ['success', 'failure'],
        },
      ],
      connections: [
        { source: 'gen', relationship: 'success', destination: 'tag' },
        { source: 'tag', relationship: 'success', destination: 'hash' },
        { source: 'hash', relationship: 'success', destination: 'put' },
        { source: 'hash', relationship: 'failure', destination: 'put' },
      ],
    });
    const data = join(dir, 'd');
    const journal = join(data, 'repository', 'flowfiles', 'journal.0');
    const child = spawn(process.execPath, [BIN, 'run', file, '--data-dir', data], { stdio: 'ignore' });
    // wait until the generator's session is in the journal, then let the flow move a while
    for (let i = 0; i < 300 && !(existsSync(journal) && statSync(journal).size > 100_000); i++) await sleep(20);
    await sleep(400);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));

    const delivered = () => readdirSync(out).filter((n) => !n.startsWith('.'));
    const repo = new JournalFlowFileRepository({ dir: join(data, 'repository', 'flowfiles') });
    const queued = repo.recover().map((q) => q.record.id);
    repo.close();
    const done = new Set(delivered());
    assert.equal(new Set(queued).size, queued.length, 'no FlowFile is queued twice');
    assert.ok(
      queued.length > 0 && done.size > 0,
      `killed mid-stream (${done.size} delivered, ${queued.length} queued)`,
    );
    const union = new Set([...queued, ...done]);
    assert.equal(union.size, N, 'every FlowFile is delivered or still queued');
    const both = queued.filter((id) => done.has(id)).length;
    assert.ok(both <= 20, `only PutFile's in-flight batch may be both written and still queued (${both})`);

    const again = await runCli(['run', file, '--data-dir', data, '--json'], { timeoutMs: 90_000 });
    assert.equal(again.code, 0, again.stderr);
    const s = JSON.parse(again.stdout) as Summary;
    assert.equal(s.resumed, queued.length);
    assert.ok(s.connections.every((c) => c.queued === 0));
    assert.equal(delivered().length, 2 * N, 'the resumed ones once each, plus the second run’s own');
  });
});
