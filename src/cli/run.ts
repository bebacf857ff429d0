/**
 * `databridge run <flow.json>`: runs a flow headless until its sources are
 * exhausted (nothing moved for --idle), --duration passes, or Ctrl-C. Queued
 * FlowFiles stay in the repository; the next run on the same data directory
 * resumes them.
 */

import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { createError } from '../errors.ts';
import { createFlowController, type FlowStats } from '../flow/controller.ts';
import { type FlowFinding, loadFlow, readFlowFile } from '../flow/flow-definition.ts';
import { createPluginManager, type PluginManager } from '../plugin/manager.ts';
import { parseDuration } from '../sdk/index.ts';
import { acquireDataDirLock } from '../store/lock.ts';
import { managerOptions, print, type StateOptions, table, terminalSafe, withStateOptions } from './common.ts';
import { applyConfigNamespaces } from './config-file.ts';
import { hostLogOptions, logLinesWritten } from './logs.ts';
import { dataDirOf, WAIT_FOR_CLI_MS } from './remote.ts';

interface RunOptions extends StateOptions {
  duration?: string;
  idle: string;
  memory?: boolean;
}

function durationOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0)
    throw createError('USAGE', { message: `--${name} must be a duration such as 10s, not "${value}"` });
  return ms;
}

function printFindings(findings: readonly FlowFinding[]): void {
  for (const f of findings)
    process.stderr.write(terminalSafe(`${f.severity} ${f.code} ${f.pointer || '/'}: ${f.message}\n`));
}

export function registerRun(program: Command): void {
  withStateOptions(
    program
      .command('run')
      .description('run a flow headless; stops when its sources are exhausted, after --duration, or on Ctrl-C')
      .argument('<flow>', 'the flow file (JSON; see schemas/flow.schema.json)')
      .option('--duration <time>', 'stop after this long (e.g. 30s, 5 min)')
      .option('--idle <time>', 'stop once nothing has moved for this long', '1s')
      .option('--memory', 'keep FlowFiles in memory only (nothing survives the run)'),
  ).action(async (file: string, opts: RunOptions) => {
    const durationMs = durationOption('duration', opts.duration);
    const idleMs = durationOption('idle', opts.idle)!;
    const definition = readFlowFile(file);
    // one writer per data directory: the repository and the state are this run's until it ends
    const lock = await acquireDataDirLock(dataDirOf(opts), { command: 'run', waitForCliMs: WAIT_FOR_CLI_MS });
    let manager: PluginManager;
    let controller: Awaited<ReturnType<typeof createFlowController>>;
    try {
      // the flow's logs (LogAttribute's lines, a plugin's) are what a run shows: info unless --log-level says otherwise
      manager = await createPluginManager(managerOptions(opts, hostLogOptions()));
    } catch (err) {
      lock.release();
      throw err;
    }
    try {
      for (const note of await applyConfigNamespaces(manager)) if (!opts.json) process.stderr.write(`${note}\n`);
      controller = await createFlowController({ manager, repository: opts.memory ? 'memory' : 'durable' });
    } catch (err) {
      await manager.shutdown();
      lock.release();
      throw err;
    }
    let stoppedBy: 'idle' | 'duration' | 'signal' = 'idle';
    const started = Date.now();
    let resumed = 0;
    try {
      // a refused flow's findings are printed once, by the CLI's failure report
      const findings = await loadFlow(controller, definition, { baseDir: dirname(resolve(file)) });
      if (!opts.json) printFindings(findings);
      resumed = controller.queuedCount();
      if (resumed > 0 && !opts.json) process.stderr.write(`resuming ${resumed} FlowFiles queued by an earlier run\n`);
      await controller.startAll();
      stoppedBy = await waitForEnd(controller, durationMs, idleMs, opts.json ? undefined : progressPrinter());
    } finally {
      await controller.close();
      await manager.shutdown();
      lock.release();
    }
    const stats = controller.stats();
    const summary = {
      processors: Object.fromEntries(
        Object.entries(stats.processors).map(([id, p]) => [
          id,
          {
            type: p.type,
            in: p.in,
            out: p.out,
            bytesIn: p.bytesIn,
            bytesOut: p.bytesOut,
            tasks: p.tasks,
            errors: p.errors,
          },
        ]),
      ),
      connections: stats.connections.map((c) => ({
        source: c.source,
        relationship: c.relationship,
        destination: c.destination,
        queued: c.queued,
        queuedBytes: c.queuedBytes,
      })),
      reportingTasks: Object.fromEntries(
        stats.reportingTasks.map((r) => [
          r.id,
          { type: r.type, runs: r.runs, errors: r.errors, lastError: r.lastError },
        ]),
      ),
      alerts: manager
        .alerts()
        .map((a) => ({ code: a.code, plugin: a.plugin, processor: a.processor, message: a.message, at: a.at })),
      durationMs: Date.now() - started,
      stoppedBy,
      resumed,
      orphaned: stats.orphaned,
    };
    print(opts.json, summary, () => summaryText(stats, summary.alerts.length, stoppedBy, summary.durationMs));
    if (stoppedBy === 'signal') process.exitCode = 130;
  });
}

