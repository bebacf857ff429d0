/**
 * What every command shares: the state and policy options, output in text
 * or JSON, and the mapping of failures to exit codes (0 ok, 1 refused,
 * 2 bad usage).
 */

import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { DataBridgeError } from '../errors.ts';
import type { PluginManagerOptions } from '../plugin/config.ts';
import { createPluginManager, type PluginManager } from '../plugin/manager.ts';
import { configManagerOptions } from './config-file.ts';
import { commandLogOptions } from './logs.ts';
import { jsonSafe, oneLine, terminalSafe } from './terminal.ts';

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

/** Options of every command that touches plugins or state. */
export interface StateOptions {
  dataDir?: string;
  pluginDir?: string;
  allowUnsigned?: boolean;
  trustedPublisher?: string[];
  inlinePlugin?: string[];
  workerPlugin?: string[];
  allowWeakIsolation?: boolean;
  sandboxUid?: string;
  store?: string;
  json?: boolean;
}

/** Adds `--data-dir`, `--plugin-dir`, the policy flags and `--json`. */
export function withStateOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'state directory (env DATABRIDGE_DATA_DIR)', process.env.DATABRIDGE_DATA_DIR ?? 'data')
    .option(
      '--plugin-dir <dir>',
      'plugin directory (env DATABRIDGE_PLUGIN_DIR)',
      process.env.DATABRIDGE_PLUGIN_DIR ?? 'plugins',
    )
    .option(
      '--store <url>',
      'the state store: a postgres:// address makes this node one of a cluster sharing it (env DATABRIDGE_STORE); default SQLite in the data directory',
      process.env.DATABRIDGE_STORE,
    )
    .option('--allow-unsigned', 'accept plugins without a signature (checksums still apply)')
    .option('--trusted-publisher <name>', 'accept only these publishers’ keys (repeatable)', collect, [])
    .option(
      '--worker-plugin <id>',
      'trust this external plugin to run in a worker thread: not a security boundary (repeatable or comma-separated; acme.* and * match many; env DATABRIDGE_WORKER_PLUGINS)',
      collectList,
    )
    .option(
      '--inline-plugin <id>',
      'trust this external plugin to run inline, on the host’s thread, unsandboxed (repeatable or comma-separated; acme.* and * match many; env DATABRIDGE_INLINE_PLUGINS)',
      collectList,
    )
    .option(
      '--allow-weak-isolation',
      'where this host cannot confine a process sandbox fully (no bubblewrap, no cgroups), run plugins with what holds instead of refusing them (env DATABRIDGE_ALLOW_WEAK_ISOLATION=1)',
    )
    .option(
      '--sandbox-uid <uid>',
      'when DataBridge runs as root, the host uid a process sandbox runs as (never root; it must read DataBridge’s files and write the folders plugins declare writable; default 65534; env DATABRIDGE_SANDBOX_UID)',
    )
    .option('--json', 'machine-readable output');
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A repeatable flag whose values may also be comma-separated; undefined when not given, so the environment applies. */
function collectList(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

/**
 * The manager's options from a command's flags (and the environment and
 * configuration file behind them). Logs are a one-shot command's: kept back
 * and summarised; serve and run pass `hostLogOptions()` in `extra`.
 */
export function managerOptions(opts: StateOptions, extra: PluginManagerOptions = {}): PluginManagerOptions {
  return {
    ...configManagerOptions(),
    dataDir: opts.dataDir,
    pluginDir: opts.pluginDir,
    allowUnsigned: opts.allowUnsigned ?? false,
    trustedPublishers: opts.trustedPublisher ?? [],
    // unset flags leave the lists and the weak-isolation switch to the environment (config.ts reads it)
    ...(opts.inlinePlugin ? { inlinePlugins: opts.inlinePlugin } : {}),
    ...(opts.workerPlugin ? { workerPlugins: opts.workerPlugin } : {}),
    ...(opts.allowWeakIsolation ? { allowWeakIsolation: true } : {}),
    ...(opts.sandboxUid !== undefined ? { sandboxUid: Number(opts.sandboxUid) } : {}),
    ...(opts.store ? { store: opts.store } : {}),
    ...commandLogOptions(),
    ...extra,
  };
}

/** Runs `fn` with a manager that is shut down afterwards, whatever happens. */
export async function withManager<T>(
  opts: StateOptions,
  fn: (manager: PluginManager) => Promise<T>,
  extra: PluginManagerOptions = {},
): Promise<T> {
  // a one-shot command shares its changes with a cluster but is not one of its nodes
  const manager = await createPluginManager(managerOptions(opts, { heartbeatMs: 0, ...extra }));
  try {
    return await fn(manager);
  } finally {
    await manager.shutdown();
  }
}

/** The audit log's name for whoever runs the CLI. */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

/** Prints data as JSON (one document) or as text lines. */
export function print(json: boolean | undefined, data: unknown, text: () => string): void {
  process.stdout.write(json ? `${jsonSafe(JSON.stringify(data, null, 2))}\n` : `${terminalSafe(text())}\n`);
}

export { oneLine, terminalSafe } from './terminal.ts';

export interface FindingLike {
  code: string;
  severity: string;
  path?: string | null;
  pointer?: string | null;
  message: string;
}

/** One line per finding: `error CHECKSUM_MISMATCH index.js: …`. */
export function formatFindings(findings: readonly FindingLike[]): string {
  return findings
    .map((f) => {
      const where = [f.path, f.pointer].filter(Boolean).join('#');
      return `${f.severity} ${f.code}${where ? ` ${oneLine(where)}` : ''}: ${oneLine(f.message)}\n`;
    })
    .join('');
}

/** Pads columns for a plain-text table. */
export function table(headers: readonly string[], rawRows: readonly (readonly string[])[]): string {
  // a cell is one line whatever it holds (a description from a catalog could otherwise add a row)
  const rows = rawRows.map((r) => r.map(oneLine));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/**
 * Turns a failure into output and an exit code: a coded error is a refusal
 * (1) or bad usage (2); anything else is reported without a stack trace
 * unless DATABRIDGE_DEBUG is set.
 */
export function reportFailure(err: unknown, json: boolean | undefined): number {
  if (err instanceof DataBridgeError) {
    if (json) process.stdout.write(`${jsonSafe(JSON.stringify({ error: err.toJSON() }, null, 2))}\n`);
    else {
      const findings = (err.details as { findings?: FindingLike[] } | null)?.findings;
      if (Array.isArray(findings)) process.stderr.write(terminalSafe(formatFindings(findings)));
      process.stderr.write(`error ${err.code}: ${oneLine(err.message)}\n`);
    }
    return err.code === 'USAGE' || err.code === 'CONFIG_INVALID' ? EXIT_USAGE : EXIT_REFUSED;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`error: ${oneLine(message)}\n`);
  if (process.env.DATABRIDGE_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return EXIT_REFUSED;
}
