/**
 * The host's check of sandbox messages (src/sandbox/protocol-check.ts), rule
 * by rule: a well-formed message passes, and each way of breaking a rule is
 * a ProtocolViolation that says what was wrong.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { BOUNDS, type TriggeredReply } from '../../src/sandbox/protocol.ts';
import {
  checkAttributes,
  checkReply,
  checkSandboxMessage,
  ProtocolViolation,
  REPLY_TO,
  type TriggerInFlight,
} from '../../src/sandbox/protocol-check.ts';
import type { FlowFile } from '../../src/sdk/index.ts';

const OWN = 'acme.own';
/** A message being broken on purpose: any field may get any value. */
// biome-ignore lint/suspicious/noExplicitAny: replies are broken on purpose, field by field
type Loose = Record<string, any>;
const hosts = (p: string) => p === OWN;

function violates(fn: () => unknown, why: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolViolation, `a ProtocolViolation, not ${String(err)}`);
    assert.match(err.message, why);
    return true;
  });
}

const check = (m: unknown) => checkSandboxMessage(m, hosts);

describe('any message', () => {
  test('a known type, as an object', () => {
    violates(() => check(null), /a message that is null, not an object/);
    violates(() => check([1]), /a message that is a list of 1, not an object/);
    violates(() => check(new Map()), /a message that is a Map, not an object/);
    violates(() => check({ type: 'hello' }), /unknown type "hello"/);
    violates(() => check({ type: { toString: () => 'log' } }), /unknown type an Object/);
    assert.deepEqual(check({ type: 'ready', protocol: 3, extra: 1 }), { type: 'ready', protocol: 3 });
  });

  test('replies carry a positive integer id', () => {
    assert.deepEqual(check({ type: 'stopped', id: 4 }), { type: 'stopped', id: 4 });
    violates(() => check({ type: 'stopped', id: 0 }), /a request id of 0/);
    violates(() => check({ type: 'reported', id: 1.5 }), /a request id of 1.5/);
    violates(() => check({ type: 'reported', id: '1' }), /a request id of "1"/);
  });

  test('usage: counts that are numbers from 0', () => {
    const usage = { type: 'usage', id: 1, heapUsed: 1, heapTotal: 2, rss: 3, cpuUser: 4, cpuSystem: 5, handles: 6 };
    assert.deepEqual(check(usage), usage);
    violates(() => check({ ...usage, rss: -1 }), /rss of -1/);
    violates(() => check({ ...usage, handles: Number.NaN }), /handles of NaN/);
  });

  test('created: findings within bounds', () => {
    assert.deepEqual(check({ type: 'created', id: 2, findings: [{ property: 'p', message: 'm' }] }), {
      type: 'created',
      id: 2,
      findings: [{ property: 'p', message: 'm' }],
    });
    violates(() => check({ type: 'created', id: 2, findings: [{ message: 3 }] }), /a finding message that is 3/);
    const many = Array.from({ length: BOUNDS.findings + 1 }, () => ({ message: 'm' }));
    violates(() => check({ type: 'created', id: 2, findings: many }), /1025 findings/);
  });

  test('loaded: components as plain data, each named, with lists of named relationships and properties', () => {
    const info = { name: 'P', version: '1', description: '', tags: [], properties: [], relationships: [{ name: 's' }] };
    const loaded = { type: 'loaded', id: 1, processors: { P: info }, controllerServices: {}, reportingTasks: {} };
    assert.equal(check(loaded).type, 'loaded');
    violates(() => check({ ...loaded, processors: { P: { ...info, name: 7 } } }), /processors.P with a name that is 7/);
    violates(
      () => check({ ...loaded, processors: { P: { ...info, relationships: [{}] } } }),
      /one of relationships, with a name that is undefined/,
    );
    violates(() => check({ ...loaded, processors: { P: { ...info, when: new Date() } } }), /holding a Date/);
    violates(
      () => check({ ...loaded, processors: { P: { ...info, description: 'x'.repeat(BOUNDS.componentInfos) } } }),
      /a loaded reply over/,
    );
  });

  test('error: a code and message within bounds, naming only a plugin the sandbox runs', () => {
    const ok = check({ type: 'error', id: 3, error: { code: 'E', message: 'm', plugin: OWN } });
    assert.deepEqual(ok, { type: 'error', id: 3, error: { code: 'E', message: 'm', stack: undefined, plugin: OWN } });
    violates(() => check({ type: 'error', id: 3, error: { code: 1, message: 'm' } }), /an error code that is 1/);
    violates(
      () => check({ type: 'error', id: 3, error: { code: 'E', message: 'x'.repeat(BOUNDS.errorText + 1) } }),
      /an error message of 65537 characters/,
    );
    violates(
      () => check({ type: 'error', id: 3, error: { code: 'E', message: 'm', plugin: 'other' } }),
      /an error claiming plugin "other"/,
    );
  });
});

