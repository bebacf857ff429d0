/**
 * PutFile: writes each FlowFile's content to a folder under its filename.
 * Writes go to a temporary file first and are moved in at once, so a reader
 * never sees half a file; a filename that would leave the folder is refused.
 */

import { randomUUID } from 'node:crypto';
import { link, mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type Processor, type ProcessorInfo, Relationships } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

const info: ProcessorInfo = {
  name: 'PutFile',
  description: "Writes each FlowFile's content to a folder, named by its filename attribute.",
  version: VERSION,
  author: 'DataBridge',
  tags: ['files', 'filesystem', 'egress', 'put', 'local'],
  inputRequirement: 'required',
  properties: [
    { name: 'Directory', description: 'Where to write', required: true, type: 'path', expressionLanguage: true },
    {
      name: 'Conflict Resolution Strategy',
      description: 'When the file exists: replace it, ignore (keep it, FlowFile to success) or fail',
      allowedValues: ['replace', 'ignore', 'fail'],
      defaultValue: 'fail',
    },
    {
      name: 'Create Missing Directories',
      description: 'Make the folder if need be',
      type: 'boolean',
      defaultValue: 'true',
    },
  ],
  relationships: [Relationships.SUCCESS, Relationships.FAILURE],
};

/** A name that stays inside the folder: no separator, no `.`/`..`, no NUL. */
function safeName(name: string | undefined): string | undefined {
  if (!name || name === '.' || name === '..' || /[/\\\0]/.test(name)) return undefined;
  return name;
}

function createPutFile(): Processor {
  return {
    getInfo: () => info,
    async onTrigger(ctx, session) {
      const strategy = ctx.getProperty('Conflict Resolution Strategy').asString();
      const create = ctx.getProperty('Create Missing Directories').asBoolean();
      for (let ff = session.get(); ff; ff = session.get()) {
        const name = safeName(ff.attributes.filename);
        if (!name) {
          session.transfer(
            session.putAttribute(ff, 'putfile.error', `unsafe filename "${ff.attributes.filename}"`),
            'failure',
          );
          continue;
        }
        const dir = resolve(ctx.getProperty('Directory').evaluate(ff).asString());
        const target = join(dir, name);
        const tmp = join(dir, `.${name}.${randomUUID()}.tmp`);
        try {
          if (create) await mkdir(dir, { recursive: true });
          await writeFile(tmp, await session.read(ff), { flag: 'wx' });
          if (strategy === 'replace') await rename(tmp, target);
          else {
            // link() refuses an existing target: no check-then-write race
            try {
              await link(tmp, target);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || strategy === 'fail') throw err;
            } finally {
              await unlink(tmp).catch(() => {});
            }
          }
          session.transfer(ff, 'success');
        } catch (err) {
          await unlink(tmp).catch(() => {});
          const code = (err as NodeJS.ErrnoException).code;
          const why = code === 'EEXIST' ? `${target} exists` : (err as Error).message;
          session.transfer(session.penalize(session.putAttribute(ff, 'putfile.error', why)), 'failure');
        }
      }
      session.commit();
    },
  };
}

export const putFile: BuiltInProcessor = { type: 'PutFile', info, factory: createPutFile };
