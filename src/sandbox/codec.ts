/**
 * The compact JSON of a trigger and its reply on a process sandbox's
 * channel (channel.ts): FlowFiles as tuples, not objects with their keys
 * repeated, and a reply that names each input by its index in the trigger
 * and leaves out what the host already holds (an input's id, dates and
 * parents; its attributes where unchanged). A batch of 256 replies in
 * ~9 KB instead of ~73 KB, and the host never takes an input's identity,
 * dates or lineage from the sandbox.
 *
 * The host decodes strictly: anything that is not the shape below (types,
 * indexes in range, integers where integers go) throws, and the channel
 * ends the sandbox for it.
 */

import type { FlowFile } from '../sdk/index.ts';
import type { OutputContent } from '../session/outcome.ts';
import { MAX_LANE_BYTES } from './channel.ts';
import type { TriggeredReply, TriggerRequest, WireError, WireOutcome } from './protocol.ts';

/** An input: id, attributes, size, entryDate, lineageStartDate, parentIds. */
type InputTuple = [string, Record<string, string>, number, number, number, string[]];

/**
 * An output: the input it is (its index; -1 for a FlowFile made in the
 * session), the relationship's index, penalized (1) or not (0), attributes
 * (null: the input's, unchanged), then its content (0 empty; 1 bytes of an
 * input: its index, offset, length; 2 new bytes: the buffer's index,
 * offset, length), then, for a new FlowFile only, its id, entryDate,
 * lineageStartDate and parentIds.
 */
type OutputTuple =
  | [number, number, 0 | 1, Record<string, string> | null, 0 | 1 | 2, number, number, number]
  | [
      number,
      number,
      0 | 1,
      Record<string, string> | null,
      0 | 1 | 2,
      number,
      number,
      number,
      string,
      number,
      number,
      string[],
    ];

interface TriggerJson {
  type: 'trigger';
  id: number;
  instance: number;
  relationships: string[];
  inputs: InputTuple[];
  offsets: number[];
}

interface TriggeredJson {
  type: 'triggered';
  id: number;
  /** Per commit: outputs, consumed inputs (indexes), the lengths of its new buffers. */
  outcomes: [OutputTuple[], number[], number[]][];
  /** Inputs going back: index, penalized (1) or not (0). */
  leftovers: [number, 0 | 1][];
  yielded: boolean;
  error: WireError | null;
}

export function encodeTrigger(m: TriggerRequest): string {
  const json: TriggerJson = {
    type: 'trigger',
    id: m.id,
    instance: m.instance,
    relationships: m.relationships,
    inputs: m.inputs.map((f) => [
      f.id,
      f.attributes as Record<string, string>,
      f.size,
      f.entryDate,
      f.lineageStartDate,
      f.parentIds as string[],
    ]),
    offsets: m.offsets,
  };
  return JSON.stringify(json);
}

/** The sandbox's side; the content is filled in from the lane. */
export function decodeTrigger(text: string): Omit<TriggerRequest, 'content'> {
  const j = JSON.parse(text) as TriggerJson;
  return {
    type: 'trigger',
    id: j.id,
    instance: j.instance,
    relationships: j.relationships,
    inputs: j.inputs.map(([id, attributes, size, entryDate, lineageStartDate, parentIds]) => ({
      id,
      attributes,
      size,
      entryDate,
      lineageStartDate,
      parentIds,
    })),
    offsets: j.offsets,
  };
}

const KIND = { empty: 0, input: 1, new: 2 } as const;

/** The sandbox's side: `TriggeredReply` with inputs by index (`at`: an input id's index in the trigger). */
export function encodeTriggered(
  m: TriggeredReply,
  at: ReadonlyMap<string, number>,
  relationships: readonly string[],
): string {
  const index = (id: string) => at.get(id) ?? -1;
  const json: TriggeredJson = {
    type: 'triggered',
    id: m.id,
    outcomes: m.outcomes.map((o) => [
      o.outputs.map((out): OutputTuple => {
        const input = index(out.id);
        const c = out.content;
        const head: OutputTuple = [
          input,
          relationships.indexOf(out.relationship),
          out.penalize ? 1 : 0,
          out.attributes,
          KIND[c.kind],
          c.kind === 'empty' ? 0 : c.kind === 'input' ? index(c.from) : c.index,
          c.kind === 'empty' ? 0 : c.offset,
          c.kind === 'empty' ? 0 : c.length,
        ];
        return input >= 0 ? head : [...head, out.id, out.entryDate, out.lineageStartDate, out.parentIds];
      }),
      o.consumed.map(index),
      o.lengths,
    ]),
    leftovers: m.leftovers.map((l) => [index(l.id), l.penalize ? 1 : 0]),
    yielded: m.yielded,
    error: m.error,
  };
  return JSON.stringify(json);
}