describe('log', () => {
  const log = { type: 'log', level: 'info', message: 'hi', fields: { a: [1, { b: null }] }, plugin: OWN };

  test('a level that exists, a bounded message and fields, the sandbox’s own plugin', () => {
    assert.deepEqual(check(log), log);
    violates(() => check({ ...log, level: 'no-such-level' }), /a log of level "no-such-level"/);
    violates(() => check({ ...log, level: 'constructor' }), /a log of level "constructor"/);
    violates(() => check({ ...log, message: 42 }), /a log message that is 42, not a string/);
    violates(
      () => check({ ...log, message: 'x'.repeat(BOUNDS.logMessage + 1) }),
      /a log message of 65537 characters \(at most 65536\)/,
    );
    violates(() => check({ ...log, fields: [] }), /log fields that is a list of 0, not an object/);
    violates(() => check({ ...log, fields: { big: 'x'.repeat(BOUNDS.logFields) } }), /log fields over 65536/);
    violates(
      () => check({ ...log, fields: { n: Number.POSITIVE_INFINITY } }),
      /log fields holding the number Infinity/,
    );
    violates(() => check({ ...log, plugin: 'good.healthy' }), /a log claiming plugin "good.healthy"/);
    violates(() => check({ ...log, plugin: undefined }), /a log naming a plugin that is undefined/);
  });

  test('fields nested past 64 levels are refused without a stack overflow', () => {
    let deep: unknown = {};
    for (let i = 0; i < 10_000; i++) deep = { d: deep };
    violates(() => check({ ...log, fields: deep }), /nested more than 64 deep/);
  });
});

describe('attributes', () => {
  test('a plain object of strings, at most 1024, 64 Ki a value, 1 Mi in all', () => {
    assert.deepEqual(checkAttributes({ a: '1' }), { a: '1' });
    violates(() => checkAttributes({ a: 1 }), /attribute "a" that is 1, not a string/);
    violates(() => checkAttributes(new Map()), /attributes that are a Map/);
    const many = Object.fromEntries(Array.from({ length: BOUNDS.attributes + 1 }, (_, i) => [`k${i}`, '']));
    violates(() => checkAttributes(many), /more than 1024 attributes/);
    violates(
      () => checkAttributes({ a: 'x'.repeat(BOUNDS.attributeValue + 1) }),
      /attribute "a" of 65537 characters \(at most 65536\)/,
    );
    violates(() => checkAttributes({ ['k'.repeat(BOUNDS.attributeName + 1)]: '' }), /an attribute name of 1025/);
    const wide = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, 'x'.repeat(BOUNDS.attributeValue)]));
    violates(() => checkAttributes(wide), /attributes of more than 1048576 characters/);
  });
});

describe('a reply against its request', () => {
  test('of the kind the request expects, or an error', () => {
    for (const [request, kind] of Object.entries(REPLY_TO)) {
      const reply = check(
        kind === 'usage'
          ? { type: kind, id: 1, heapUsed: 0, heapTotal: 0, rss: 0, cpuUser: 0, cpuSystem: 0, handles: 0 }
          : kind === 'loaded'
            ? { type: kind, id: 1, processors: {}, controllerServices: {}, reportingTasks: {} }
            : kind === 'created'
              ? { type: kind, id: 1, findings: [] }
              : kind === 'triggered'
                ? { type: kind, id: 1, outcomes: [], leftovers: [], yielded: false, error: null }
                : { type: kind, id: 1 },
      );
      checkReply(request as keyof typeof REPLY_TO, reply, { inputs: [], relationships: [] });
      checkReply(request as keyof typeof REPLY_TO, check({ type: 'error', id: 1, error: { code: 'E', message: 'm' } }));
    }
    violates(
      () => checkReply('load', check({ type: 'created', id: 1, findings: [] })),
      /a created reply to a load request/,
    );
    violates(() => checkReply('trigger', check({ type: 'stopped', id: 1 })), /a stopped reply to a trigger request/);
  });
});

