/**
 * The FlowFile repository: a write-ahead journal of committed sessions, as
 * NiFi keeps one. Each commit appends one framed record (length, crc32,
 * JSON) with one write; a snapshot of the live FlowFiles is taken when the
 * journal grows past a threshold and at a clean close, and the journal
 * starts over. Recovery reads the snapshot and replays the journal up to the
 * first torn or damaged frame. A process killed at any point (kill -9)
 * leaves a state that is a prefix of the committed sessions: no FlowFile is
 * lost or duplicated. (Power loss needs fsync; see docs/flow.md.)
 */

import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { FlowFileRecord } from './flowfile.ts';

/** A FlowFile as recorded: in which queue, in what order. */
export interface QueuedRecord {
  queue: string;
  record: FlowFileRecord;
}

export interface FlowFileRepository {
  /** Records one committed session: FlowFiles now in a queue, and FlowFiles gone from the flow. */
  commit(queued: readonly QueuedRecord[], gone: readonly string[]): void;
  /** Every FlowFile recorded as queued, in queue order. */
  recover(): QueuedRecord[];
  /** How many FlowFiles the repository holds. */
  readonly size: number;
  /** Whether it holds a FlowFile of this id (queued, or taken by a task not yet committed). */
  has(id: string): boolean;
  close(): void;
}

type Row = [
  queue: string,
  seq: number,
  id: string,
  attributes: Record<string, string>,
  size: number,
  entryDate: number,
  lineageStartDate: number,
  parentIds: string[],
  segment: number,
  offset: number,
  length: number,
];

interface Entry {
  queue: string;
  seq: number;
  record: FlowFileRecord;
}

function toRow(e: Entry): Row {
  const r = e.record;
  const c = r.claim;
  return [
    e.queue,
    e.seq,
    r.id,
    r.attributes,
    r.size,
    r.entryDate,
    r.lineageStartDate,
    r.parentIds,
    c ? c.segment : -1,
    c ? c.offset : 0,
    c ? c.length : 0,
  ];
}

function fromRow(row: Row): Entry {
  const [queue, seq, id, attributes, size, entryDate, lineageStartDate, parentIds, segment, offset, length] = row;
  return {
    queue,
    seq,
    record: {
      id,
      attributes,
      size,
      entryDate,
      lineageStartDate,
      parentIds,
      claim: segment < 0 ? null : { segment, offset, length },
      penalizedUntil: 0,
    },
  };
}

function frame(payload: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(payload));
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeUInt32LE(body.length, 0);
  out.writeUInt32LE(crc32(body), 4);
  body.copy(out, 8);
  return out;
}

/** Reads frames until the end or the first torn/damaged one; returns them and the good length. */
function readFrames(data: Buffer): { payloads: unknown[]; goodLength: number } {
  const payloads: unknown[] = [];
  let at = 0;
  while (at + 8 <= data.length) {
    const len = data.readUInt32LE(at);
    const sum = data.readUInt32LE(at + 4);
    if (at + 8 + len > data.length) break;
    const body = data.subarray(at + 8, at + 8 + len);
    if (crc32(body) !== sum) break;
    try {
      payloads.push(JSON.parse(body.toString('utf8')));
    } catch {
      break;
    }
    at += 8 + len;
  }
  return { payloads, goodLength: at };
}

export interface JournalOptions {
  dir: string;
  /** Take a snapshot when the journal passes this size. Default 32 MiB. */
  checkpointBytes?: number;
}

/** The durable repository: `snapshot` + `journal.<generation>` under `dir`. */
export class JournalFlowFileRepository implements FlowFileRepository {
  readonly #dir: string;
  readonly #checkpointBytes: number;
  readonly #live = new Map<string, Entry>();
  #generation = 0;
  #seq = 0;
  #fd = -1;
  #journalBytes = 0;

