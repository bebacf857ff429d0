/**
 * PutFile: writes each FlowFile's content to a folder under its filename.
 * Writes go to a temporary file first and are moved in at once, so a reader
 * never sees half a file; a filename that would leave the folder is refused.
 *
 * Idempotent, because a crash replays it: the files are written before the
 * session commits, so after `kill -9` the FlowFiles of the interrupted
 * session come again. The temporary file is named by the FlowFile's id (a
 * replay overwrites its own leftover), and a target that already holds
 * exactly the bytes to write counts as written, whatever the conflict
 * strategy: a replay ends with one file and the FlowFile in success.
 */

import { link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
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
      description:
        'When a file of that name exists with other content: replace it, ignore (keep it, FlowFile to success) or fail. One that holds the same bytes counts as written (a replay after a crash)',
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

/** True when `path` is a file holding exactly `content`: this write was done already. */
async function holds(path: string, content: Uint8Array): Promise<boolean> {
  try {
    if ((await stat(path)).size !== content.length) return false;
    return Buffer.from(content).equals(await readFile(path));
  } catch {
    return false;
  }
}

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
        // one temporary name per FlowFile: a replay after a crash reuses (and removes) its own
        const tmp = join(dir, `.${name}.${ff.id}.tmp`);
        try {
          if (create) await mkdir(dir, { recursive: true });
          const content = await session.read(ff);
          // a leftover of an interrupted attempt goes first; 'wx' never follows a link planted in its place
          await unlink(tmp).catch(() => {});
          await writeFile(tmp, content, { flag: 'wx' });
          if (strategy === 'replace') await rename(tmp, target);
          else {
            // link() refuses an existing target: no check-then-write race
            try {
              await link(tmp, target);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
              if (strategy === 'fail' && !(await holds(target, content))) throw err;
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
