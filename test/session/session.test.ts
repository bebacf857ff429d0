import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDataBridgeError } from '../../src/errors.ts';
import type { FlowFile } from '../../src/sdk/index.ts';
import type { SessionOutcome } from '../../src/session/outcome.ts';
import { type SessionBackend, StandardProcessSession } from '../../src/session/session.ts';

function input(id: string, content: string, attributes: Record<string, string> = {}): FlowFile & { content: string } {
  return {
    id,
    attributes: { uuid: id, filename: `${id}.txt`, path: './', entryDate: '1', ...attributes },
    size: Buffer.byteLength(content),
    entryDate: 1,
    lineageStartDate: 1,
    parentIds: [],
    content,
  };
}

function session(inputs: (FlowFile & { content: string })[], relationships = ['success', 'failure']) {
  const applied: SessionOutcome[] = [];
  const backend: SessionBackend = {
    relationships: new Set(relationships),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    readInput: (id) => Buffer.from(inputs.find((i) => i.id === id)!.content),
    apply: (o) => void applied.push(structuredClone(o)),
  };
  return { s: new StandardProcessSession(backend, inputs), applied };
}

const code = (c: string) => (e: unknown) => isDataBridgeError(e) && e.code === c;

describe('StandardProcessSession', () => {
  test('get and getBatch read the batch in order; inputs never taken go back unpenalized', () => {
    const { s } = session([input('a', 'A'), input('b', 'B'), input('c', 'C')]);
    assert.equal(s.get()?.id, 'a');
    assert.deepEqual(
      s.getBatch(1).map((f) => f.id),
      ['b'],
    );
    s.rollback(true);
    assert.deepEqual(s.leftovers(), [
      { id: 'a', penalize: true },
      { id: 'b', penalize: true },
      { id: 'c', penalize: false },
    ]);
  });

  test('commit produces one outcome: transfers keep ids, changes apply, removed inputs are consumed', async () => {
    const { s, applied } = session([input('a', 'hello'), input('b', 'bye')]);
    const a = s.get()!;
    const b = s.get()!;
    const a2 = s.write(s.putAttribute(a, 'k', 'v'), 'HELLO');
    assert.equal(a2.size, 5);
    assert.equal(Buffer.from(await s.read(a2)).toString(), 'HELLO');
    s.transfer(a2, 'success');
    s.remove(b);
    s.commit();
    assert.equal(applied.length, 1);
    const o = applied[0]!;
    assert.deepEqual(o.consumed.sort(), ['a', 'b']);
    assert.equal(o.outputs.length, 1);
    assert.equal(o.outputs[0]!.id, 'a');
    assert.equal(o.outputs[0]!.attributes.k, 'v');
    assert.deepEqual(o.outputs[0]!.content, { kind: 'new', index: 0, offset: 0, length: 5 });
    assert.deepEqual(s.leftovers(), []);
  });

  test('clone and a clone range share the input content instead of copying it', () => {
    const { s, applied } = session([input('a', 'abcdef')]);
    const a = s.get()!;
    const whole = s.clone(a);
    const part = s.clone(a, { offset: 2, length: 3 });
    assert.notEqual(whole.id, a.id);
    assert.equal(part.size, 3);
    assert.equal(part.attributes.uuid, part.id);
    assert.deepEqual(part.parentIds, ['a']);
    for (const f of [a, whole, part]) s.transfer(f, 'success');
    s.commit();
    const contents = applied[0]!.outputs.map((o) => o.content);
    assert.deepEqual(contents, [
      { kind: 'input', from: 'a', offset: 0, length: 6 },
      { kind: 'input', from: 'a', offset: 0, length: 6 },
      { kind: 'input', from: 'a', offset: 2, length: 3 },
    ]);
    assert.equal(applied[0]!.contents.length, 0, 'no bytes copied');
    assert.throws(() => s.clone(a), code('SESSION_MISUSE'), 'a committed FlowFile is no longer held');
  });

  test('createChild of many parents keeps only the attributes they share', () => {
    const { s } = session([input('a', '', { shared: 'x', only: 'a' }), input('b', '', { shared: 'x', only: 'b' })]);
    const [a, b] = s.getBatch();
    const child = s.createChild([a!, b!]);
    assert.equal(child.attributes.shared, 'x');
    assert.equal(child.attributes.only, undefined);
    assert.deepEqual(child.parentIds, ['a', 'b']);
    assert.equal(child.attributes.uuid, child.id);
  });

  test('a FlowFile left untransferred at commit rolls the session back with a code', () => {
    const { s, applied } = session([input('a', 'x'), input('b', 'y')]);
    const a = s.get()!;
    s.get();
    s.transfer(a, 'success');
    assert.throws(() => s.commit(), code('SESSION_UNTRANSFERRED'));
    assert.equal(applied.length, 0);
    assert.deepEqual(s.leftovers(), [
      { id: 'a', penalize: true },
      { id: 'b', penalize: true },
    ]);
  });

  test('an undeclared relationship, a foreign FlowFile and uuid changes are refused', () => {
    const { s } = session([input('a', 'x')]);
    const a = s.get()!;
    assert.throws(() => s.transfer(a, 'nowhere'), code('SESSION_UNKNOWN_RELATIONSHIP'));
    assert.throws(() => s.putAttribute(input('zz', ''), 'k', 'v'), code('SESSION_MISUSE'));
    assert.throws(() => s.putAttribute(a, 'uuid', 'forged'), code('SESSION_MISUSE'));
    assert.throws(() => s.clone(a, { offset: 0, length: 2 }), code('SESSION_MISUSE'));
    assert.throws(() => s.putAttribute(a, 'n', 5 as unknown as string), code('SESSION_MISUSE'));
  });

  test('a failing apply rolls back and says so', () => {
    const inputs = [input('a', 'x')];
    const backend: SessionBackend = {
      relationships: new Set(['success']),
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      readInput: () => Buffer.from('x'),
      apply: () => {
        throw new Error('disk full');
      },
    };
    const s = new StandardProcessSession(backend, inputs);
    s.transfer(s.get()!, 'success');
    assert.throws(
      () => s.commit(),
      (e: unknown) => isDataBridgeError(e, 'SESSION_COMMIT_FAILED') && /disk full/.test(e.message),
    );
    assert.deepEqual(s.leftovers(), [{ id: 'a', penalize: true }]);
  });

  test('release gives an input back untouched; the session goes on after a commit', () => {
    const { s, applied } = session([input('a', 'x'), input('b', 'y'), input('c', 'z')]);
    const a = s.get()!;
    s.release(s.putAttribute(a, 'dropped', 'yes'));
    s.transfer(s.get()!, 'success');
    s.commit();
    s.transfer(s.get()!, 'failure');
    s.commit();
    assert.deepEqual(
      applied.map((o) => o.consumed),
      [['b'], ['c']],
    );
    assert.deepEqual(s.leftovers(), [{ id: 'a', penalize: false }]);
  });
});
