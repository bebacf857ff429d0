/**
 * Where the catalog addresses come from: `--catalog URL` (repeatable) when
 * given, else `DATABRIDGE_CATALOG` (comma-separated), else none (the public
 * npm registry is then asked). Order is kept: it is the order catalogs are
 * asked in.
 */

import { normalizeCatalog } from './client.ts';

export function catalogAddresses(flags: readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const given = flags?.length
    ? flags
    : (env.DATABRIDGE_CATALOG ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
  return [...new Set(given.map(normalizeCatalog))];
}
