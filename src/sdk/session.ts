/**
 * FlowFiles and the batch-at-a-time session a processor works through.
 */

import type { Logger } from './processor.ts';

/**
 * An immutable view of one FlowFile. Session methods that change a FlowFile
 * return its new view; keep using the returned value (NiFi's habit).
 */
export interface FlowFile {
  /** Unique id; also the `uuid` attribute. */
  readonly id: string;
  /** String attributes; `uuid`, `filename`, `path` and `entryDate` are always present. */
  readonly attributes: Readonly<Record<string, string>>;
  /** Content length in bytes. */
  readonly size: number;
  /** When the FlowFile entered the flow (ms since the epoch). */
  readonly entryDate: number;
  /** When its oldest ancestor entered the flow. */
  readonly lineageStartDate: number;
  /** The ids of the FlowFiles it was made from. */
  readonly parentIds: readonly string[];
}

/** Part of a FlowFile's content, for `clone()`. */
export interface ContentRange {
  offset: number;
  length: number;
}

/**
 * A unit of work over a batch of input FlowFiles. Every change is buffered
 * and applied at `commit()` as one unit; `rollback()` (or a throw from
 * `onTrigger`) puts the inputs back unchanged and penalized.
 *
 * At commit every FlowFile the session holds must have been transferred or
 * removed; transferring to a relationship the processor did not declare
 * throws at once.
 */
export interface ProcessSession {
  /** The next FlowFile of the batch, or `undefined` when the batch is used up. */
  get(): FlowFile | undefined;
  /** Up to `max` (default: all remaining) FlowFiles of the batch. */
  getBatch(max?: number): FlowFile[];
  /** A new FlowFile with no parent and empty content. */
  create(): FlowFile;
  /** A new FlowFile that inherits the attributes (common to all) of its parents. */
  createChild(parent: FlowFile | readonly FlowFile[]): FlowFile;
  /** A copy sharing the content (or part of it) without copying bytes. */
  clone(flowFile: FlowFile, range?: ContentRange): FlowFile;
  /** Route a FlowFile to a relationship. */
  transfer(flowFile: FlowFile, relationship: string): void;
  /** Drop a FlowFile from the flow. */
  remove(flowFile: FlowFile): void;
  putAttribute(flowFile: FlowFile, key: string, value: string): FlowFile;
  putAllAttributes(flowFile: FlowFile, attributes: Readonly<Record<string, string>>): FlowFile;
  removeAttribute(flowFile: FlowFile, key: string): FlowFile;
  /** Replace the content. Strings are written as UTF-8. */
  write(flowFile: FlowFile, content: Uint8Array | string): FlowFile;
  /** The whole content. */
  read(flowFile: FlowFile): Promise<Uint8Array>;
  /** Mark a FlowFile so that the next processor waits its penalty out first. */
  penalize(flowFile: FlowFile): FlowFile;
  /**
   * Give an input FlowFile back to its queue unchanged (changes to it are
   * dropped), as if it had never been taken. For processors that wait for
   * more input, such as MergeContent.
   */
  release(flowFile: FlowFile): void;
  /** Apply everything the session did, as one unit. */
  commit(): void;
  /** Undo everything; the inputs return to their queue, penalized unless told otherwise. */
  rollback(penalize?: boolean): void;
  readonly logger: Logger;
}
