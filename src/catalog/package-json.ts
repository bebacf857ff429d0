/**
 * The `package.json` that makes a plugin folder an npm package for a
 * catalog: its name from the plugin id (names.ts), the manifest's version,
 * the plugin keyword, and a `databridge` field repeating the id, publisher
 * and dependencies so a resolver can plan a set before downloading it. It is
 * written before signing: the signed file list covers it like any file,
 * and what the metadata claims is checked against the verified manifest.
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PluginManifest } from '../plugin/manifest.ts';
import { PLUGIN_KEYWORD, packageName } from './names.ts';

export const PACKAGE_FILE = 'package.json';

/** The package.json object for a manifest. */
export function packageJsonOf(manifest: PluginManifest): Record<string, unknown> {
  return {
    name: packageName(manifest.id),
    version: manifest.version,
    description: manifest.description ?? manifest.name,
    keywords: [...new Set([PLUGIN_KEYWORD, ...(manifest.tags ?? [])])],
    // the plugin's code is ESM (the manifest's entry point), and Node reads the nearest package.json to know
    type: 'module',
    main: manifest.entryPoint,
    ...(manifest.license ? { license: manifest.license } : {}),
    ...(manifest.author ? { author: manifest.author } : {}),
    databridge: {
      id: manifest.id,
      publisher: manifest.publisher,
      dependencies: manifest.dependencies ?? {},
    },
  };
}

/** Writes (or replaces) `package.json` in a plugin folder. */
export async function writePackageJson(dir: string, manifest: PluginManifest): Promise<void> {
  await writeFile(join(dir, PACKAGE_FILE), `${JSON.stringify(packageJsonOf(manifest), null, 2)}\n`);
}
