/**
 * SplitText: splits text into FlowFiles of N lines each. Without header
 * lines the splits are clones over ranges of the original content: no byte
 * is copied.
 */

import { randomUUID } from 'node:crypto';
import { type Processor, type ProcessorInfo, Relationships } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

const info: ProcessorInfo = {
  name: 'SplitText',
  description:
    'Splits text content into FlowFiles of at most "Line Split Count" lines, each optionally led by the header lines. Splits carry fragment.* attributes for MergeContent to reassemble.',
  version: VERSION,
  author: 'DataBridge',
  tags: ['split', 'text', 'lines'],
  inputRequirement: 'required',
  properties: [
    { name: 'Line Split Count', description: 'Lines per split', type: 'integer', required: true, pattern: '[1-9]\\d*' },
    {
      name: 'Header Line Count',
      description: 'Lines at the top copied into every split',
      type: 'integer',
      defaultValue: '0',
    },
    {
      name: 'Remove Trailing Newlines',
      description: 'Strip newlines at the end of each split; splits left empty are dropped',
      type: 'boolean',
      defaultValue: 'true',
    },
  ],
  relationships: [{ name: 'splits', description: 'The splits' }, Relationships.ORIGINAL, Relationships.FAILURE],
};

/** Byte offsets where each line starts, plus the end. */
function lineStarts(bytes: Uint8Array): number[] {
  const starts = [0];
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10 && i + 1 < bytes.length) starts.push(i + 1);
  starts.push(bytes.length);
  return starts;
}

function trimNewlines(bytes: Uint8Array, start: number, end: number): number {
  while (end > start && (bytes[end - 1] === 10 || bytes[end - 1] === 13)) end--;
  return end;
}

function createSplitText(): Processor {
  return {
    getInfo: () => info,
    async onTrigger(ctx, session) {
      const perSplit = ctx.getProperty('Line Split Count').asInteger();
      const headerLines = ctx.getProperty('Header Line Count').asInteger();
      const trim = ctx.getProperty('Remove Trailing Newlines').asBoolean();
      for (let ff = session.get(); ff; ff = session.get()) {
        const bytes = await session.read(ff);
        const starts = bytes.length ? lineStarts(bytes) : [0];
        const lines = starts.length - 1;
        if (headerLines > lines) {
          session.transfer(
            session.putAttribute(ff, 'split.error', `fewer lines than the ${headerLines} header lines`),
            'failure',
          );
          continue;
        }
        const header = bytes.subarray(0, starts[headerLines]);
        const ranges: [number, number, number][] = [];
        for (let first = headerLines; first < lines; first += perSplit) {
          const last = Math.min(first + perSplit, lines);
          const start = starts[first]!;
          const end = trim ? trimNewlines(bytes, start, starts[last]!) : starts[last]!;
          if (end > start || !trim) ranges.push([start, end, last - first]);
        }
        const fragment = randomUUID();
        ranges.forEach(([start, end, count], index) => {
          let split =
            headerLines === 0
              ? session.clone(ff, { offset: start, length: end - start })
              : session.write(session.createChild(ff), Buffer.concat([header, bytes.subarray(start, end)]));
          split = session.putAllAttributes(split, {
            'fragment.identifier': fragment,
            'fragment.index': String(index + 1),
            'fragment.count': String(ranges.length),
            'segment.original.filename': ff.attributes.filename ?? '',
            'text.line.count': String(count),
          });
          session.transfer(split, 'splits');
        });
        const original = session.putAllAttributes(ff, {
          'fragment.identifier': fragment,
          'fragment.count': String(ranges.length),
        });
        session.transfer(original, 'original');
      }
      session.commit();
    },
  };
}

export const splitText: BuiltInProcessor = { type: 'SplitText', info, factory: createSplitText };
