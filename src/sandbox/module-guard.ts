/**
 * The module guard: plugin code is compiled only from bytes whose sha256
 * matches the verified release. A synchronous module hook (Node's
 * `registerHooks`) reads each plugin file at load time, checks its digest
 * and hands exactly those bytes to the compiler, so a file changed between
 * validation and import is refused, not run. Imports that leave the plugin
 * folder are refused too. Each release loads under its own URL token, so a
 * reload gets fresh module instances.
 */

import { createHash } from 'node:crypto';
import { registerHooks } from 'node:module';
import { join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MAX_PLUGIN_BYTES, readPluginBytesSync } from '../regular-file.ts';

const PARAM = 'databridge-release';

interface Release {
  root: string;
  files: Map<string, string>;
}

const releases = new Map<string, Release>();
let installed = false;

function tokenOf(url: string): string | null {
  if (!url.startsWith('file:')) return null;
  return new URL(url).searchParams.get(PARAM);
}

function install(): void {
  if (installed) return;
  installed = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const result = nextResolve(specifier, context);
      const token = context.parentURL ? tokenOf(context.parentURL) : null;
      if (!token || !result.url.startsWith('file:')) return result;
      const release = releases.get(token);
      const path = fileURLToPath(result.url);
      if (!release || !(path === release.root || path.startsWith(release.root + sep))) {
        throw new Error(`plugin code may not import ${specifier}: it lies outside the plugin folder`);
      }
      const url = new URL(result.url);
      url.searchParams.set(PARAM, token);
      return { ...result, url: url.href };
    },
    load(url, context, nextLoad) {
      const token = tokenOf(url);
      if (!token) return nextLoad(url, context);
      const release = releases.get(token);
      const path = fileURLToPath(new URL(url.split('?')[0]!));
      const want = release?.files.get(path);
      if (!want) throw new Error(`${path} is not a file of the verified release`);
      // a regular file only, never through a link or a pipe (files.ts)
      const source = readPluginBytesSync(path, MAX_PLUGIN_BYTES);
      if (createHash('sha256').update(source).digest('hex') !== want) {
        throw new Error(`${path} changed after it was verified; it was not loaded`);
      }
      return { format: 'module', source, shortCircuit: true };
    },
  });
}

/**
 * Registers a verified release and returns the URL to import its entry
 * point from.
 */
export function guardedEntryUrl(
  root: string,
  entryPoint: string,
  files: readonly { path: string; sha256: string }[],
  digest: string,
  id: string,
): string {
  install();
  const token = `${id}@${digest.slice(0, 16)}`;
  releases.set(token, { root, files: new Map(files.map((f) => [join(root, ...f.path.split('/')), f.sha256])) });
  const url = pathToFileURL(join(root, ...entryPoint.split('/')));
  url.searchParams.set(PARAM, token);
  return url.href;
}