  constructor(options: JournalOptions) {
    this.#dir = options.dir;
    this.#checkpointBytes = options.checkpointBytes ?? 32 * 1024 * 1024;
    mkdirSync(this.#dir, { recursive: true });
    this.#load();
  }

  get size(): number {
    return this.#live.size;
  }

  has(id: string): boolean {
    return this.#live.has(id);
  }

  commit(queued: readonly QueuedRecord[], gone: readonly string[]): void {
    const rows: Row[] = [];
    const entries: Entry[] = [];
    for (const q of queued) {
      const entry: Entry = { queue: q.queue, seq: ++this.#seq, record: q.record };
      entries.push(entry);
      rows.push(toRow(entry));
    }
    const data = frame({ u: rows, d: gone });
    // the journal first: if the write fails, memory is as before and the caller rolls back
    let written = 0;
    while (written < data.length) written += writeSync(this.#fd, data, written, data.length - written);
    this.#journalBytes += data.length;
    for (const id of gone) this.#live.delete(id);
    for (const e of entries) this.#live.set(e.record.id, e);
    if (this.#journalBytes >= this.#checkpointBytes) this.checkpoint();
  }

  recover(): QueuedRecord[] {
    return [...this.#live.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((e) => ({ queue: e.queue, record: { ...e.record } }));
  }

  /** Writes a snapshot of the live FlowFiles and starts a new journal. */
  checkpoint(): void {
    const next = this.#generation + 1;
    const tmp = join(this.#dir, 'snapshot.tmp');
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, frame({ generation: next, seq: this.#seq }));
      const rows: Row[] = [];
      const flush = () => {
        if (rows.length) writeSync(fd, frame({ u: rows.splice(0) }));
      };
      for (const e of this.#live.values()) {
        rows.push(toRow(e));
        if (rows.length >= 2000) flush();
      }
      flush();
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.#dir, 'snapshot'));
    this.#syncDir();
    const old = this.#generation;
    this.#generation = next;
    this.#openJournal();
    rmSync(join(this.#dir, `journal.${old}`), { force: true });
  }

  close(): void {
    if (this.#fd < 0) return;
    this.checkpoint();
    closeSync(this.#fd);
    this.#fd = -1;
  }

  #load(): void {
    const snapshot = join(this.#dir, 'snapshot');
    if (existsSync(snapshot)) {
      const { payloads } = readFrames(readFileSync(snapshot));
      const header = payloads[0] as { generation?: number; seq?: number } | undefined;
      if (!header || typeof header.generation !== 'number') {
        throw new Error(`the FlowFile repository snapshot ${snapshot} is damaged`);
      }
      this.#generation = header.generation;
      this.#seq = header.seq ?? 0;
      for (const p of payloads.slice(1)) this.#apply(p as { u?: Row[] });
    }
    const journal = join(this.#dir, `journal.${this.#generation}`);
    if (existsSync(journal)) {
      const data = readFileSync(journal);
      const { payloads, goodLength } = readFrames(data);
      for (const p of payloads) this.#apply(p as { u?: Row[]; d?: string[] });
      // a torn tail (a write cut short) is cut off, so that new frames follow good ones
      if (goodLength < data.length) {
        const fd = openSync(journal, 'r+');
        ftruncateSync(fd, goodLength);
        closeSync(fd);
      }
    }
    for (const name of readdirSync(this.#dir)) {
      const m = /^journal\.(\d+)$/.exec(name);
      if (m && Number(m[1]) !== this.#generation) rmSync(join(this.#dir, name), { force: true });
    }
    this.#openJournal();
  }

  #apply(payload: { u?: Row[]; d?: string[] }): void {
    for (const id of payload.d ?? []) this.#live.delete(id);
    for (const row of payload.u ?? []) {
      const e = fromRow(row);
      this.#live.set(e.record.id, e);
      if (e.seq > this.#seq) this.#seq = e.seq;
    }
  }

  #openJournal(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    const file = join(this.#dir, `journal.${this.#generation}`);
    this.#fd = openSync(file, 'a');
    this.#journalBytes = 0;
  }

  #syncDir(): void {
    const fd = openSync(this.#dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/** Keeps nothing: for tests and benchmarks. Never the default. */
export class MemoryFlowFileRepository implements FlowFileRepository {
  #size = 0;
  readonly #ids = new Set<string>();

  get size(): number {
    return this.#size;
  }

  has(id: string): boolean {
    return this.#ids.has(id);
  }

  commit(queued: readonly QueuedRecord[], gone: readonly string[]): void {
    for (const id of gone) this.#ids.delete(id);
    for (const q of queued) this.#ids.add(q.record.id);
    this.#size = this.#ids.size;
  }

  recover(): QueuedRecord[] {
    return [];
  }

  close(): void {}
}