function summaryText(stats: FlowStats, alerts: number, stoppedBy: string, ms: number): string {
  const rows = Object.values(stats.processors).map((p) => [
    p.id,
    p.type,
    String(p.in),
    String(p.out),
    String(p.tasks),
    String(p.errors),
  ]);
  const queued = stats.connections.filter((c) => c.queued > 0);
  return [
    `Stopped (${stoppedBy === 'idle' ? 'sources exhausted' : stoppedBy === 'duration' ? '--duration reached' : 'interrupted'}) after ${(ms / 1000).toFixed(1)} s.`,
    table(['PROCESSOR', 'TYPE', 'IN', 'OUT', 'TASKS', 'ERRORS'], rows),
    ...stats.reportingTasks.map(
      (r) => `Reporting task ${r.id} (${r.type}): ran ${r.runs} time(s)${r.errors ? `, ${r.errors} failed` : ''}.`,
    ),
    queued.length
      ? `Still queued (the next run resumes them): ${queued.map((c) => `${c.source} → ${c.destination}: ${c.queued}`).join(', ')}`
      : 'Nothing left queued.',
    alerts ? `${alerts} alert(s); run with --json to see them.` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

function progressPrinter(): ((stats: FlowStats) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let lines = 0;
  let logged = logLinesWritten();
  return (stats) => {
    const rows = Object.values(stats.processors).map(
      (p) =>
        `  ${p.id.padEnd(16)} in ${String(p.in).padStart(9)}  out ${String(p.out).padStart(9)}  errors ${p.errors}`,
    );
    // log lines written since the last table stay: the table is drawn again below them
    const redraw = lines > 0 && logLinesWritten() === logged;
    process.stderr.write(`${redraw ? `\x1b[${lines}A\x1b[J` : ''}${rows.join('\n')}\n`);
    lines = rows.length;
    logged = logLinesWritten();
  };
}

function waitForEnd(
  controller: Awaited<ReturnType<typeof createFlowController>>,
  durationMs: number | undefined,
  idleMs: number,
  progress: ((stats: FlowStats) => void) | undefined,
): Promise<'idle' | 'duration' | 'signal'> {
  const started = Date.now();
  return new Promise((resolve) => {
    let lastProgress = 0;
    const finish = (why: 'idle' | 'duration' | 'signal') => {
      clearInterval(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      progress?.(controller.stats());
      resolve(why);
    };
    const onSignal = () => {
      // a second Ctrl-C while stopping ends at once; the journal keeps the queues
      process.once('SIGINT', () => process.exit(130));
      finish('signal');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const timer = setInterval(() => {
      const now = Date.now();
      if (progress && now - lastProgress >= 500) {
        lastProgress = now;
        progress(controller.stats());
      }
      if (durationMs !== undefined && now - started >= durationMs) finish('duration');
      else if (durationMs === undefined && now - controller.lastActivity >= idleMs && controller.isQuiet())
        finish('idle');
    }, 50);
  });
}
