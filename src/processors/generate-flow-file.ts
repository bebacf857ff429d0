/** GenerateFlowFile: makes FlowFiles of a given size or text; the source of test and load flows. */

import { randomBytes } from 'node:crypto';
import { type ProcessContext, type Processor, type ProcessorInfo, Relationships } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

const info: ProcessorInfo = {
  name: 'GenerateFlowFile',
  description:
    'Creates FlowFiles with random content of a set size, or with custom text. Dynamic properties become attributes.',
  version: VERSION,
  author: 'DataBridge',
  tags: ['test', 'random', 'generate', 'load', 'source'],
  inputRequirement: 'forbidden',
  dynamicProperties: true,
  properties: [
    { name: 'File Size', description: 'Size of each FlowFile', type: 'dataSize', defaultValue: '0 B', required: true },
    {
      name: 'Batch Size',
      description: 'FlowFiles made per trigger',
      type: 'integer',
      defaultValue: '1',
      required: true,
    },
    {
      name: 'Data Format',
      description: 'Random printable text or random bytes',
      allowedValues: ['Text', 'Binary'],
      defaultValue: 'Text',
    },
    {
      name: 'Unique FlowFiles',
      description: 'Fresh random content for every FlowFile, rather than one content for all',
      type: 'boolean',
      defaultValue: 'false',
    },
    { name: 'Custom Text', description: 'Content to use instead of random data', expressionLanguage: true },
    {
      name: 'Max FlowFiles',
      description: 'Stop after making this many FlowFiles in all (0: never stop). The flow ends when its sources do.',
      type: 'integer',
      defaultValue: '0',
    },
  ],
  relationships: [Relationships.SUCCESS],
};

const PRINTABLE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ';

function randomContent(size: number, text: boolean): Uint8Array {
  const bytes = randomBytes(size);
  if (text) for (let i = 0; i < size; i++) bytes[i] = PRINTABLE.charCodeAt(bytes[i]! % PRINTABLE.length);
  return bytes;
}

/** Properties that are not attributes to set. */
const KNOWN = new Set(info.properties.map((p) => p.name));

function createGenerateFlowFile(): Processor {
  let shared: Uint8Array | undefined;
  let made = 0;
  const content = (ctx: ProcessContext): Uint8Array => {
    const custom = ctx.getProperty('Custom Text');
    if (custom.isSet()) return new TextEncoder().encode(custom.evaluate().asString());
    const unique = ctx.getProperty('Unique FlowFiles').asBoolean();
    if (!unique && shared) return shared;
    const bytes = randomContent(
      ctx.getProperty('File Size').asDataSize(),
      ctx.getProperty('Data Format').value === 'Text',
    );
    if (!unique) shared = bytes;
    return bytes;
  };
  return {
    getInfo: () => info,
    onTrigger(ctx, session) {
      const max = ctx.getProperty('Max FlowFiles').asInteger();
      let batch = ctx.getProperty('Batch Size').asInteger();
      if (max > 0) batch = Math.min(batch, max - made);
      if (batch <= 0) {
        ctx.yield();
        return;
      }
      const attributes: Record<string, string> = {};
      for (const [key, value] of Object.entries(ctx.getProperties())) {
        if (!KNOWN.has(key)) attributes[key] = value;
      }
      for (let i = 0; i < batch; i++) {
        let ff = session.write(session.create(), content(ctx));
        if (Object.keys(attributes).length > 0) ff = session.putAllAttributes(ff, attributes);
        session.transfer(ff, 'success');
      }
      session.commit();
      made += batch;
    },
  };
}

export const generateFlowFile: BuiltInProcessor = { type: 'GenerateFlowFile', info, factory: createGenerateFlowFile };
