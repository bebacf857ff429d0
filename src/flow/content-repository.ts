/**
 * The content repository. Content is appended to segment files; a FlowFile's
 * content is a claim (segment, offset, length). Segments are reference
 * counted, one reference per claim held by a FlowFile, and removed when the
 * last claim is released: clone and split copy nothing, and small FlowFiles
 * cost no file each. The in-memory variant keeps segments in buffers.
 */

import { closeSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { ContentClaim } from './flowfile.ts';

export interface ContentRepository {
  /**
   * Appends each buffer and returns one claim per buffer. The claims hold no
   * reference yet: every FlowFile that takes one calls `retain()`.
   */
  write(contents: readonly Uint8Array[]): ContentClaim[];
  read(claim: ContentClaim): Uint8Array;
  /** One more FlowFile holds this claim. */
  retain(claim: ContentClaim): void;
  /** One FlowFile let go of this claim; the segment goes when nobody holds it. */
  release(claim: ContentClaim): void;
  /** After recovery: set the reference counts from the surviving claims and drop orphan segments. */
  recover(claims: Iterable<ContentClaim>): void;
  /** Segments and references, for statistics and tests. */
  usage(): { segments: number; references: number; bytes: number };
  close(): void;
}

export interface FileContentRepositoryOptions {
  dir: string;
  /** A segment is closed to appends past this size. Default 8 MiB. */
  segmentSize?: number;
}

const SEGMENT_FILE = /^(\d+)\.seg$/;

/** Segment files under `dir`, named `<n>.seg`. */
export class FileContentRepository implements ContentRepository {
  readonly #dir: string;
  readonly #segmentSize: number;
  readonly #refs = new Map<number, number>();
  readonly #sizes = new Map<number, number>();
  readonly #readFds = new Map<number, number>();
  #active = -1;
  #activeFd = -1;
  #activeSize = 0;
  #next = 0;

  constructor(options: FileContentRepositoryOptions) {
    this.#dir = options.dir;
    this.#segmentSize = options.segmentSize ?? 8 * 1024 * 1024;
    mkdirSync(this.#dir, { recursive: true });
    for (const name of readdirSync(this.#dir)) {
      const m = SEGMENT_FILE.exec(name);
      if (m) this.#next = Math.max(this.#next, Number(m[1]) + 1);
    }
  }

  write(contents: readonly Uint8Array[]): ContentClaim[] {
    const claims: ContentClaim[] = [];
    if (contents.length === 0) return claims;
    if (this.#activeFd < 0 || this.#activeSize >= this.#segmentSize) this.#roll();
    // one write for the whole batch: a session's content lands in one syscall
    const total = contents.reduce((n, c) => n + c.byteLength, 0);
    const buffer = contents.length === 1 ? contents[0]! : Buffer.concat(contents, total);
    let written = 0;
    while (written < total) written += writeSync(this.#activeFd, buffer, written, total - written);
    let offset = this.#activeSize;
    for (const c of contents) {
      claims.push({ segment: this.#active, offset, length: c.byteLength });
      offset += c.byteLength;
    }
    this.#activeSize += total;
    this.#sizes.set(this.#active, this.#activeSize);
    return claims;
  }

  read(claim: ContentClaim): Uint8Array {
    const out = Buffer.allocUnsafe(claim.length);
    const fd = this.#readFd(claim.segment);
    let done = 0;
    while (done < claim.length) {
      const n = readSync(fd, out, done, claim.length - done, claim.offset + done);
      if (n === 0) throw new Error(`content segment ${claim.segment} is shorter than its claims`);
      done += n;
    }
    return out;
  }

  retain(claim: ContentClaim): void {
    this.#refs.set(claim.segment, (this.#refs.get(claim.segment) ?? 0) + 1);
  }

  release(claim: ContentClaim): void {
    const left = (this.#refs.get(claim.segment) ?? 0) - 1;
    if (left > 0) {
      this.#refs.set(claim.segment, left);
      return;
    }
    this.#refs.delete(claim.segment);
    if (claim.segment !== this.#active) this.#remove(claim.segment);
  }

  recover(claims: Iterable<ContentClaim>): void {
    this.#refs.clear();
    for (const c of claims) this.#refs.set(c.segment, (this.#refs.get(c.segment) ?? 0) + 1);
    for (const name of readdirSync(this.#dir)) {
      const m = SEGMENT_FILE.exec(name);
      if (!m) continue;
      const segment = Number(m[1]);
      if (!this.#refs.has(segment) && segment !== this.#active) this.#remove(segment);
    }
  }

  usage(): { segments: number; references: number; bytes: number } {
    let references = 0;
    let bytes = 0;
    for (const [segment, n] of this.#refs) {
      references += n;
      bytes += this.#sizes.get(segment) ?? 0;
    }
    return { segments: this.#refs.size, references, bytes };
  }

  close(): void {
    if (this.#activeFd >= 0) closeSync(this.#activeFd);
    this.#activeFd = -1;
    for (const fd of this.#readFds.values()) closeSync(fd);
    this.#readFds.clear();
  }

  #roll(): void {
    const previous = this.#active;
    if (this.#activeFd >= 0) closeSync(this.#activeFd);
    this.#active = this.#next++;
    this.#activeFd = openSync(join(this.#dir, `${this.#active}.seg`), 'a');
    this.#activeSize = 0;
    // the segment just closed may already have lost its last claim
    if (previous >= 0 && !this.#refs.has(previous)) this.#remove(previous);
  }

  #readFd(segment: number): number {
    let fd = this.#readFds.get(segment);
    if (fd === undefined) {
      fd = openSync(join(this.#dir, `${segment}.seg`), 'r');
      this.#readFds.set(segment, fd);
    }
    return fd;
  }

  #remove(segment: number): void {
    const fd = this.#readFds.get(segment);
    if (fd !== undefined) {
      closeSync(fd);
      this.#readFds.delete(segment);
    }
    this.#sizes.delete(segment);
    rmSync(join(this.#dir, `${segment}.seg`), { force: true });
  }
}

/** Segments in memory, for tests and benchmarks. Never the default. */
export class MemoryContentRepository implements ContentRepository {
  readonly #segments = new Map<number, { data: Buffer; refs: number }>();
  #next = 0;

  write(contents: readonly Uint8Array[]): ContentClaim[] {
    if (contents.length === 0) return [];
    const segment = this.#next++;
    // a copy: the caller may reuse its buffers, and claims must not change under a FlowFile
    const data = Buffer.concat(contents);
    let offset = 0;
    const claims = contents.map((c) => {
      const claim = { segment, offset, length: c.byteLength };
      offset += c.byteLength;
      return claim;
    });
    this.#segments.set(segment, { data, refs: 0 });
    return claims;
  }

  read(claim: ContentClaim): Uint8Array {
    const seg = this.#segments.get(claim.segment);
    if (!seg) throw new Error(`content segment ${claim.segment} is gone`);
    return seg.data.subarray(claim.offset, claim.offset + claim.length);
  }

  retain(claim: ContentClaim): void {
    const seg = this.#segments.get(claim.segment);
    if (seg) seg.refs++;
  }

  release(claim: ContentClaim): void {
    const seg = this.#segments.get(claim.segment);
    if (seg && --seg.refs <= 0) this.#segments.delete(claim.segment);
  }

  recover(): void {}

  usage(): { segments: number; references: number; bytes: number } {
    let references = 0;
    let bytes = 0;
    for (const s of this.#segments.values()) {
      references += s.refs;
      bytes += s.data.byteLength;
    }
    return { segments: this.#segments.size, references, bytes };
  }

  close(): void {
    this.#segments.clear();
  }
}
