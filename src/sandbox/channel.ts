/**
 * A process sandbox's channel, both ends. Messages are JSON, one per
 * length-prefixed frame, over a stream socket (descriptor 3): plain data the
 * host can check, never a structured clone it would have to deserialize.
 * Content travels beside the frames, in two lanes: unlinked files in a tmpfs,
 * one written by the host (descriptor 4, read-only in the sandbox), one by
 * the sandbox (descriptor 5). Each trigger in flight owns a slot, the same
 * region of both lanes: the trigger (its compact JSON, codec.ts) and its
 * content go into the down lane, its reply and the reply's new content into
 * the up lane; a small frame announces each, and the reader copies it out
 * with a pread or two.
 *
 * Why lanes: a socket's send buffer holds ~146 KiB here, so a batch of 256
 * KiB crossed in several turns of both event loops (the sender writes what
 * fits, waits for the reader to drain it, writes on), and a busy host turns
 * its loop every few ms. Through a lane a batch is one write and one read.
 *
 * The host trusts nothing from the sandbox: a frame over its cap
 * (FRAME_CAPS: checked on its length prefix, before its bytes are kept), a
 * body that is not a JSON object, a reply to no trigger in flight or of
 * another kind than `triggered` or `error` to one, a reply's JSON over
 * replyJsonCap or one codec.ts cannot read, content past replyContentCap
 * (the sandbox's memory limit) or adding up to another figure than its
 * frame announced, a reply bigger than what the sandbox has written into
 * its lane (holes: a sparse lane costs it nothing, the host a read and a
 * copy), or a lane shorter than announced are violations, and the sandbox
 * is ended. The host reads a reply at the slot it
 * gave the trigger, never where the sandbox says. What gets through is then
 * checked as every sandbox message is, worker or process
 * (protocol-check.ts, from SandboxHost): this end only frames and decodes.
 */

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  statfsSync,
  unlinkSync,
  writeSync,
  writevSync,
} from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { decodeTrigger, decodeTriggered, encodeTrigger, encodeTriggered } from './codec.ts';
import type { HostMessage, SandboxMessage, TriggeredReply, TriggerRequest } from './protocol.ts';

/** The sandbox's descriptors: the frame socket and the two content lanes. Nothing else is inherited. */
export const CHANNEL_FD = 3;
export const DOWN_LANE_FD = 4;
export const UP_LANE_FD = 5;

/** The largest frame the sandbox accepts from the host (metadata only: content goes through the lanes). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/**
 * The largest frame the host reads from a sandbox, by kind. The kind is
 * known only once the frame is parsed, so the length prefix is held to the
 * largest kind the sandbox may send now (`loaded` or `created` only while
 * such a request is in flight) before a byte of the body is kept, and the
 * body to its own kind's cap before it is parsed. The runtime keeps its
 * messages within these (childChannel: a log or an error cut, anything
 * else answered by an error); only a sandbox writing to the channel itself
 * passes one.
 */
export const FRAME_CAPS = {
  /** A log message (the runtime cuts one to fit). */
  log: 32 * 1024,
  /** Any other message: a reply's head, an error (cut to fit), usage, ready. */
  other: 256 * 1024,
  /** A `created` reply (its findings). */
  created: 1024 * 1024,
  /** A `loaded` reply (what a plugin's components say of themselves: BOUNDS.componentInfos). */
  loaded: 8 * 1024 * 1024,
} as const;
/** The most content one trigger or one reply may carry; a reply less where its sandbox has a memory limit. */
export const MAX_LANE_BYTES = 1024 * 1024 * 1024;
/**
 * The most JSON a reply to a batch of `inputs` FlowFiles may have in its
 * lane: parsing is the host's cost, so a few MiB, whatever the batch.
 */
export function replyJsonCap(inputs: number): number {
  return Math.min(8 * 1024 * 1024, 4 * 1024 * 1024 + inputs * 16 * 1024);
}
/**
 * The most content the host reads from one reply of a sandbox with this
 * memory limit: the sandbox wrote it into its lane, whose pages its memory
 * limit pays for (tmpfs pages are charged to their writer), so it can hold
 * no more than that at once.
 */
