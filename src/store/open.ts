/** Opening the state store a node is configured with. */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openPostgresStore } from './postgres.ts';
import { openSqliteStore } from './sqlite.ts';
import type { StateStore } from './types.ts';

/**
 * PostgreSQL at `url` when one is given, else the data directory's SQLite
 * file; a read-only look at a directory with no state database yet gets an
 * empty one in memory (it makes nothing).
 */
export async function openStateStore(o: {
  url: string | null;
  dataDir: string;
  readOnly: boolean;
}): Promise<StateStore> {
  if (o.url) return openPostgresStore({ url: o.url });
  const file = join(o.dataDir, 'state.db');
  return openSqliteStore({ file: o.readOnly && !existsSync(file) ? ':memory:' : file });
}