function fail(what: string): never {
  throw new Error(`a reply with ${what}`);
}

function int(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(`${what} ${JSON.stringify(v)}`);
  return v;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) fail(`${what} that is not a list`);
  return v;
}

function strings(v: unknown, what: string): string[] {
  for (const s of list(v, what)) if (typeof s !== 'string') fail(`${what} that are not strings`);
  return v as string[];
}

function attributes(v: unknown): Record<string, string> | null {
  if (v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) fail('attributes that are not an object');
  for (const k in v) if (typeof (v as Record<string, unknown>)[k] !== 'string') fail(`attribute ${k} not a string`);
  return v as Record<string, string>;
}

/**
 * The host's side: the reply as `TriggeredReply` (its `packed` buffers still
 * to be read from the lane), inputs named by the trigger's own FlowFiles.
 */
export function decodeTriggered(
  value: unknown,
  id: number,
  inputs: readonly FlowFile[],
  relationships: readonly string[],
): Omit<TriggeredReply, 'outcomes'> & { outcomes: Omit<WireOutcome, 'packed'>[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('a body that is not an object');
  const j = value as Record<string, unknown>;
  if (j.type !== 'triggered' || j.id !== id) fail(`no reply to trigger ${id}`);
  const last = inputs.length - 1;
  const input = (i: unknown, what: string) => inputs[int(i, 0, last, what)]!;
  const outcomes = list(j.outcomes, 'outcomes').map((o) => {
    const [outputs, consumed, lengths] = list(o, 'an outcome') as [unknown, unknown, unknown];
    const sizes = list(lengths, 'lengths').map((n) => int(n, 0, MAX_LANE_BYTES, 'a length'));
    return {
      outputs: list(outputs, 'outputs').map((t) => {
        const [i, rel, penalize, attrs, kind, a, b, c, newId, entryDate, lineageStartDate, parentIds] = list(
          t,
          'an output',
        );
        const from = int(i, -1, last, 'an input index');
        const length = int(c, 0, Number.MAX_SAFE_INTEGER, 'a content length');
        const offset = int(b, 0, Number.MAX_SAFE_INTEGER, 'a content offset');
        const k = int(kind, 0, 2, 'a content kind');
        const content: OutputContent =
          k === 0
            ? { kind: 'empty' }
            : k === 1
              ? { kind: 'input', from: input(a, 'a content source').id, offset, length }
              : { kind: 'new', index: int(a, 0, sizes.length - 1, 'a buffer index'), offset, length };
        const own = from >= 0 ? inputs[from]! : null;
        if (
          !own &&
          (typeof newId !== 'string' || typeof entryDate !== 'number' || typeof lineageStartDate !== 'number')
        )
          fail('a new FlowFile without its id and dates');
        return {
          id: own ? own.id : (newId as string),
          attributes: attributes(attrs),
          entryDate: own ? own.entryDate : (entryDate as number),
          lineageStartDate: own ? own.lineageStartDate : (lineageStartDate as number),
          parentIds: own ? [...own.parentIds] : strings(parentIds, 'parent ids'),
          content,
          relationship: relationships[int(rel, 0, relationships.length - 1, 'a relationship index')]!,
          penalize: int(penalize, 0, 1, 'a penalty flag') === 1,
        };
      }),
      consumed: list(consumed, 'consumed').map((n) => input(n, 'a consumed index').id),
      lengths: sizes,
    };
  });
  const leftovers = list(j.leftovers, 'leftovers').map((l) => {
    const [i, p] = list(l, 'a leftover');
    return { id: input(i, 'a leftover index').id, penalize: int(p, 0, 1, 'a penalty flag') === 1 };
  });
  if (typeof j.yielded !== 'boolean') fail('yielded that is not a boolean');
  const e = j.error as WireError | null;
  if (e !== null && (typeof e !== 'object' || typeof e.message !== 'string' || typeof e.code !== 'string'))
    fail('an error that is not { code, message }');
  return { type: 'triggered', id, outcomes, leftovers, yielded: j.yielded, error: e };
}