export function replyContentCap(maxMemoryMB: number | undefined): number {
  return maxMemoryMB ? Math.min(MAX_LANE_BYTES, maxMemoryMB * 1024 * 1024) : MAX_LANE_BYTES;
}
/** Where slot n's region starts: n * SLOT_BYTES. The lanes are sparse files: a hole costs nothing. */
const SLOT_BYTES = 2 ** 31;
/** A lane past this size is cut back to nothing when no trigger is in flight (a big batch's pages freed). */
const TRIM_BYTES = 64 * 1024 * 1024;

/** Splits a byte stream into frames: a 4-byte big-endian length, then that many bytes. */
export class FrameReader {
  readonly #max: () => number;
  readonly #onFrame: (body: Buffer) => void;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = -1;

  /** `max`: the cap, or what it is when a length prefix is read (it may depend on what is in flight). */
  constructor(max: number | (() => number), onFrame: (body: Buffer) => void) {
    this.#max = typeof max === 'number' ? () => max : max;
    this.#onFrame = onFrame;
  }

  /** Takes bytes as they arrive; throws on a frame longer than the cap (before holding its bytes). */
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < 4) return;
        this.#need = this.#take(4).readUInt32BE(0);
        const max = this.#max();
        if (this.#need > max) {
          // nothing more is kept: the caller ends the sandbox
          this.#chunks = [];
          this.#buffered = 0;
          throw new Error(`a frame of ${this.#need} bytes (at most ${max})`);
        }
      }
      if (this.#buffered < this.#need) return;
      const body = this.#take(this.#need);
      this.#need = -1;
      this.#onFrame(body);
    }
  }

  #take(n: number): Buffer {
    this.#buffered -= n;
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    return out;
  }
}

/** One message as a frame. */
export function frame(message: unknown): Buffer {
  const json = JSON.stringify(message);
  const n = Buffer.byteLength(json);
  if (n > MAX_FRAME_BYTES) throw new Error(`a message of ${n} bytes is over the frame cap of ${MAX_FRAME_BYTES}`);
  const out = Buffer.allocUnsafe(4 + n);
  out.writeUInt32BE(n, 0);
  out.write(json, 4);
  return out;
}

/** Writes byte arrays one after another at the start of a slot's region of a lane, in one call. */
export function writeLane(fd: number, slot: number, ...parts: Uint8Array[]): void {
  let at = slot * SLOT_BYTES;
  let done = writevSync(fd, parts, at);
  for (const p of parts) {
    // a regular file takes it all at once but on a full disk: then the rest, piece by piece (or ENOSPC)
    let k = Math.min(done, p.byteLength);
    done -= k;
    while (k < p.byteLength) k += writeSync(fd, p, k, p.byteLength - k, at + k);
    at += p.byteLength;
  }
}

/** Reads `length` bytes at a slot's region of a lane into a buffer of their own; null when the lane is shorter. */
export function readLane(fd: number, slot: number, at: number, length: number): ArrayBuffer | null {
  const out = Buffer.allocUnsafeSlow(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, slot * SLOT_BYTES + at + done);
    if (n === 0) return null;
    done += n;
  }
  return out.buffer as ArrayBuffer;
}

/** The host's side of a sandbox's lanes, and the descriptors to give the sandbox (then closed here). */
export interface Lanes {
  down: number;
  up: number;
  /** The sandbox's descriptors 4 and 5: the down lane read-only, the up lane read-write. */
  child: [number, number];
  /**
   * Whether the lanes are in a tmpfs, where a file's blocks are exactly
   * the pages written to it (and charged to the writer's memory). On a disk
   * filesystem blocks can lag or be compressed away, and the check of a
   * reply against them is skipped.
   */
  tmpfs: boolean;
}

const TMPFS_MAGIC = 0x01021994;