describe('a trigger’s reply', () => {
  const input = (size = 3): FlowFile => ({
    id: randomUUID(),
    attributes: { uuid: 'x' },
    size,
    entryDate: 10,
    lineageStartDate: 5,
    parentIds: ['p'],
  });
  const a = input();
  const b = input(0);
  const held = randomUUID();
  const trigger: TriggerInFlight = {
    inputs: [a, b],
    relationships: ['success', 'failure'],
    holds: (id) => id === a.id || id === b.id || id === held,
  };
  const sentOn = (f: FlowFile) => ({
    id: f.id,
    attributes: null,
    entryDate: 0,
    lineageStartDate: 0,
    parentIds: [] as string[],
    content: f.size ? { kind: 'input', from: f.id, offset: 0, length: f.size } : { kind: 'empty' },
    relationship: 'success',
    penalize: false,
  });
  const made = (parents: string[], extra: Record<string, unknown> = {}) => ({
    id: randomUUID(),
    attributes: { made: '1' },
    entryDate: 20,
    lineageStartDate: 5,
    parentIds: parents,
    content: { kind: 'empty' },
    relationship: 'success',
    penalize: false,
    ...extra,
  });
  /** A reply that sends `a` on and leaves `b` over, then `edit` changes it. */
  const reply = (edit: (r: Loose, o: Loose) => void = () => {}) => {
    const o = { outputs: [sentOn(a)], consumed: [a.id], packed: new ArrayBuffer(0), lengths: [] as number[] };
    const r: Loose = {
      type: 'triggered',
      id: 9,
      outcomes: [o],
      leftovers: [{ id: b.id, penalize: false }],
      yielded: false,
      error: null,
    };
    edit(r, o);
    return r;
  };
  const run = (r: unknown) => checkReply('trigger', check(r), trigger);

  test('a well-formed reply passes; an input sent on gets the host’s own dates and lineage', () => {
    const r = check(reply((_, o) => o.outputs.push(made([a.id]), made([b.id])))) as TriggeredReply;
    checkReply('trigger', r, trigger);
    const out = r.outcomes[0]!.outputs[0]!;
    assert.deepEqual([out.entryDate, out.lineageStartDate, out.parentIds], [10, 5, ['p']]);
  });

  test('shape: types and bounds of every field', () => {
    violates(() => run(reply((r) => (r.yielded = 'yes'))), /yielded that is "yes", not a boolean/);
    violates(() => run(reply((r) => (r.outcomes = {}))), /outcomes that is an Object, not a list/);
    violates(() => run(reply((_, o) => (o.outputs[0].penalize = 1))), /a penalty flag that is 1/);
    violates(() => run(reply((_, o) => (o.outputs[0].content = { kind: 'other' }))), /a content of kind "other"/);
    violates(() => run(reply((_, o) => (o.outputs[0].attributes = { n: 1 }))), /attribute "n" that is 1/);
    violates(() => run(reply((_, o) => (o.packed = new SharedArrayBuffer(0)))), /not an ArrayBuffer/);
    violates(() => run(reply((r) => (r.error = { code: 'E' }))), /an error message that is undefined/);
  });

  test('content lengths: integers from 0 that add up to the buffer, outputs within them', () => {
    const withNew = (lengths: unknown[], bytes: number, length = bytes) =>
      reply((_, o) => {
        o.packed = new ArrayBuffer(bytes);
        o.lengths = lengths;
        o.outputs.push(made([a.id], { content: { kind: 'new', index: 0, offset: 0, length } }));
      });
    run(withNew([3], 3));
    violates(() => run(withNew([-5], 3)), /a content length of -5/);
    violates(() => run(withNew([1.5], 3)), /a content length of 1.5/);
    violates(() => run(withNew([2 ** 60], 3)), /a content length of 1152921504606847000/);
    violates(() => run(withNew([5], 3)), /content lengths that add up to 5 bytes, not the 3 sent/);
    violates(() => run(withNew([3], 3, 4)), /a content of 0\+4 in a buffer of 3 bytes/);
    violates(() => run(withNew([3], 3, -1)), /a content length of -1/);
    violates(
      () =>
        run(
          reply((_, o) => o.outputs.push(made([a.id], { content: { kind: 'new', index: 0, offset: 0, length: 0 } }))),
        ),
      /a buffer index of 0 \(an integer from 0 to -1\)/,
    );
    violates(
      () => run(reply((_, o) => (o.outputs[0].content = { kind: 'input', from: a.id, offset: 1, length: 3 }))),
      /content 1\+3 of input .* which has 3 bytes/,
    );
  });

  test('every input consumed or left over, exactly once', () => {
    violates(() => run(reply((r) => r.leftovers.push({ id: a.id, penalize: true }))), /both consumed and left over/);
    violates(() => run(reply((r) => r.leftovers.push({ id: b.id, penalize: true }))), /left over twice/);
    violates(() => run(reply((r) => (r.leftovers = []))), new RegExp(`input ${b.id} neither consumed nor left over`));
    violates(
      () =>
        run(reply((r) => r.outcomes.push({ outputs: [], consumed: [a.id], packed: new ArrayBuffer(0), lengths: [] }))),
      new RegExp(`input ${a.id} consumed twice`),
    );
    violates(() => run(reply((_, o) => o.consumed.push(randomUUID()))), /which is not an input of the trigger/);
    violates(
      () => run(reply((r) => r.leftovers.push({ id: 'z', penalize: true }))),
      /a leftover "z", which is not an input/,
    );
  });

  test('an input is sent on once, by the commit that consumed it', () => {
    violates(() => run(reply((_, o) => o.outputs.push(sentOn(a)))), new RegExp(`input ${a.id} sent on twice`));
    violates(
      () => run(reply((_, o) => o.outputs.push(sentOn(b)))),
      new RegExp(`input ${b.id} sent on by a commit that did not consume it`),
    );
    // consumed by a first commit, sent on (or read) by a second
    const split = (second: Record<string, unknown>) =>
      reply((r, o) => {
        o.outputs = [];
        r.outcomes.push({ outputs: [second], consumed: [], packed: new ArrayBuffer(0), lengths: [] });
      });
    violates(() => run(split(sentOn(a))), /sent on by a commit that did not consume it/);
    violates(
      () => run(split(made([], { content: { kind: 'input', from: a.id, offset: 0, length: 1 } }))),
      /consumed by an earlier commit/,
    );
  });

  test('a checked reply claims its new ids: a second reply in the same turn cannot make them again', () => {
    // two tasks of one sandbox whose replies arrive in one read: both are checked before either is applied
    const claimed = new Set<string>();
    const ids = {
      holds: (id: string) => trigger.holds!(id) || claimed.has(id),
      claim: (x: readonly string[]) => {
        for (const id of x) claimed.add(id);
      },
    };
    const twin = made([a.id]);
    const first = reply((_, o) => o.outputs.push({ ...twin }));
    checkReply('trigger', check(first), { ...trigger, ...ids });
    assert.deepEqual([...claimed], [twin.id]);
    violates(
      () => checkReply('trigger', check(reply((_, o) => o.outputs.push({ ...twin }))), { ...trigger, ...ids }),
      new RegExp(`${twin.id}, which the host already holds`),
    );
    // a reply that breaks a rule claims nothing
    const other = made([a.id]);
    violates(
      () =>
        checkReply(
          'trigger',
          check(
            reply((r, o) => {
              o.outputs.push(other);
              r.leftovers = [];
            }),
          ),
          { ...trigger, ...ids },
        ),
      /neither consumed nor left over/,
    );
    assert.equal(claimed.has(other.id), false);
  });

  test('new FlowFiles: UUIDs, fresh, none twice, with attributes, parents among inputs and new ones', () => {
    violates(
      () => run(reply((_, o) => o.outputs.push(made([], { id: 'mine' })))),
      /a new FlowFile id "mine" that is not a UUID/,
    );
    violates(
      () =>
        run(
          reply((_, o) => {
            const x = made([a.id]);
            o.outputs.push(x, { ...x });
          }),
        ),
      /new FlowFile id .* twice/,
    );
    violates(
      () => run(reply((_, o) => o.outputs.push(made([], { id: held })))),
      new RegExp(`${held}, which the host already holds`),
    );
    violates(() => run(reply((_, o) => o.outputs.push(made([], { attributes: null })))), /without attributes/);
    const foreign = randomUUID();
    violates(
      () => run(reply((_, o) => o.outputs.push(made([foreign])))),
      new RegExp(`parent "${foreign}" is neither an input nor new`),
    );
    // a child of a new FlowFile of the same reply is fine
    run(
      reply((_, o) => {
        const parent = made([a.id]);
        o.outputs.push(parent, made([parent.id as string]));
      }),
    );
    violates(
      () => run(reply((_, o) => o.outputs.push(made([], { relationship: 'nowhere' })))),
      /relationship "nowhere", not offered/,
    );
  });
});
