/**
 * GetFile: picks up files from a folder as FlowFiles. With "Keep Source
 * File" the files stay, and each is picked once per run unless it changes
 * (NiFi would pick it again on every poll).
 */

import { lstat, readdir, readFile, unlink } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { type Processor, type ProcessorInfo, Relationships } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

const info: ProcessorInfo = {
  name: 'GetFile',
  description: 'Creates FlowFiles from the files in a folder, removing them unless "Keep Source File" is true.',
  version: VERSION,
  author: 'DataBridge',
  tags: ['files', 'filesystem', 'ingest', 'source', 'local'],
  inputRequirement: 'forbidden',
  properties: [
    {
      name: 'Input Directory',
      description: 'The folder to read',
      required: true,
      type: 'path',
      expressionLanguage: true,
    },
    { name: 'File Filter', description: 'Only file names matching this', type: 'regex', defaultValue: '[^\\.].*' },
    { name: 'Batch Size', description: 'Most files per trigger', type: 'integer', defaultValue: '10', required: true },
    { name: 'Keep Source File', description: 'Leave the files in place', type: 'boolean', defaultValue: 'false' },
    { name: 'Recurse Subdirectories', description: 'Also read sub-folders', type: 'boolean', defaultValue: 'true' },
    {
      name: 'Minimum File Age',
      description: 'Skip files changed more recently',
      type: 'duration',
      defaultValue: '0 sec',
    },
    { name: 'Ignore Hidden Files', description: 'Skip names starting with "."', type: 'boolean', defaultValue: 'true' },
  ],
  relationships: [Relationships.SUCCESS],
};

interface Candidate {
  path: string;
  size: number;
  mtimeMs: number;
  birthtimeMs: number;
}

async function list(
  dir: string,
  recurse: boolean,
  hidden: boolean,
  filter: RegExp,
  max: number,
  out: Candidate[],
): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (out.length >= max) return;
    if (hidden && e.name.startsWith('.')) continue;
    const path = join(dir, e.name);
    // lstat: links are not followed, so nothing outside the folder is read through one
    if (e.isDirectory()) {
      if (recurse) await list(path, recurse, hidden, filter, max, out);
    } else if (e.isFile() && filter.test(e.name)) {
      const st = await lstat(path);
      if (st.isFile()) out.push({ path, size: st.size, mtimeMs: st.mtimeMs, birthtimeMs: st.birthtimeMs });
    }
  }
}

function createGetFile(): Processor {
  const seen = new Map<string, string>();
  return {
    getInfo: () => info,
    async onTrigger(ctx, session) {
      const root = resolve(ctx.getProperty('Input Directory').evaluate().asString());
      const batch = ctx.getProperty('Batch Size').asInteger();
      const keep = ctx.getProperty('Keep Source File').asBoolean();
      const minAge = ctx.getProperty('Minimum File Age').asDuration();
      const filter = new RegExp(`^(?:${ctx.getProperty('File Filter').asString()})$`);
      const found: Candidate[] = [];
      // list more than a batch when keeping files: those already picked are skipped below
      await list(
        root,
        ctx.getProperty('Recurse Subdirectories').asBoolean(),
        ctx.getProperty('Ignore Hidden Files').asBoolean(),
        filter,
        keep ? batch + seen.size : batch,
        found,
      );
      const now = Date.now();
      const picked: Candidate[] = [];
      for (const c of found) {
        if (picked.length >= batch) break;
        if (now - c.mtimeMs < minAge) continue;
        if (keep && seen.get(c.path) === `${c.mtimeMs}:${c.size}`) continue;
        picked.push(c);
      }
      if (picked.length === 0) {
        ctx.yield();
        return;
      }
      for (const c of picked) {
        let content: Uint8Array;
        try {
          content = await readFile(c.path);
        } catch (err) {
          // gone or unreadable since the listing: leave it to the next poll
          ctx.logger.warn('could not read a file', { path: c.path, err: (err as Error).message });
          continue;
        }
        const dir = relative(root, join(c.path, '..'));
        let ff = session.write(session.create(), content);
        ff = session.putAllAttributes(ff, {
          filename: c.path.slice(c.path.lastIndexOf(sep) + 1),
          path: dir === '' ? './' : `${dir.split(sep).join('/')}/`,
          'absolute.path': `${join(c.path, '..')}/`,
          'file.size': String(c.size),
          'file.lastModifiedTime': new Date(c.mtimeMs).toISOString(),
          'file.creationTime': new Date(c.birthtimeMs).toISOString(),
        });
        session.transfer(ff, 'success');
      }
      session.commit();
      // only once the FlowFiles are safely in the flow do the sources go
      for (const c of picked) {
        if (keep) seen.set(c.path, `${c.mtimeMs}:${c.size}`);
        else await unlink(c.path).catch(() => {});
      }
    },
  };
}

export const getFile: BuiltInProcessor = { type: 'GetFile', info, factory: createGetFile };
