/** CompressContent: gzip or brotli, compress or decompress; bad input goes to failure. */

import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants, gunzip, gzip } from 'node:zlib';
import { type Processor, type ProcessorInfo, Relationships } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);
const brotliAsync = promisify(brotliCompress);
const unbrotliAsync = promisify(brotliDecompress);

const FORMATS = {
  gzip: { ext: '.gz', mime: 'application/gzip' },
  brotli: { ext: '.br', mime: 'application/x-brotli' },
} as const;
type Format = keyof typeof FORMATS;

const info: ProcessorInfo = {
  name: 'CompressContent',
  description:
    'Compresses or decompresses the content with gzip or brotli. With "use mime.type attribute", the format comes from each FlowFile.',
  version: VERSION,
  author: 'DataBridge',
  tags: ['compress', 'decompress', 'gzip', 'brotli', 'content'],
  inputRequirement: 'required',
  properties: [
    { name: 'Mode', description: 'What to do', allowedValues: ['compress', 'decompress'], defaultValue: 'compress' },
    {
      name: 'Compression Format',
      description: 'Format',
      allowedValues: ['gzip', 'brotli', 'use mime.type attribute'],
      defaultValue: 'gzip',
    },
    {
      name: 'Compression Level',
      description: 'gzip 0–9, brotli 0–11',
      type: 'integer',
      defaultValue: '6',
      pattern: '\\d|1[01]',
    },
    {
      name: 'Update Filename',
      description: 'Add (compress) or remove (decompress) the extension',
      type: 'boolean',
      defaultValue: 'false',
    },
  ],
  relationships: [Relationships.SUCCESS, Relationships.FAILURE],
};

function formatOf(setting: string, mime: string | undefined): Format | undefined {
  if (setting !== 'use mime.type attribute') return setting as Format;
  return (Object.keys(FORMATS) as Format[]).find((f) => FORMATS[f].mime === mime);
}

function createCompressContent(): Processor {
  return {
    getInfo: () => info,
    validate(properties) {
      const gzipLevel = properties['Compression Format'] === 'gzip' && Number(properties['Compression Level']) > 9;
      return gzipLevel ? [{ property: 'Compression Level', message: 'gzip levels are 0 to 9' }] : [];
    },
    async onTrigger(ctx, session) {
      const compress = ctx.getProperty('Mode').asString() === 'compress';
      const setting = ctx.getProperty('Compression Format').asString();
      const level = ctx.getProperty('Compression Level').asInteger();
      const rename = ctx.getProperty('Update Filename').asBoolean();
      for (let ff = session.get(); ff; ff = session.get()) {
        const format = formatOf(setting, ff.attributes['mime.type']);
        if (!format) {
          session.transfer(session.putAttribute(ff, 'compress.error', 'unknown mime.type'), 'failure');
          continue;
        }
        const input = await session.read(ff);
        let output: Uint8Array;
        try {
          if (format === 'gzip') output = compress ? await gzipAsync(input, { level }) : await gunzipAsync(input);
          else {
            output = compress
              ? await brotliAsync(input, { params: { [constants.BROTLI_PARAM_QUALITY]: level } })
              : await unbrotliAsync(input);
          }
        } catch (err) {
          session.transfer(session.putAttribute(ff, 'compress.error', (err as Error).message), 'failure');
          continue;
        }
        const { ext, mime } = FORMATS[format];
        let out = session.write(ff, output);
        const attrs: Record<string, string> = {};
        if (compress) attrs['mime.type'] = mime;
        if (rename) {
          const name = out.attributes.filename ?? '';
          attrs.filename = compress ? name + ext : name.endsWith(ext) ? name.slice(0, -ext.length) : name;
        }
        out = session.putAllAttributes(out, attrs);
        if (!compress) out = session.removeAttribute(out, 'mime.type');
        session.transfer(out, 'success');
      }
      session.commit();
    },
  };
}

export const compressContent: BuiltInProcessor = { type: 'CompressContent', info, factory: createCompressContent };
