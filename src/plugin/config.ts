/**
 * The plugin manager's configuration: validated field by field, defaults
 * filled in one place.
 */

import { resolve } from 'node:path';
import { Ajv } from 'ajv';
import { createError } from '../errors.ts';
import type { ConfinementReport } from '../sandbox/confinement.ts';
import { DEFAULT_LIMITS, limitsJsonSchema, type ResourceLimits } from '../sandbox/limits.ts';
import { type BundleLimits, DEFAULT_BUNDLE_LIMITS } from './bundle.ts';
import { TRUST_PATTERN } from './isolation.ts';
import type { ScannerHook } from './scanner.ts';

/** Options of `createPluginManager()`; every field has a default. */
export interface PluginManagerOptions {
  /** Where plugin folders live. Default `./plugins` (or `DATABRIDGE_PLUGIN_DIR`). */
  pluginDir?: string;
  /** Where state lives. Default `./data` (or `DATABRIDGE_DATA_DIR`). */
  dataDir?: string;
  /** Load the plugins found in `pluginDir` at start. Default true. */
  autoLoad?: boolean;
  /** Watch `pluginDir` and hot-reload changed plugins. Default false. */
  watchChanges?: boolean;
  /** Accept plugins without a signature (they still get checksums). Default false. */
  allowUnsigned?: boolean;
  /** When not empty, only these publishers' keys (from the trust store) are accepted. */
  trustedPublishers?: readonly string[];
  /** Every plugin file must match a recorded sha256. Default true. */
  requireChecksum?: boolean;
  /** How often resource use is sampled, in ms. Default 5000. */
  monitorInterval?: number;
  /** Limits of namespaces made without limits of their own. */
  defaultLimits?: ResourceLimits;
  /** Register the built-in processors. Default true. */
  builtins?: boolean;
  /** External scanners run on every validation; one that fails or times out fails it. */
  scanners?: readonly ScannerHook[];
  /** Caps on bundles (size, expansion, file count). */
  bundleLimits?: Partial<BundleLimits>;
  /**
   * External plugins the operator trusts to run inline, on the host's
   * thread: no sandbox, no boundary. Ids, `prefix.*` or `*` (env
   * DATABRIDGE_INLINE_PLUGINS, comma-separated). Default none.
   */
  inlinePlugins?: readonly string[];
  /**
   * External plugins the operator trusts to run in a worker thread: fault,
   * heap and deadline containment, not a security boundary. Ids,
   * `prefix.*` or `*` (env DATABRIDGE_WORKER_PLUGINS, comma-separated).
   * Every other external plugin runs in an OS-confined process. Default none.
   */
  workerPlugins?: readonly string[];
  /**
   * Run process-sandboxed plugins with what holds where this host cannot
   * confine them fully (no bubblewrap, a cgroup controller not writable),
   * instead of refusing them with ISOLATION_UNAVAILABLE; every status,
   * `/healthz` and the console say so (env DATABRIDGE_ALLOW_WEAK_ISOLATION=1).
   * Default false.
   */
  allowWeakIsolation?: boolean;
  /**
   * The host uid (and gid) a process sandbox runs as when DataBridge runs
   * as root: bwrap maps the sandbox's uid 65534 to it, so what a sandbox
   * writes is never root's and root's 0600 files stay closed to it. It
   * must be able to read DataBridge's files, and write the folders
   * plugins declare writable. Not root (env DATABRIDGE_SANDBOX_UID).
   * Default 65534 (nobody). Unused when DataBridge is not root.
   */
  sandboxUid?: number;
  /**
   * @internal For tests: this report instead of probing the host's
   * confinement. Not read from the environment.
   */
  confinementReport?: ConfinementReport;
  /**
   * After an upgrade, a version that crashes its sandbox, hits a limit, or
   * fails `maxFailures` sessions within `probationMs` is replaced by the
   * previous one. On by default.
   */
  autoRollback?: { enabled?: boolean; probationMs?: number; maxFailures?: number };
  /** Quiet time after the last change in a plugin folder before it is reloaded, in ms. Default 300. */
  watchDebounceMs?: number;
  /** Log level of the manager's pino logger, or false for none. Default `info`. */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | false;
  /** Where the log lines (JSON, one per line) go. Default: stderr. */
  logDestination?: { write(line: string): void };
  /**
   * The state store: a `postgres://` address makes this node one of a
   * cluster sharing that database (env DATABRIDGE_STORE). Default: SQLite,
   * `<dataDir>/state.db`.
   */
  store?: string;
  /** How often a cluster node tells the others it is alive, in ms; 0 for none (a one-shot command is no member). Default 5000. */
  heartbeatMs?: number;
  /**
   * A look that leaves no trace, for read-only commands (`plugin list`,
   * `validate`): no data or plugin directory is made, and a state database
   * that does not exist is read as an empty one, in memory. Default false.
   */
  readOnly?: boolean;
}

