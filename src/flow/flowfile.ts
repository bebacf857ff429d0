/**
 * The host's record of a FlowFile: the SDK's view plus where its content
 * lives and when its penalty ends.
 */

import type { FlowFile } from '../sdk/index.ts';

/** Where a FlowFile's bytes are: a range of one segment of the content repository. */
export interface ContentClaim {
  segment: number;
  offset: number;
  length: number;
}

export interface FlowFileRecord {
  id: string;
  attributes: Record<string, string>;
  size: number;
  entryDate: number;
  lineageStartDate: number;
  parentIds: string[];
  /** `null` for empty content. */
  claim: ContentClaim | null;
  /** Epoch ms until which the FlowFile waits in its queue; 0 when not penalized. */
  penalizedUntil: number;
}

/** The immutable view a processor sees. */
export function toView(r: FlowFileRecord): FlowFile {
  return Object.freeze({
    id: r.id,
    attributes: Object.freeze({ ...r.attributes }),
    size: r.size,
    entryDate: r.entryDate,
    lineageStartDate: r.lineageStartDate,
    parentIds: Object.freeze([...r.parentIds]),
  });
}
