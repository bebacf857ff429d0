/**
 * The configuration file: `databridge.json` in the working directory, or the
 * file `--config` names, checked against schemas/config.schema.json. What it
 * says fills the options a command was given neither as a flag nor through
 * the environment: a flag beats the environment, which beats the file.
 */

import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Ajv } from 'ajv';
import type { Command } from 'commander';
import configSchema from '../../schemas/config.schema.json' with { type: 'json' };
import { createError } from '../errors.ts';
import type { PluginManagerOptions } from '../plugin/config.ts';
import type { PluginManager } from '../plugin/manager.ts';
import type { ScannerHook } from '../plugin/scanner.ts';
import type { ResourceLimits } from '../sandbox/limits.ts';
import type { LogFormat, LogLevel } from './logs.ts';

/** The file's contents (schemas/config.schema.json), paths resolved against its folder. */
export interface ConfigFile {
  dataDir?: string;
  pluginDir?: string;
  store?: string;
  autoLoad?: boolean;
  allowUnsigned?: boolean;
  trustedPublishers?: string[];
  requireChecksum?: boolean;
  monitorInterval?: number;
  workerPlugins?: string[];
  inlinePlugins?: string[];
  allowWeakIsolation?: boolean;
  sandboxUid?: number;
  defaultLimits?: ResourceLimits;
  namespaces?: { name: string; displayName?: string; limits?: ResourceLimits }[];
  scanners?: { name: string; command: string[]; timeoutMs?: number }[];
  serve?: {
    host?: string;
    port?: number;
    flow?: string;
    watch?: boolean;
    tlsCert?: string;
    tlsKey?: string;
    seedExamples?: boolean;
  };
  log?: { level?: LogLevel; format?: LogFormat };
  catalogs?: string[];
}

/** The file read for this command: its path and contents; none when there is no file. */
export interface LoadedConfig {
  file: string | null;
  config: ConfigFile;
}

export const DEFAULT_CONFIG_FILE = 'databridge.json';

const validate = new Ajv({ allErrors: true, strict: false }).compile<ConfigFile>(configSchema);

let current: LoadedConfig = { file: null, config: {} };

/** The configuration of the command being run (set by the CLI before its action). */
export function currentConfig(): LoadedConfig {
  return current;
}

/** One problem with the file: where (a JSON pointer) and what. */
export interface ConfigFileProblem {
  pointer: string;
  message: string;
}

/**
 * Reads and checks a config file: `explicit` (from --config) must exist;
 * otherwise `databridge.json` in `cwd` is read when it is there. Every
 * problem is CONFIG_INVALID (the CLI exits 2) naming the key and its pointer.
 */
