/**
 * What a built-in processor is: a type name, a factory and static info, so
 * that registering one costs nothing (no import, no instance).
 */

import type { Processor, ProcessorInfo } from '../sdk/index.ts';

export interface BuiltInProcessor {
  type: string;
  info: ProcessorInfo;
  factory: () => Processor;
}

/** The plugin id a built-in processor is registered under. */
export function builtInPluginId(type: string): string {
  return `builtin.${type}`;
}
