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
 * The host trusts nothing from the sandbox: a frame over MAX_FRAME_BYTES, a
 * body that is not a JSON object, a reply to no trigger in flight or of
 * another kind than `triggered` or `error` to one, a reply codec.ts cannot
 * read, content lengths that add up past MAX_LANE_BYTES or to another
 * figure than its frame announced, or a lane shorter than announced are
 * violations, and the sandbox is ended. The host reads a reply at the slot it
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

/** The largest frame either side accepts (metadata only: content goes through the lanes). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** The most content one trigger or one reply may carry. */
export const MAX_LANE_BYTES = 1024 * 1024 * 1024;
/** Where slot n's region starts: n * SLOT_BYTES. The lanes are sparse files: a hole costs nothing. */
const SLOT_BYTES = 2 ** 31;
/** A lane past this size is cut back to nothing when no trigger is in flight (a big batch's pages freed). */
const TRIM_BYTES = 64 * 1024 * 1024;

/** Splits a byte stream into frames: a 4-byte big-endian length, then that many bytes. */
export class FrameReader {
  readonly #max: number;
  readonly #onFrame: (body: Buffer) => void;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = -1;

  constructor(max: number, onFrame: (body: Buffer) => void) {
    this.#max = max;
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
        if (this.#need > this.#max) throw new Error(`a frame of ${this.#need} bytes (at most ${this.#max})`);
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
}

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
  return { down, up, child: [downChild, upChild] };
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
): { send(message: HostMessage): void; close(): void } {
  const slots = new Slots();
  /** Each trigger in flight, for reading its reply: its inputs and relationships, by index. */
  const triggers = new Map<number, TriggerRequest>();
  let broken = false;
  const parse = (bytes: Buffer): Record<string, unknown> => {
    const m = JSON.parse(bytes.toString('utf8')) as unknown;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new Error('a message that is not an object');
    return m as Record<string, unknown>;
  };
  const receive = (body: Buffer): void => {
    const m = parse(body);
    const id = typeof m.id === 'number' ? m.id : undefined;
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
    const json = readLane(lanes.up, slot, 0, count(m.json, MAX_FRAME_BYTES, 'a reply of'));
    if (!json) throw new Error('the up lane is shorter than the reply says');
    const reply = decodeTriggered(parse(Buffer.from(json)), trigger.id, trigger.inputs, trigger.relationships);
    const announced = count(m.content, MAX_LANE_BYTES, 'a reply with content of');
    const total = reply.outcomes.reduce((n, o) => n + o.lengths.reduce((a, b) => a + b, 0), 0);
    if (total !== announced)
      throw new Error(`content lengths that add up to ${total} bytes, not the ${announced} announced`);
    let at = json.byteLength;
    const outcomes = reply.outcomes.map((o) => {
      const n = o.lengths.reduce((a, b) => a + b, 0);
      if (at + n > MAX_LANE_BYTES) throw new Error(`a reply with more than ${MAX_LANE_BYTES} bytes of content`);
      const packed = readLane(lanes.up, slot, at, n);
      if (!packed) throw new Error('the up lane is shorter than the reply says');
      at += n;
      return { ...o, packed };
    });
    return { ...reply, outcomes };
  };
  const reader = new FrameReader(MAX_FRAME_BYTES, (body) => {
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
    if (!run) return void socket.write(frame(message));
    running.delete(id!);
    if (message.type !== 'triggered') return void socket.write(frame(message));
    const json = Buffer.from(encodeTriggered(message, run.at, run.relationships));
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