export function loadConfigFile(explicit: string | undefined, cwd = process.cwd()): LoadedConfig {
  const file = explicit === undefined ? resolve(cwd, DEFAULT_CONFIG_FILE) : resolve(cwd, explicit);
  if (!existsSync(file)) {
    if (explicit === undefined) return { file: null, config: {} };
    throw createError('USAGE', { message: `--config: ${explicit} does not exist` });
  }
  const invalid = (problems: ConfigFileProblem[]) =>
    createError(
      'CONFIG_INVALID',
      { summary: `${file}: ${problems.map((p) => `${p.pointer || '(the file)'} ${p.message}`).join('; ')}` },
      { details: { file, problems: problems.map((p) => ({ field: p.pointer, ...p })) } },
    );
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw invalid([{ pointer: '', message: `is not JSON: ${(err as Error).message}` }]);
  }
  if (!validate(data)) throw invalid(schemaProblems(validate.errors ?? []));
  return { file, config: resolvePaths(data, dirname(file)) };
}

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** Ajv's errors as pointer and message: an unknown key is named, with its own pointer. */
function schemaProblems(errors: NonNullable<typeof validate.errors>): ConfigFileProblem[] {
  const problems = errors.map((e): ConfigFileProblem => {
    if (e.keyword === 'additionalProperties') {
      const key = String(e.params.additionalProperty);
      return { pointer: `${e.instancePath}/${escapePointer(key)}`, message: `is not a known key ("${key}")` };
    }
    if (e.keyword === 'enum')
      return {
        pointer: e.instancePath,
        message: `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    return { pointer: e.instancePath, message: e.message ?? 'is invalid' };
  });
  // the same problem twice (an anyOf, say) is said once
  return problems.filter((p, i) => problems.findIndex((q) => q.pointer === p.pointer && q.message === p.message) === i);
}

function resolvePaths(config: ConfigFile, base: string): ConfigFile {
  const at = (p: string | undefined) => (p === undefined ? undefined : resolve(base, p));
  return {
    ...config,
    ...(config.dataDir !== undefined ? { dataDir: at(config.dataDir) } : {}),
    ...(config.pluginDir !== undefined ? { pluginDir: at(config.pluginDir) } : {}),
    ...(config.serve
      ? {
          serve: {
            ...config.serve,
            ...(config.serve.flow !== undefined ? { flow: at(config.serve.flow) } : {}),
            ...(config.serve.tlsCert !== undefined ? { tlsCert: at(config.serve.tlsCert) } : {}),
            ...(config.serve.tlsKey !== undefined ? { tlsKey: at(config.serve.tlsKey) } : {}),
          },
        }
      : {}),
    ...(config.scanners
      ? {
          scanners: config.scanners.map((s) => ({
            ...s,
            // a program named with a path is found beside the file; a bare name on the PATH
            command: s.command.map((word, i) =>
              i === 0 && word.includes('/') && !isAbsolute(word) ? resolve(base, word) : word,
            ),
          })),
        }
      : {}),
  };
}

/** A command option the file can fill: its attribute, where it is in the file, the variable that beats the file. */
interface Mapping {
  option: string;
  read: (c: ConfigFile) => unknown;
  env?: string;
}

const MAPPINGS: readonly Mapping[] = [
  { option: 'dataDir', read: (c) => c.dataDir, env: 'DATABRIDGE_DATA_DIR' },
  { option: 'pluginDir', read: (c) => c.pluginDir, env: 'DATABRIDGE_PLUGIN_DIR' },
  { option: 'store', read: (c) => c.store, env: 'DATABRIDGE_STORE' },
  { option: 'allowUnsigned', read: (c) => c.allowUnsigned },
  { option: 'trustedPublisher', read: (c) => c.trustedPublishers },
  { option: 'workerPlugin', read: (c) => c.workerPlugins, env: 'DATABRIDGE_WORKER_PLUGINS' },
  { option: 'inlinePlugin', read: (c) => c.inlinePlugins, env: 'DATABRIDGE_INLINE_PLUGINS' },
  { option: 'allowWeakIsolation', read: (c) => c.allowWeakIsolation, env: 'DATABRIDGE_ALLOW_WEAK_ISOLATION' },
  { option: 'sandboxUid', read: (c) => c.sandboxUid, env: 'DATABRIDGE_SANDBOX_UID' },
  { option: 'host', read: (c) => c.serve?.host, env: 'DATABRIDGE_HOST' },
  { option: 'port', read: (c) => c.serve?.port, env: 'DATABRIDGE_PORT' },
  { option: 'flow', read: (c) => c.serve?.flow, env: 'DATABRIDGE_FLOW' },
  { option: 'watch', read: (c) => c.serve?.watch },
  { option: 'tlsCert', read: (c) => c.serve?.tlsCert, env: 'DATABRIDGE_TLS_CERT' },
  { option: 'tlsKey', read: (c) => c.serve?.tlsKey, env: 'DATABRIDGE_TLS_KEY' },
  { option: 'seedExamples', read: (c) => c.serve?.seedExamples },
  { option: 'catalog', read: (c) => c.catalogs, env: 'DATABRIDGE_CATALOG' },
];

/**
 * Makes `loaded` the command's configuration and fills the options of
 * `command` that neither a flag nor the environment set. Commander keeps
 * option values as strings where the flag takes text (a port, a uid).
 */
export function applyConfigFile(loaded: LoadedConfig, command: Command): void {
  current = loaded;
  const attributes = new Set(command.options.map((o) => o.attributeName()));
  for (const m of MAPPINGS) {
    if (!attributes.has(m.option)) continue;
    const value = m.read(loaded.config);
    if (value === undefined) continue;
    const source = command.getOptionValueSource(m.option);
    if (source === 'cli' || source === 'env') continue;
    if (m.env && (process.env[m.env] ?? '').trim() !== '') continue;
    command.setOptionValueWithSource(m.option, typeof value === 'number' ? String(value) : value, 'config');
  }
}

/**
 * Where an option's value came from, for messages: `--port`, `DATABRIDGE_PORT`,
 * or the file's key (`serve.port in /srv/databridge.json`).
 */
export function optionOrigin(command: Command, option: string, flag: string, env?: string, key?: string): string {
  const source = command.getOptionValueSource(option);
  if (source === 'cli') return flag;
  if (source === 'config' && key) return `${key} in ${current.file}`;
  if (env && (source === 'env' || (process.env[env] ?? '').trim() !== '')) return env;
  return flag;
}

/** The manager settings the file holds that have no flag: they apply to every command. */
export function configManagerOptions(): PluginManagerOptions {
  const c = current.config;
  const scanners: ScannerHook[] | undefined = c.scanners?.map((s) => ({
    name: s.name,
    command: s.command,
    ...(s.timeoutMs !== undefined ? { timeoutMs: s.timeoutMs } : {}),
  }));
  return {
    ...(c.autoLoad !== undefined ? { autoLoad: c.autoLoad } : {}),
    ...(c.requireChecksum !== undefined ? { requireChecksum: c.requireChecksum } : {}),
    ...(c.monitorInterval !== undefined ? { monitorInterval: c.monitorInterval } : {}),
    ...(c.defaultLimits !== undefined ? { defaultLimits: c.defaultLimits } : {}),
    ...(scanners ? { scanners } : {}),
  };
}

/**
 * Creates the namespaces the file lists, or sets their display names and
 * limits to the file's (audited as `config`); a namespace already as the
 * file says is left alone. Returns a line per change.
 */
export async function applyConfigNamespaces(manager: PluginManager): Promise<string[]> {
  const notes: string[] = [];
  const existing = new Map((await manager.namespaces.list()).map((n) => [n.name, n]));
  for (const ns of current.config.namespaces ?? []) {
    const now = existing.get(ns.name);
    if (!now) {
      await manager.namespaces.create(ns.name, ns.displayName, ns.limits, 'config');
      notes.push(`created the namespace ${ns.name} (${current.file})`);
      continue;
    }
    const limits = ns.limits ?? manager.config.defaultLimits;
    const sameLimits = JSON.stringify(sortKeys(now.limits)) === JSON.stringify(sortKeys(limits));
    const sameName = ns.displayName === undefined || ns.displayName === now.displayName;
    if (sameLimits && sameName) continue;
    await manager.namespaces.update(
      ns.name,
      { ...(ns.displayName !== undefined ? { displayName: ns.displayName } : {}), limits },
      'config',
    );
    notes.push(`updated the namespace ${ns.name} (${current.file})`);
  }
  return notes;
}

function sortKeys(o: object): [string, unknown][] {
  return Object.entries(o).sort(([a], [b]) => a.localeCompare(b));
}
