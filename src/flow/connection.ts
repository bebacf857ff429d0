/**
 * A connection: a FIFO queue of FlowFiles from one processor's relationship
 * to another processor, with back-pressure on object count and data size.
 * FlowFiles taken by a session stay counted ("in flight") until the session
 * commits or rolls back, so concurrent tasks cannot overshoot the threshold
 * by more than one batch each.
 */

import type { FlowFileRecord } from './flowfile.ts';

export interface BackPressure {
  /** Default 10 000. */
  objects: number;
  /** Bytes; default 1 GiB. */
  bytes: number;
}

export const DEFAULT_BACK_PRESSURE: Readonly<BackPressure> = Object.freeze({ objects: 10_000, bytes: 1024 ** 3 });

export interface ConnectionStats {
  id: string;
  source: string;
  relationship: string;
  destination: string;
  /** Everything held: waiting, penalized and in flight. */
  queued: number;
  queuedBytes: number;
  inFlight: number;
  penalized: number;
  full: boolean;
  backPressure: BackPressure;
}

export class Connection {
  readonly id: string;
  readonly source: string;
  readonly relationship: string;
  readonly destination: string;
  readonly backPressure: BackPressure;
  #items: FlowFileRecord[] = [];
  #head = 0;
  #penalized: FlowFileRecord[] = [];
  #count = 0;
  #bytes = 0;
  #inFlight = 0;

  constructor(init: {
    id: string;
    source: string;
    relationship: string;
    destination: string;
    backPressure?: Partial<BackPressure>;
  }) {
    this.id = init.id;
    this.source = init.source;
    this.relationship = init.relationship;
    this.destination = init.destination;
    this.backPressure = { ...DEFAULT_BACK_PRESSURE, ...init.backPressure };
  }

  /** Held FlowFiles, in flight included. */
  get count(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Back-pressure is on: the source processor is not scheduled. */
  isFull(): boolean {
    return this.#count >= this.backPressure.objects || this.#bytes >= this.backPressure.bytes;
  }

  enqueue(record: FlowFileRecord): void {
    this.#items.push(record);
    this.#count++;
    this.#bytes += record.size;
  }

  /** True when a poll now could return something. */
  hasAvailable(now: number): boolean {
    if (this.#head < this.#items.length) return true;
    return this.#penalized.some((r) => r.penalizedUntil <= now);
  }

  /** The earliest time a penalized FlowFile becomes available, or Infinity. */
  nextPenaltyExpiry(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const r of this.#penalized) if (r.penalizedUntil < min) min = r.penalizedUntil;
    return min;
  }

  /** Takes up to `max` available FlowFiles (penalized ones wait out their penalty); they are then in flight. */
  poll(max: number, now: number): FlowFileRecord[] {
    const out: FlowFileRecord[] = [];
    if (this.#penalized.length) {
      const still: FlowFileRecord[] = [];
      for (const r of this.#penalized) {
        if (out.length < max && r.penalizedUntil <= now) out.push({ ...r, penalizedUntil: 0 });
        else still.push(r);
      }
      this.#penalized = still;
    }
    while (out.length < max && this.#head < this.#items.length) {
      const r = this.#items[this.#head]!;
      this.#items[this.#head++] = undefined as unknown as FlowFileRecord;
      if (r.penalizedUntil > now) this.#penalized.push(r);
      else out.push(r);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    this.#inFlight += out.length;
    return out;
  }

  /** A session committed: its inputs from this queue leave it. */
  acknowledge(records: readonly FlowFileRecord[]): void {
    for (const r of records) {
      this.#count--;
      this.#bytes -= r.size;
    }
    this.#inFlight -= records.length;
  }

  /** A session gave inputs back: they return to the front, penalized until `penalizedUntil` if above 0. */
  giveBack(records: readonly FlowFileRecord[], penalizedUntil = 0): void {
    this.#inFlight -= records.length;
    if (penalizedUntil > 0) {
      for (const r of records) this.#penalized.push({ ...r, penalizedUntil });
      return;
    }
    if (records.length === 0) return;
    if (this.#head >= records.length) {
      for (let i = 0; i < records.length; i++) this.#items[this.#head - records.length + i] = records[i]!;
      this.#head -= records.length;
    } else {
      this.#items = [...records, ...this.#items.slice(this.#head)];
      this.#head = 0;
    }
  }

  /** Every FlowFile held but not in flight (for inspection and tests). */
  snapshot(): FlowFileRecord[] {
    return [...this.#penalized, ...this.#items.slice(this.#head)];
  }

  /** Empties the queue; returns what it held (not in flight). */
  drain(): FlowFileRecord[] {
    const all = this.snapshot();
    this.#items = [];
    this.#head = 0;
    this.#penalized = [];
    for (const r of all) {
      this.#count--;
      this.#bytes -= r.size;
    }
    return all;
  }

  stats(): ConnectionStats {
    return {
      id: this.id,
      source: this.source,
      relationship: this.relationship,
      destination: this.destination,
      queued: this.#count,
      queuedBytes: this.#bytes,
      inFlight: this.#inFlight,
      penalized: this.#penalized.length,
      full: this.isFull(),
      backPressure: { ...this.backPressure },
    };
  }
}
