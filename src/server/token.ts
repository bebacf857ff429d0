/**
 * The admin token: `DATABRIDGE_TOKEN` where set, otherwise made once and
 * kept in `<data dir>/admin.token` (mode 0600), as Jupyter does.
 */

import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function resolveToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.DATABRIDGE_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const file = join(dataDir, 'admin.token');
  try {
    const kept = readFileSync(file, 'utf8').trim();
    if (kept) return kept;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dataDir, { recursive: true });
  const token = randomBytes(24).toString('base64url');
  // 'wx': never overwrite a token another process made in the meantime
  try {
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim();
    throw err;
  }
  chmodSync(file, 0o600);
  return token;
}

// the expected side is the same token on every request: hashed once, not per request
let expectedDigest: { token: string; digest: Buffer } | null = null;

/** Compares in constant time, whatever the lengths (both sides are hashed first). */
export function tokenMatches(given: string, expected: string): boolean {
  if (expectedDigest?.token !== expected)
    expectedDigest = { token: expected, digest: hash('sha256', expected, 'buffer') };
  return timingSafeEqual(hash('sha256', given, 'buffer'), expectedDigest.digest);
}
