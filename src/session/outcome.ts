/**
 * What a committed session did, as plain data. The inline host applies it
 * directly; a sandbox sends it across its boundary once, at commit. Every
 * field is structured-clone safe.
 */

/** Where an output's content comes from. Offsets are relative to the source's content. */
export type OutputContent =
  | { kind: 'empty' }
  /** Bytes of an input FlowFile of the session (shared, not copied). */
  | { kind: 'input'; from: string; offset: number; length: number }
  /** Bytes of a buffer in `SessionOutcome.contents`. */
  | { kind: 'new'; index: number; offset: number; length: number };

export interface OutputFlowFile {
  /** An input's id when the input itself is transferred; a fresh id otherwise. */
  id: string;
  attributes: Record<string, string>;
  entryDate: number;
  lineageStartDate: number;
  parentIds: string[];
  content: OutputContent;
  relationship: string;
  penalize: boolean;
}

export interface SessionOutcome {
  /** FlowFiles routed to a relationship. */
  outputs: OutputFlowFile[];
  /** Input ids consumed by this commit (transferred, removed or replaced); the rest go back. */
  consumed: string[];
  /** New content, referenced by index from outputs. */
  contents: Uint8Array[];
}