/**
 * Makes a sandbox's two lanes: files in a tmpfs (/dev/shm where there is
 * one), opened and unlinked at once, so that only the host and the sandbox
 * hold them and they are gone when both close them.
 */
export function openLanes(): Lanes {
  const dir = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const open = (childFlags: string): [number, number] => {
    const path = join(dir, `databridge-lane-${process.pid}-${randomBytes(8).toString('hex')}`);
    const host = openSync(path, 'wx+', 0o600);
    try {
      return [host, openSync(path, childFlags)];
    } finally {
      unlinkSync(path);
    }
  };
  const [down, downChild] = open('r');
  const [up, upChild] = open('r+');
  return { down, up, child: [downChild, upChild], tmpfs: statfsSync(dir).type === TMPFS_MAGIC };
}

/** The host's slots: one per trigger in flight, the smallest free first. */
export class Slots {
  readonly #byId = new Map<number, number>();
  readonly #free: number[] = [];
  #next = 0;

  take(id: number): number {
    const slot = this.#free.pop() ?? this.#next++;
    this.#byId.set(id, slot);
    return slot;
  }

  /** The slot a request held (now free again), if it held one. */
  release(id: number): number | undefined {
    const slot = this.#byId.get(id);
    if (slot === undefined) return undefined;
    this.#byId.delete(id);
    this.#free.push(slot);
    this.#free.sort((a, b) => b - a);
    return slot;
  }

  get inUse(): number {
    return this.#byId.size;
  }
}

/** Frees a big batch's pages: a lane past TRIM_BYTES is cut back to nothing (call when no trigger is in flight). */
function trimLanes(lanes: Lanes): void {
  // blocks, not size: the slots' regions are far apart, and the holes between them hold nothing
  for (const fd of [lanes.down, lanes.up]) if (fstatSync(fd).blocks * 512 > TRIM_BYTES) ftruncateSync(fd, 0);
}

/** Throws unless `v` is an integer from 0 to `max`. */
function count(v: unknown, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new Error(`${what}: ${String(v)}`);
  return v;
}

/** The frame of a trigger or its reply: the message itself lies in the slot's region of a lane. */
interface LaneFrame {
  type: 'trigger' | 'triggered';
  id: number;
  /** Host → sandbox only: the slot (the host's choice; its reply comes back in the same one). */
  slot?: number;
  /** Bytes of the message's JSON, at the start of the region. */
  json: number;
  /** Bytes of content after it (a reply's: its outcomes' lengths, added up). */
  content: number;
}

/**
 * The host's end. A trigger goes as a small frame; the trigger itself (as
 * JSON) and its content are written into its slot of the down lane. Its
 * reply comes back the same way through the up lane, read at the slot the
 * host chose. Any other message is a frame of its own. Anything malformed
 * is a violation, reported once; the transport then ends the sandbox.
 */
