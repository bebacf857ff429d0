/**
 * The private plugin host a test runner works in: a plugin manager of its
 * own in a temporary folder, with its log lines captured for `logs()`.
 * In-process (components registered from factories), or loaded from a
 * plugin folder, copied and signed with a throwaway key trusted for it.
 */

import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FlowController } from '../flow/controller.ts';
import { createPluginManager, type PluginManager } from '../plugin/manager.ts';
import { signPluginDir } from '../plugin/release.ts';
import { generateSigningKey, loadKey } from '../plugin/signing.ts';
import type { ControllerService, ReportingTask } from '../sdk/index.ts';

/** One line a component logged. */
export interface LogEntry {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  message: string;
  /** The fields it logged with, and the host's (`plugin`, `processor`, `reportingTask`, `service`). */
  fields: Record<string, unknown>;
}

const LEVELS: Record<number, LogEntry['level']> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

export interface PrivateHost {
  manager: PluginManager;
  logs(): LogEntry[];
  /** Closes the flow, the manager (and its sandboxes), and removes the folder. */
  close(flow: FlowController | null): Promise<void>;
}

function capture(): { destination: { write(line: string): void }; logs: () => LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    destination: {
      write(line: string) {
        try {
          const { level, msg, time: _t, pid: _p, hostname: _h, ...fields } = JSON.parse(line);
          entries.push({ level: LEVELS[level] ?? 'info', message: String(msg ?? ''), fields });
        } catch {
          // pino writes whole JSON lines; anything else is not a log entry
        }
      },
    },
    logs: () => [...entries],
  };
}

function host(manager: PluginManager, logs: () => LogEntry[], root: string): PrivateHost {
  return {
    manager,
    logs,
    async close(flow) {
      try {
        await flow?.close();
        await manager.shutdown();
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}

export async function inProcessHost(): Promise<PrivateHost> {
  const root = mkdtempSync(join(tmpdir(), 'databridge-testrunner-'));
  const { destination, logs } = capture();
  const manager = await createPluginManager({
    dataDir: join(root, 'data'),
    pluginDir: join(root, 'plugins'),
    logLevel: 'debug',
    logDestination: destination,
    autoLoad: false,
    monitorInterval: 60_000,
  });
  return host(manager, logs, root);
}

export async function pluginHost(dir: string, inline: boolean): Promise<PrivateHost> {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { id: string; publisher: string };
  const root = mkdtempSync(join(tmpdir(), 'databridge-testrunner-'));
  // as root, a process sandbox runs as another uid (65534), which must reach the plugin's folder: passing through, not listing
  chmodSync(root, 0o711);
  try {
    const copy = join(root, 'plugins', manifest.id);
    cpSync(dir, copy, {
      recursive: true,
      filter: (src) => !/[/\\](node_modules|\.git|src|test)$/.test(src) && !src.endsWith('signature.dsse.json'),
    });
    const key = generateSigningKey();
    await signPluginDir(copy, loadKey(key.privateKeyPem, 'private'));
    const dirs = { dataDir: join(root, 'data'), pluginDir: join(root, 'plugins') };
    const setup = await createPluginManager({ ...dirs, logLevel: false, autoLoad: false });
    await setup.trust.addKey({
      publisher: manifest.publisher,
      publicKeyPem: key.publicKeyPem,
      namespaces: [manifest.id],
    });
    await setup.shutdown();
    const { destination, logs } = capture();
    const manager = await createPluginManager({
      ...dirs,
      logLevel: 'debug',
      logDestination: destination,
      inlinePlugins: inline ? [manifest.id] : [],
      // the author's own code on the author's machine, which may have no bubblewrap (or be no Linux)
      allowWeakIsolation: true,
      monitorInterval: 60_000,
    });
    const plugin = manager.get(manifest.id);
    if (plugin.status !== 'active') {
      const findings = manager.validation(manifest.id).findings;
      await manager.shutdown();
      throw new Error(
        `${manifest.id} did not load (${plugin.statusReason ?? plugin.status}): ${findings.map((f) => `${f.code} ${f.message}`).join('; ')}`,
      );
    }
    return host(manager, logs, root);
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
}

let seq = 0;

/** Registers a component made by a factory as an inline plugin of its own; returns its type. */
function registerInline(
  manager: PluginManager,
  kind: 'controllerServices' | 'reportingTasks',
  factory: () => ControllerService | ReportingTask,
): string {
  const info = factory().getInfo();
  manager.registry.register({
    id: `test.${kind === 'controllerServices' ? 'service' : 'reporting'}-${++seq}`,
    name: info.name,
    version: info.version,
    type: kind === 'controllerServices' ? 'controller-service' : 'reporting-task',
    source: 'builtin',
    isolation: 'inline',
    [kind]: { [info.name]: { factory, info } },
  });
  return info.name;
}

export function registerService(manager: PluginManager, factory: () => ControllerService): string {
  return registerInline(manager, 'controllerServices', factory);
}

export function registerReportingTask(manager: PluginManager, factory: () => ReportingTask): string {
  return registerInline(manager, 'reportingTasks', factory);
}
