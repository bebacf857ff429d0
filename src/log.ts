/**
 * Structured logs (pino), on stderr so that a command's stdout stays its
 * output. The plugin id goes in a field, never in the message.
 */

import { type Logger as PinoLogger, pino } from 'pino';
import type { Logger } from './sdk/index.ts';

export type { PinoLogger };

export function createLogger(level: string | false = 'info', destination?: { write(line: string): void }): PinoLogger {
  if (level === false) return pino({ enabled: false });
  return pino({ level, base: { pid: process.pid } }, destination ?? pino.destination({ fd: 2, sync: true }));
}

/** The SDK's logger over a pino child; fields come after the message as pino wants them first. */
export function toSdkLogger(log: PinoLogger): Logger {
  return {
    debug: (message, fields) => log.debug(fields ?? {}, message),
    info: (message, fields) => log.info(fields ?? {}, message),
    warn: (message, fields) => log.warn(fields ?? {}, message),
    error: (message, fields) => log.error(fields ?? {}, message),
  };
}
