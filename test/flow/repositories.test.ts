import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FileContentRepository } from '../../src/flow/content-repository.ts';
import type { FlowFileRecord } from '../../src/flow/flowfile.ts';
import { JournalFlowFileRepository } from '../../src/flow/flowfile-repository.ts';
import { tempDir } from '../helpers.ts';

function record(id: string, size = 0): FlowFileRecord {
  return {
    id,
    attributes: { uuid: id },
    size,
    entryDate: 1,
    lineageStartDate: 1,
    parentIds: [],
    claim: null,
    penalizedUntil: 0,
  };
}

describe('FlowFile repository (journal)', () => {
  test('replays commits in order; a torn last frame is cut off and the rest survives', (t) => {
    const dir = tempDir(t);
    const repo = new JournalFlowFileRepository({ dir });
    repo.commit(
      [
        { queue: 'q1', record: record('a') },
        { queue: 'q1', record: record('b') },
      ],
      [],
    );
    repo.commit([{ queue: 'q2', record: record('a') }], []);
    repo.commit([], ['b']);
    // no close(): as after kill -9; then a write cut short
    appendFileSync(join(dir, 'journal.0'), Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5]));
    const again = new JournalFlowFileRepository({ dir });
    assert.deepEqual(
      again.recover().map((q) => [q.queue, q.record.id]),
      [['q2', 'a']],
    );
    again.commit([{ queue: 'q1', record: record('c') }], []);
    const third = new JournalFlowFileRepository({ dir });
    assert.deepEqual(
      third.recover().map((q) => q.record.id),
      ['a', 'c'],
      'frames written after the cut are read',
    );
  });

  test('a checkpoint writes a snapshot and starts a fresh journal', (t) => {
    const dir = tempDir(t);
    const repo = new JournalFlowFileRepository({ dir, checkpointBytes: 2000 });
    for (let i = 0; i < 100; i++) repo.commit([{ queue: 'q', record: record(`f${i}`) }], i > 0 ? [`f${i - 1}`] : []);
    const journals = readdirSync(dir).filter((n) => n.startsWith('journal.'));
    assert.equal(journals.length, 1);
    assert.ok(statSync(join(dir, journals[0]!)).size < 2000);
    assert.deepEqual(
      new JournalFlowFileRepository({ dir }).recover().map((q) => q.record.id),
      ['f99'],
    );
  });
});

describe('content repository', () => {
  test('claims share segments; a segment goes when its last claim is released', (t) => {
    const dir = tempDir(t);
    const repo = new FileContentRepository({ dir, segmentSize: 8 });
    const [a, b] = repo.write([Buffer.from('hello '), Buffer.from('world')]);
    repo.retain(a!);
    repo.retain(b!);
    repo.retain(b!); // a clone of b
    assert.equal(Buffer.from(repo.read(b!)).toString(), 'world');
    assert.equal(readdirSync(dir).length, 1, 'small contents share one file');
    const [c] = repo.write([Buffer.alloc(20, 1)]);
    repo.retain(c!);
    assert.equal(readdirSync(dir).length, 2, 'a full segment rolls over');
    repo.release(a!);
    repo.release(b!);
    assert.equal(readdirSync(dir).length, 2, 'still held by the clone');
    repo.release(b!);
    assert.deepEqual(readdirSync(dir), ['1.seg'], 'the first segment is gone');
    repo.close();
  });

  test('recovery drops orphan segments and keeps referenced ones', (t) => {
    const dir = tempDir(t);
    const repo = new FileContentRepository({ dir, segmentSize: 4 });
    const [kept] = repo.write([Buffer.from('keep')]);
    repo.retain(kept!);
    repo.write([Buffer.from('orphan')]); // written, but its session never committed
    repo.close();
    const again = new FileContentRepository({ dir, segmentSize: 4 });
    again.recover([kept!]);
    assert.deepEqual(readdirSync(dir), ['0.seg']);
    assert.equal(Buffer.from(again.read(kept!)).toString(), 'keep');
    const [next] = again.write([Buffer.from('new')]);
    assert.equal(next!.segment, 2, 'new segments never reuse a number');
    again.close();
  });
});
