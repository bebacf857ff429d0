/**
 * How a plugin id is named in a catalog (an npm registry). The id's first
 * segment is its publisher namespace and becomes the npm scope, the rest
 * follows `databridge-`: `acme.csv-tools` is `@acme/databridge-csv-tools`,
 * `acme.io.s3` is `@acme/databridge-io.s3`. The namespace is the scope, so a
 * `.npmrc` line `@acme:registry=…` sends every acme plugin to that registry,
 * and the mapping runs both ways.
 */

import semver from 'semver';
import { createError } from '../errors.ts';

/** The keyword every plugin release carries (search and the packument check look for it). */
export const PLUGIN_KEYWORD = 'databridge-plugin';
const PREFIX = 'databridge-';
const ID = /^([a-z0-9]+(?:-[a-z0-9]+)*)\.([a-z0-9]+(?:[-_][a-z0-9]+)*(?:\.[a-z0-9]+(?:[-_][a-z0-9]+)*)*)$/;

/** Whether `id` has the manifest's id syntax (builtin. ids are never in a catalog). */
export function isPluginId(id: string): boolean {
  return id.length <= 128 && ID.test(id) && !id.startsWith('builtin.');
}

/**
 * The npm package name of a plugin id.
 *
 * @example
 * packageName('acme.csv-tools'); // '@acme/databridge-csv-tools'
 */
export function packageName(id: string): string {
  const m = ID.exec(id);
  if (!m || !isPluginId(id))
    throw createError('USAGE', { message: `"${id}" is not a plugin id (e.g. acme.csv-tools)` });
  return `@${m[1]}/${PREFIX}${m[2]}`;
}

/** The plugin id a package name stands for, or null when it names no plugin. */
export function pluginIdOf(name: string): string | null {
  const m = /^@([^/]+)\/(.+)$/.exec(name);
  if (!m || !m[2]!.startsWith(PREFIX)) return null;
  const id = `${m[1]}.${m[2]!.slice(PREFIX.length)}`;
  return isPluginId(id) ? id : null;
}

/** The npm scope of a plugin id (`@acme`). */
export function scopeOf(id: string): string {
  return `@${id.split('.')[0]}`;
}

/** A request to install: `ID` or `ID@RANGE`. */
export interface PluginSpec {
  id: string;
  /** A semver range; `*` when none was given. */
  range: string;
}

/** Parses `ID[@RANGE]`; USAGE when either part is not well formed. */
export function parseSpec(text: string): PluginSpec {
  const at = text.indexOf('@');
  const id = at < 0 ? text : text.slice(0, at);
  const range = at < 0 ? '*' : text.slice(at + 1).trim();
  if (!isPluginId(id)) throw createError('USAGE', { message: `"${id}" is not a plugin id (e.g. acme.csv-tools)` });
  if (range === '' || semver.validRange(range) === null)
    throw createError('USAGE', { message: `"${range}" is not a semver range (e.g. ^1.2.0)` });
  return { id, range };
}