export interface PluginManagerConfig {
  pluginDir: string;
  dataDir: string;
  autoLoad: boolean;
  watchChanges: boolean;
  allowUnsigned: boolean;
  trustedPublishers: string[];
  requireChecksum: boolean;
  monitorInterval: number;
  defaultLimits: ResourceLimits;
  builtins: boolean;
  scanners: ScannerHook[];
  bundleLimits: BundleLimits;
  inlinePlugins: string[];
  workerPlugins: string[];
  allowWeakIsolation: boolean;
  sandboxUid: number;
  /** @internal */
  confinementReport: ConfinementReport | null;
  autoRollback: { enabled: boolean; probationMs: number; maxFailures: number };
  watchDebounceMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | false;
  logDestination: { write(line: string): void } | undefined;
  /** A postgres:// address, or null for SQLite in the data directory. */
  store: string | null;
  heartbeatMs: number;
  readOnly: boolean;
}

// the same bounds as a namespace's limits over the API (LIMIT_MAXIMA)
const limitsSchema = limitsJsonSchema();

const trustList = { type: 'array', items: { type: 'string', pattern: TRUST_PATTERN } };

const optionsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    pluginDir: { type: 'string', minLength: 1 },
    dataDir: { type: 'string', minLength: 1 },
    autoLoad: { type: 'boolean' },
    watchChanges: { type: 'boolean' },
    allowUnsigned: { type: 'boolean' },
    trustedPublishers: { type: 'array', items: { type: 'string', minLength: 1 } },
    requireChecksum: { type: 'boolean' },
    monitorInterval: { type: 'integer', minimum: 100, maximum: 3_600_000 },
    defaultLimits: limitsSchema,
    builtins: { type: 'boolean' },
    scanners: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1 },
          command: { type: 'array', minItems: 1, items: { type: 'string' } },
          scan: {},
          timeoutMs: { type: 'integer', minimum: 1 },
        },
      },
    },
    bundleLimits: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(
        Object.keys(DEFAULT_BUNDLE_LIMITS).map((k) => [k, { type: 'integer', minimum: 1 }]),
      ),
    },
    watchDebounceMs: { type: 'integer', minimum: 0, maximum: 60_000 },
    inlinePlugins: trustList,
    workerPlugins: trustList,
    allowWeakIsolation: { type: 'boolean' },
    sandboxUid: { type: 'integer', minimum: 1, maximum: 4294967294 },
    confinementReport: {
      type: 'object',
      required: ['bwrap', 'cgroup', 'prlimit', 'level', 'missing'],
      properties: {
        level: { enum: ['full', 'partial', 'none'] },
        missing: { type: 'array', items: { type: 'string' } },
      },
    },
    autoRollback: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        probationMs: { type: 'integer', minimum: 0 },
        maxFailures: { type: 'integer', minimum: 1 },
      },
    },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', false] },
    logDestination: { type: 'object', required: ['write'] },
    store: { type: 'string' },
    heartbeatMs: { anyOf: [{ const: 0 }, { type: 'integer', minimum: 100, maximum: 600_000 }] },
    readOnly: { type: 'boolean' },
  },
};

const validateOptions = new Ajv({ allErrors: true }).compile(optionsSchema);

/** One problem with one configuration field. */
export interface ConfigProblem {
  field: string;
  message: string;
}

/**
 * Checks options and fills in the defaults; throws CONFIG_INVALID listing
 * every bad field.
 */
