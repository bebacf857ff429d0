// A processor in process mode that reads and writes the one folder its
// manifest declares (/tmp/databridge-archive): its sandbox grants that
// folder and nothing else of the host, so a Directory outside it fails,
// and says so.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';

const ROOT = '/tmp/databridge-archive';

const archiveFile = () => ({
  getInfo: () => ({
    name: 'ArchiveFile',
    description: 'Writes each FlowFile to <Directory>/<filename>; one already there with the same content goes to duplicate',
    version: '1.0.0',
    tags: ['files', 'archive'],
    properties: [
      { name: 'Directory', description: `A folder under ${ROOT} (made when missing)`, type: 'path', defaultValue: ROOT, required: true },
    ],
    relationships: [
      { name: 'success', description: 'Archived (archive.path says where)' },
      { name: 'duplicate', description: 'The archive already held the same content under that name' },
      { name: 'failure', description: 'Could not be archived (archive.error says why)' },
    ],
    inputRequirement: 'required',
  }),
  validate(properties) {
    const dir = resolve(properties.Directory ?? ROOT);
    return dir === ROOT || dir.startsWith(ROOT + sep)
      ? []
      : [{ property: 'Directory', message: `must be under ${ROOT}, the folder this plugin may write` }];
  },
  async onTrigger(ctx, session) {
    const dir = resolve(ctx.getProperty('Directory').asString());
    await mkdir(dir, { recursive: true });
    for (let ff = session.get(); ff; ff = session.get()) {
      const name = basename(ff.attributes.filename ?? ff.attributes.uuid ?? ff.id);
      const path = join(dir, name);
      const content = await session.read(ff);
      try {
        const existing = await readFile(path).catch((err) => (err.code === 'ENOENT' ? null : Promise.reject(err)));
        if (existing && Buffer.compare(existing, content) === 0) {
          session.transfer(session.putAttribute(ff, 'archive.path', path), 'duplicate');
          continue;
        }
        await writeFile(path, content);
        session.transfer(session.putAttribute(ff, 'archive.path', path), 'success');
      } catch (err) {
        session.transfer(session.putAttribute(ff, 'archive.error', err.message), 'failure');
      }
    }
    session.commit();
  },
});

export default { processors: { ArchiveFile: archiveFile } };
