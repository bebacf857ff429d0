/**
 * The command line's logs: pretty one-line logs on a terminal and JSON lines
 * otherwise (or `--log-format`), at `--log-level`. A long-running command
 * (serve, run) writes the host's logs as they come; a one-shot command prints
 * its answer and keeps the host's logs back: after the answer, one summary
 * line says what went wrong (plugins that failed to load, other warnings),
 * and `--verbose` (or an explicit `--log-level`) prints the lines themselves.
 */

import { createError } from '../errors.ts';
import { oneLine } from './terminal.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What the global options, the environment and the config file said about logs. */
export interface LogSettings {
  /** Undefined: the command's default (serve and run: info). */
  level: LogLevel | undefined;
  format: LogFormat;
  /** Print a one-shot command's host logs instead of summarising them: --verbose, or --log-level on its command line. */
  verbose: boolean;
}

let settings: LogSettings = { level: undefined, format: defaultFormat(process.stderr.isTTY), verbose: false };
/** Lines a one-shot command kept back, as pino wrote them. */
let kept: Record<string, unknown>[] = [];
let written = 0;

/** Pretty on a terminal, JSON lines for programs (a pipe, a file, a log collector). */
export function defaultFormat(isTTY: boolean | undefined): LogFormat {
  return isTTY ? 'pretty' : 'json';
}

/** Checks a level or format given as `name` (a flag, a variable) and records the settings. */
export function setLogSettings(given: {
  level?: { value: string; name: string };
  format?: { value: string; name: string };
  verbose?: boolean;
}): void {
  const check = <T extends string>(g: { value: string; name: string } | undefined, allowed: readonly T[]) => {
    if (g === undefined) return undefined;
    if (!allowed.includes(g.value as T))
      throw createError('USAGE', { message: `${g.name} must be one of ${allowed.join(', ')}, not "${g.value}"` });
    return g.value as T;
  };
  settings = {
    level: check(given.level, LOG_LEVELS),
    format: check(given.format, LOG_FORMATS) ?? defaultFormat(process.stderr.isTTY),
    // a level from the environment or the file is the host's; one on the command line asks for the lines
    verbose: (given.verbose ?? false) || given.level?.name === '--log-level',
  };
  kept = [];
}

export function logSettings(): Readonly<LogSettings> {
  return settings;
}

/** How many log lines went to the terminal so far (run's progress table starts below them). */
export function logLinesWritten(): number {
  return written;
}

/** Where a long-running command's logs go: stderr, in the chosen format. */
function stderrSink(format: LogFormat): { write(line: string): void } {
  return {
    write(line: string) {
      written++;
      process.stderr.write(format === 'json' ? line : `${prettyLine(line)}\n`);
    },
  };
}

/** The manager's log options for serve and run: every line at the level (default info). */
export function hostLogOptions(): { logLevel: LogLevel; logDestination: { write(line: string): void } } {
  return { logLevel: settings.level ?? 'info', logDestination: stderrSink(settings.format) };
}

/**
 * The manager's log options for a one-shot command: with `--verbose` or a
 * level asked for, the lines at that level (default info); otherwise
 * warnings and errors are kept for {@link flushCommandLogs}.
 */
export function commandLogOptions(): { logLevel: LogLevel; logDestination: { write(line: string): void } } {
  if (settings.verbose) return hostLogOptions();
  // a level above warn (error, fatal) narrows what is summed up too
  const severe = settings.level === 'error' || settings.level === 'fatal';
  return {
    logLevel: severe ? settings.level! : 'warn',
    logDestination: {
      write(line: string) {
        try {
          kept.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          kept.push({ level: 40, msg: line.trim() });
        }
      },
    },
  };
}

/** After a one-shot command's answer: one line for what its host logged, if anything. */
export function flushCommandLogs(): void {
  if (kept.length === 0) return;
  const failed = kept.filter((r) => r.msg === 'plugin failed to load');
  const others = kept.length - failed.length;
  const parts: string[] = [];
  if (failed.length) {
    const which = failed
      .map((r) => `${String(r.plugin)}${Array.isArray(r.codes) && r.codes.length ? `: ${r.codes.join(', ')}` : ''}`)
      .join('; ');
    parts.push(`${failed.length} installed plugin${failed.length === 1 ? '' : 's'} failed to load (${which})`);
  }
  if (others) parts.push(`${others} ${failed.length ? 'other ' : ''}warning${others === 1 ? '' : 's'} from the host`);
  process.stderr.write(`note: ${parts.join('; ')}; --verbose shows the details\n`);
  kept = [];
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const OMITTED = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'v']);

/** `14:02:07 INFO  plugin loaded plugin=acme.upper version=1.2.0`: one pino JSON line for people. */
export function prettyLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const time = typeof record.time === 'number' ? new Date(record.time) : new Date();
  const clock = [time.getHours(), time.getMinutes(), time.getSeconds()]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
  const level = (LEVEL_NAMES[record.level as number] ?? String(record.level)).padEnd(5);
  const fields: string[] = [];
  const add = (key: string, value: unknown, depth: number) => {
    if (value === undefined) return;
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && depth < 2) {
      for (const [k, v] of Object.entries(value)) add(`${key}.${k}`, v, depth + 1);
      return;
    }
    fields.push(`${fieldKey(key)}=${fieldValue(value)}`);
  };
  for (const [key, value] of Object.entries(record)) if (!OMITTED.has(key)) add(key, value, 0);
  // one line whatever a message holds, and no control character reaches the terminal (an escape could rewrite lines)
  const msg = String(record.msg ?? '')
    .replace(/[\r\n]+/g, ' ')
    .replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  // a field value JSON-quotes control characters, but not the marks that reorder a line
  return oneLine(`${clock} ${level} ${msg}${fields.length ? ` ${fields.join(' ')}` : ''}`);
}

/** A field name as written: a plain name stays bare, anything else (spaces, `=`, control characters) is JSON-quoted. */
function fieldKey(key: string): string {
  return /^[\w.-]+$/.test(key) ? key : JSON.stringify(key);
}

/** A bare word stays bare; anything with spaces, quotes, `=` or control characters is JSON-quoted. */
function fieldValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=\p{Cc}]+$/u.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}