export function resolveConfig(
  options: PluginManagerOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): PluginManagerConfig {
  if (!validateOptions(options)) {
    const problems: ConfigProblem[] = (validateOptions.errors ?? []).map((e) => {
      const base = e.instancePath.slice(1).replaceAll('/', '.');
      if (e.keyword === 'additionalProperties') {
        const extra = String(e.params.additionalProperty);
        return { field: base ? `${base}.${extra}` : extra, message: 'is not a known option' };
      }
      return { field: base || '(options)', message: e.message ?? 'is invalid' };
    });
    const summary = problems.map((p) => `${p.field} ${p.message}`).join('; ');
    throw createError('CONFIG_INVALID', { summary }, { details: { problems } });
  }
  const store = options.store ?? (env.DATABRIDGE_STORE || undefined);
  if (store !== undefined && !/^(postgres|postgresql):\/\/./.test(store)) {
    const problems = [
      { field: 'store', message: 'must be a postgres:// address (SQLite in the data directory is the default)' },
    ];
    throw createError('CONFIG_INVALID', { summary: `store ${problems[0]!.message}` }, { details: { problems } });
  }
  return {
    pluginDir: resolve(options.pluginDir ?? env.DATABRIDGE_PLUGIN_DIR ?? 'plugins'),
    dataDir: resolve(options.dataDir ?? env.DATABRIDGE_DATA_DIR ?? 'data'),
    autoLoad: options.autoLoad ?? true,
    watchChanges: options.watchChanges ?? false,
    allowUnsigned: options.allowUnsigned ?? false,
    trustedPublishers: [...(options.trustedPublishers ?? [])],
    requireChecksum: options.requireChecksum ?? true,
    monitorInterval: options.monitorInterval ?? 5000,
    defaultLimits: { ...DEFAULT_LIMITS, ...options.defaultLimits },
    builtins: options.builtins ?? true,
    scanners: [...(options.scanners ?? [])],
    bundleLimits: { ...DEFAULT_BUNDLE_LIMITS, ...options.bundleLimits },
    watchDebounceMs: options.watchDebounceMs ?? 300,
    inlinePlugins: [...(options.inlinePlugins ?? envList(env, 'DATABRIDGE_INLINE_PLUGINS', 'inlinePlugins'))],
    workerPlugins: [...(options.workerPlugins ?? envList(env, 'DATABRIDGE_WORKER_PLUGINS', 'workerPlugins'))],
    allowWeakIsolation: options.allowWeakIsolation ?? envFlag(env, 'DATABRIDGE_ALLOW_WEAK_ISOLATION'),
    sandboxUid: options.sandboxUid ?? envUid(env, 'DATABRIDGE_SANDBOX_UID'),
    confinementReport: options.confinementReport ?? null,
    autoRollback: {
      enabled: options.autoRollback?.enabled ?? true,
      probationMs: options.autoRollback?.probationMs ?? 120_000,
      maxFailures: options.autoRollback?.maxFailures ?? 3,
    },
    logLevel: options.logLevel ?? 'info',
    logDestination: options.logDestination,
    store: store ?? null,
    heartbeatMs: options.heartbeatMs ?? 5000,
    readOnly: options.readOnly ?? false,
  };
}

/** A comma-separated list of trust patterns from the environment; a bad entry is CONFIG_INVALID naming the variable. */
function envList(env: NodeJS.ProcessEnv, name: string, field: string): string[] {
  const items = (env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.find((i) => !new RegExp(TRUST_PATTERN).test(i));
  if (bad !== undefined) {
    const problems = [{ field, message: `${name} holds "${bad}", which is not a plugin id, prefix.* or *` }];
    throw createError('CONFIG_INVALID', { summary: `${field} ${problems[0]!.message}` }, { details: { problems } });
  }
  return items;
}

/** A uid from the environment (65534 when unset); not a uid other than root is CONFIG_INVALID. */
function envUid(env: NodeJS.ProcessEnv, name: string): number {
  const text = (env[name] ?? '').trim();
  if (!text) return 65534;
  const uid = Number(text);
  if (!Number.isInteger(uid) || uid < 1 || uid > 4294967294) {
    const problems = [
      { field: 'sandboxUid', message: `${name} holds "${text}", which is not a uid other than root (0)` },
    ];
    throw createError('CONFIG_INVALID', { summary: `sandboxUid ${problems[0]!.message}` }, { details: { problems } });
  }
  return uid;
}

function envFlag(env: NodeJS.ProcessEnv, name: string): boolean {
  return ['1', 'true', 'yes'].includes((env[name] ?? '').trim().toLowerCase());
}
