/**
 * MergeContent: concatenates FlowFiles into one, by bins (bin-packing, with
 * an optional correlation attribute) or by reassembling SplitText's
 * fragments (defragment). FlowFiles of bins not ready yet are released
 * back to their queue and the processor yields.
 */

import { type FlowFile, type Processor, type ProcessorInfo, Relationships } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

const BIN_PACKING = 'Bin-Packing Algorithm';
const DEFRAGMENT = 'Defragment';

const info: ProcessorInfo = {
  name: 'MergeContent',
  description:
    'Merges FlowFiles into one by concatenating their content, with optional header, footer and demarcator. Bin-packing groups by a correlation attribute; Defragment reassembles fragment.* splits in order.',
  version: VERSION,
  author: 'DataBridge',
  tags: ['merge', 'concatenation', 'bin', 'defragment', 'content'],
  inputRequirement: 'required',
  defaultBatchSize: 10_000,
  properties: [
    {
      name: 'Merge Strategy',
      description: 'How to group',
      allowedValues: [BIN_PACKING, DEFRAGMENT],
      defaultValue: BIN_PACKING,
    },
    { name: 'Correlation Attribute Name', description: 'Only FlowFiles with the same value share a bin' },
    {
      name: 'Minimum Number of Entries',
      description: 'A bin merges once it has this many',
      type: 'integer',
      defaultValue: '1',
    },
    { name: 'Maximum Number of Entries', description: 'A bin never holds more', type: 'integer', defaultValue: '1000' },
    {
      name: 'Minimum Group Size',
      description: 'A bin merges once it holds this much',
      type: 'dataSize',
      defaultValue: '0 B',
    },
    { name: 'Maximum Group Size', description: 'A bin never holds more', type: 'dataSize' },
    { name: 'Max Bin Age', description: 'A bin older than this merges anyway (defragment: fails)', type: 'duration' },
    {
      name: 'Delimiter Strategy',
      description: 'Whether Header, Footer and Demarcator are used',
      allowedValues: ['Do Not Use Delimiters', 'Text'],
      defaultValue: 'Do Not Use Delimiters',
    },
    { name: 'Header', description: 'Text before the merged content' },
    { name: 'Footer', description: 'Text after the merged content' },
    { name: 'Demarcator', description: 'Text between merged contents' },
  ],
  relationships: [
    { name: 'merged', description: 'The merged FlowFile' },
    Relationships.ORIGINAL,
    Relationships.FAILURE,
  ],
};

function createMergeContent(): Processor {
  return {
    getInfo: () => info,
    validate(p) {
      const min = Number(p['Minimum Number of Entries']);
      const max = Number(p['Maximum Number of Entries']);
      return min > max ? [{ property: 'Minimum Number of Entries', message: 'is above the maximum' }] : [];
    },
    async onTrigger(ctx, session) {
      const defragment = ctx.getProperty('Merge Strategy').asString() === DEFRAGMENT;
      const correlation = ctx.getProperty('Correlation Attribute Name').asString();
      const minEntries = ctx.getProperty('Minimum Number of Entries').asInteger();
      const maxEntries = ctx.getProperty('Maximum Number of Entries').asInteger();
      const minSize = ctx.getProperty('Minimum Group Size').asDataSize();
      const maxSizeProp = ctx.getProperty('Maximum Group Size');
      const maxSize = maxSizeProp.isSet() ? maxSizeProp.asDataSize() : Number.POSITIVE_INFINITY;
      const ageProp = ctx.getProperty('Max Bin Age');
      const maxAge = ageProp.isSet() ? ageProp.asDuration() : Number.POSITIVE_INFINITY;
      const text = ctx.getProperty('Delimiter Strategy').asString() === 'Text';
      const enc = new TextEncoder();
      const header = text ? enc.encode(ctx.getProperty('Header').asString()) : new Uint8Array(0);
      const footer = text ? enc.encode(ctx.getProperty('Footer').asString()) : new Uint8Array(0);
      const demarcator = text ? enc.encode(ctx.getProperty('Demarcator').asString()) : new Uint8Array(0);
      const now = Date.now();

      const all = session.getBatch();
      const groups = new Map<string, FlowFile[]>();
      for (const ff of all) {
        const key = defragment
          ? (ff.attributes['fragment.identifier'] ?? '')
          : correlation
            ? (ff.attributes[correlation] ?? '')
            : '';
        if (defragment && (key === '' || !ff.attributes['fragment.count'] || !ff.attributes['fragment.index'])) {
          session.transfer(
            session.putAttribute(ff, 'merge.error', 'missing fragment.identifier, .index or .count'),
            'failure',
          );
          continue;
        }
        const list = groups.get(key) ?? [];
        list.push(ff);
        groups.set(key, list);
      }

      const merge = async (bin: FlowFile[]) => {
        const parts: Uint8Array[] = [header];
        for (let i = 0; i < bin.length; i++) {
          if (i > 0) parts.push(demarcator);
          parts.push(await session.read(bin[i]!));
        }
        parts.push(footer);
        let merged = session.write(session.createChild(bin), Buffer.concat(parts));
        const attrs: Record<string, string> = {
          'merge.count': String(bin.length),
          'merge.bin.age': String(now - Math.min(...bin.map((f) => f.entryDate))),
        };
        if (defragment) attrs.filename = bin[0]!.attributes['segment.original.filename'] || merged.attributes.filename!;
        merged = session.putAllAttributes(merged, attrs);
        session.transfer(merged, 'merged');
        for (const ff of bin) session.transfer(ff, 'original');
      };

      let merged = 0;
      for (const group of groups.values()) {
        const oldest = Math.min(...group.map((f) => f.entryDate));
        const old = now - oldest >= maxAge;
        if (defragment) {
          const count = Number(group[0]!.attributes['fragment.count']);
          if (group.length >= count) {
            group.sort((a, b) => Number(a.attributes['fragment.index']) - Number(b.attributes['fragment.index']));
            await merge(group.slice(0, count));
            for (const ff of group.slice(count)) session.release(ff);
            merged++;
          } else if (old) {
            for (const ff of group)
              session.transfer(
                session.putAttribute(ff, 'merge.error', 'fragments missing past Max Bin Age'),
                'failure',
              );
          } else for (const ff of group) session.release(ff);
          continue;
        }
        let bin: FlowFile[] = [];
        let size = 0;
        const bins: { items: FlowFile[]; size: number; full: boolean }[] = [];
        for (const ff of group) {
          if (bin.length > 0 && (bin.length >= maxEntries || size + ff.size > maxSize)) {
            bins.push({ items: bin, size, full: true });
            bin = [];
            size = 0;
          }
          bin.push(ff);
          size += ff.size;
        }
        if (bin.length) bins.push({ items: bin, size, full: bin.length >= maxEntries || size >= maxSize });
        for (const b of bins) {
          if (b.full || (b.items.length >= minEntries && b.size >= minSize) || old) {
            await merge(b.items);
            merged++;
          } else for (const ff of b.items) session.release(ff);
        }
      }
      session.commit();
      // nothing ready: rest rather than spin over the same FlowFiles
      if (merged === 0) ctx.yield();
    },
  };
}

export const mergeContent: BuiltInProcessor = { type: 'MergeContent', info, factory: createMergeContent };
