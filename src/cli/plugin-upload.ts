/** A plugin folder or bundle as the bytes `POST /api/plugins/install` takes. */

import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createError } from '../errors.ts';
import { packPlugin } from '../plugin/bundle.ts';

/** A .tgz as it is; a folder packed as `plugin pack` packs it (refused with its findings as an install would be). */
export async function bundleOf(path: string): Promise<Buffer> {
  if (!(await stat(path)).isDirectory()) return await readFile(path);
  const work = await mkdtemp(join(tmpdir(), 'databridge-upload-'));
  try {
    const out = join(work, 'plugin.tgz');
    const { findings } = await packPlugin(path, out);
    if (findings.length) {
      const codes = [...new Set(findings.filter((f) => f.severity === 'error').map((f) => f.code))];
      throw createError('INSTALL_REFUSED', { codes }, { details: { findings } });
    }
    return await readFile(out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