export function hostChannel(
  socket: Duplex,
  lanes: Lanes,
  /** A message as read (a reply with its content): checked by the receiver, not here. */
  onMessage: (message: unknown) => void,
  onViolation: (reason: string) => void,
  /** The most content one reply may carry (replyContentCap of the sandbox's memory limit). */
  maxContent = MAX_LANE_BYTES,
): { send(message: HostMessage): void; close(): void } {
  const slots = new Slots();
  /** Each trigger in flight, for reading its reply: its inputs and relationships, by index. */
  const triggers = new Map<number, TriggerRequest>();
  /** Loads and creates in flight, by id: while there are any, a frame may be as big as their replies. */
  const big = new Map<number, 'loaded' | 'created'>();
  const frameCap = (): number => {
    let cap: number = FRAME_CAPS.other;
    for (const kind of big.values()) cap = Math.max(cap, FRAME_CAPS[kind]);
    return cap;
  };
  let broken = false;
  const parse = (bytes: Buffer): Record<string, unknown> => {
    const m = JSON.parse(bytes.toString('utf8')) as unknown;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new Error('a message that is not an object');
    return m as Record<string, unknown>;
  };
  const receive = (body: Buffer): void => {
    const m = parse(body);
    const kind = m.type === 'log' || m.type === 'loaded' || m.type === 'created' ? m.type : 'other';
    if (body.length > FRAME_CAPS[kind])
      throw new Error(`a ${kind} frame of ${body.length} bytes (at most ${FRAME_CAPS[kind]})`);
    const id = typeof m.id === 'number' ? m.id : undefined;
    if (id !== undefined) big.delete(id);
    const slot = id === undefined ? undefined : slots.release(id);
    const trigger = id === undefined ? undefined : triggers.get(id);
    if (trigger) triggers.delete(trigger.id);
    try {
      if (m.type === 'triggered') onMessage(readReply(m, trigger, slot));
      else if (trigger && m.type !== 'error') throw new Error(`a ${String(m.type)} reply to trigger ${trigger.id}`);
      else onMessage(m);
    } finally {
      if (slot !== undefined && slots.inUse === 0) trimLanes(lanes);
    }
  };
  const readReply = (m: Record<string, unknown>, trigger?: TriggerRequest, slot?: number): TriggeredReply => {
    if (!trigger || slot === undefined) throw new Error(`a reply to no trigger in flight (${String(m.id)})`);
    const jsonBytes = count(m.json, replyJsonCap(trigger.inputs.length), 'a reply of JSON bytes');
    const announced = count(m.content, maxContent, 'a reply with content bytes');
    // Nothing is read that the sandbox has not written: a hole in the lane reads as zeros and costs it
    // nothing, pages it wrote are charged to its memory. The lane's blocks are every page of it, not only
    // this slot's: a sandbox cannot make the host read more than it holds written at this moment.
    const held = lanes.tmpfs ? fstatSync(lanes.up).blocks * 512 : Number.POSITIVE_INFINITY;
    if (held < jsonBytes + announced)
      throw new Error(`a reply of ${jsonBytes + announced} bytes in an up lane holding ${held} bytes written (holes)`);
    const json = readLane(lanes.up, slot, 0, jsonBytes);
    if (!json) throw new Error('the up lane is shorter than the reply says');
    const reply = decodeTriggered(parse(Buffer.from(json)), trigger.id, trigger.inputs, trigger.relationships);
    const total = reply.outcomes.reduce((n, o) => n + o.lengths.reduce((a, b) => a + b, 0), 0);
    if (total !== announced)
      throw new Error(`content lengths that add up to ${total} bytes, not the ${announced} announced`);
    let at = json.byteLength;
    const outcomes = reply.outcomes.map((o) => {
      const n = o.lengths.reduce((a, b) => a + b, 0);
      if (at + n > jsonBytes + announced) throw new Error(`a reply with more than ${announced} bytes of content`);
      const packed = readLane(lanes.up, slot, at, n);
      if (!packed) throw new Error('the up lane is shorter than the reply says');
      at += n;
      return { ...o, packed };
    });
    return { ...reply, outcomes };
  };
  const reader = new FrameReader(frameCap, (body) => {
    if (!broken) receive(body);
  });
  socket.on('data', (chunk: Buffer) => {
    if (broken) return;
    try {
      reader.push(chunk);
    } catch (err) {
      broken = true;
      onViolation((err as Error).message);
    }
  });
  // the exit handler says why it ended; a reset socket says nothing more
  socket.on('error', () => {});
  return {
    send(message) {
      if (message.type === 'load' || message.type === 'create')
        big.set(message.id, message.type === 'load' ? 'loaded' : 'created');
      if (message.type !== 'trigger') return void socket.write(frame(message));
      const slot = slots.take(message.id);
      triggers.set(message.id, message);
      const json = Buffer.from(encodeTrigger(message));
      const content = new Uint8Array(message.content);
      writeLane(lanes.down, slot, json, content);
      const head: LaneFrame = {
        type: 'trigger',
        id: message.id,
        slot,
        json: json.byteLength,
        content: content.byteLength,
      };
      socket.write(frame(head));
    },
    close() {
      closeSync(lanes.down);
      closeSync(lanes.up);
    },
  };
}

