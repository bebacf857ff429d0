/**
 * Credentials and scope registries from `.npmrc`, read as npm reads them:
 * the user file (`$NPM_CONFIG_USERCONFIG`, else `~/.npmrc`), then the
 * project's `./.npmrc`, a later file's key winning; `${VAR}` is replaced by
 * the environment. The keys are kept as written (`//host/:_authToken`,
 * `//host/:_auth`, `@scope:registry`, `proxy`, `cafile`, …): npm's own
 * `getAuth` reads the credentials from them (registry-http.ts).
 */

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Parses one `.npmrc` text (ini: `key = value`, `;` and `#` comments, no sections used). */
export function parseNpmrc(text: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith(';') || line.startsWith('#') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!)) {
      value = value.slice(1, -1);
    }
    out[key] = value.replace(/\$\{([^}]+)\}/g, (_, name: string) => env[name] ?? '');
  }
  return out;
}

/** The `.npmrc` settings in force for a command run in `cwd`. */
export function readNpmrc(cwd: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const files = [
    env.NPM_CONFIG_USERCONFIG ?? env.npm_config_userconfig ?? join(homedir(), '.npmrc'),
    join(cwd, '.npmrc'),
  ];
  const out: Record<string, string> = {};
  for (const file of [...new Set(files.map((f) => resolve(f)))]) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    Object.assign(out, parseNpmrc(text, env));
  }
  return out;
}