/** A text cut to at most about `bytes` bytes as JSON spells it. */
const cutTo = (text: string, bytes: number): string => {
  let n = Math.min(text.length, bytes);
  while (n > 0 && Buffer.byteLength(JSON.stringify(text.slice(0, n))) > bytes) n = Math.floor(n / 2);
  return n < text.length ? `${text.slice(0, n)}… (cut)` : text;
};

/** An error reply saying a message was too big to send. */
const tooBig = (id: number, what: string): SandboxMessage => ({
  type: 'error',
  id,
  error: { code: 'PLUGIN_ERROR', message: `${what}: over the channel's cap, not sent` },
});

/**
 * A message as a frame within the host's cap for its kind (FRAME_CAPS): a
 * log or an error cut to fit, any other message that does not fit answered
 * by an error instead, so that the runtime never breaks the protocol.
 */
function fitted(message: SandboxMessage): Buffer {
  const out = frame(message);
  const kind =
    message.type === 'log' || message.type === 'loaded' || message.type === 'created' ? message.type : 'other';
  const cap = FRAME_CAPS[kind];
  if (out.length - 4 <= cap) return out;
  if (message.type === 'log')
    return frame({
      ...message,
      message: cutTo(message.message, cap / 2),
      fields: { note: 'fields left out: too big' },
    });
  if (message.type === 'error') {
    const { code, plugin, message: text, stack } = message.error;
    const error = { code, plugin, message: cutTo(text, cap / 4), stack: stack && cutTo(stack, cap / 4) };
    return frame({ ...message, error });
  }
  return 'id' in message ? frame(tooBig(message.id, `a ${message.type} reply of ${out.length - 4} bytes`)) : out;
}

/**
 * The sandbox's end: a trigger read from its slot of the down lane, its
 * reply written to the same slot of the up lane, every other message a
 * frame of its own. It trusts the host; it ends the process when the host
 * goes.
 */
export function childChannel(onMessage: (message: HostMessage) => void): (message: SandboxMessage) => void {
  const socket = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });
  /** Each trigger being run: its slot, and its inputs' and relationships' indexes for the reply. */
  const running = new Map<number, { slot: number; at: Map<string, number>; relationships: string[] }>();
  const reader = new FrameReader(MAX_FRAME_BYTES, (body) => {
    const m = JSON.parse(body.toString('utf8')) as HostMessage | LaneFrame;
    if (m.type !== 'trigger' || !('slot' in m)) {
      onMessage(m as HostMessage);
      return;
    }
    const slot = m.slot!;
    const json = Buffer.from(readLane(DOWN_LANE_FD, slot, 0, m.json)!);
    const trigger = decodeTrigger(json.toString('utf8'));
    const at = new Map(trigger.inputs.map((f, i) => [f.id, i]));
    running.set(m.id, { slot, at, relationships: trigger.relationships });
    onMessage({ ...trigger, content: readLane(DOWN_LANE_FD, slot, m.json, m.content)! });
  });
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  socket.on('end', () => process.exit(0));
  socket.on('error', () => process.exit(0));
  return (message) => {
    const id = 'id' in message ? message.id : undefined;
    const run = id === undefined ? undefined : running.get(id);
    if (!run) return void socket.write(fitted(message));
    running.delete(id!);
    if (message.type !== 'triggered') return void socket.write(fitted(message));
    const json = Buffer.from(encodeTriggered(message, run.at, run.relationships));
    const cap = replyJsonCap(run.at.size);
    if (json.byteLength > cap)
      return void socket.write(
        fitted(tooBig(message.id, `a reply of ${json.byteLength} bytes of JSON (at most ${cap} for its batch)`)),
      );
    const content = message.outcomes.map((o) => new Uint8Array(o.packed));
    writeLane(UP_LANE_FD, run.slot, json, ...content);
    const head: LaneFrame = {
      type: 'triggered',
      id: message.id,
      json: json.byteLength,
      content: content.reduce((n, c) => n + c.byteLength, 0),
    };
    socket.write(frame(head));
  };
}
