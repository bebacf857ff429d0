/**
 * Resource limits of a namespace, and how a plugin's request narrows them.
 */

/** Limits a namespace holds its plugins to. Every field is optional: absent means no limit. */
export interface ResourceLimits {
  /** Heap cap of the sandbox, in MiB. */
  maxMemoryMB?: number;
  /** CPU share over the monitoring window, in percent of one core. */
  maxCPUPercent?: number;
  /** Tasks in flight at once in the namespace. */
  maxConcurrentTasks?: number;
  /** Open file descriptors. */
  maxFileHandles?: number;
  /** Deadline of one task, in milliseconds. */
  maxExecutionMS?: number;
}

export const LIMIT_KEYS = [
  'maxMemoryMB',
  'maxCPUPercent',
  'maxConcurrentTasks',
  'maxFileHandles',
  'maxExecutionMS',
] as const satisfies readonly (keyof ResourceLimits)[];

/** What a namespace gets when nobody says otherwise. */
export const DEFAULT_LIMITS: Readonly<Required<ResourceLimits>> = Object.freeze({
  maxMemoryMB: 256,
  maxCPUPercent: 100,
  maxConcurrentTasks: 4,
  maxFileHandles: 256,
  maxExecutionMS: 30_000,
});

/**
 * The limits a plugin runs under: the namespace's, narrowed (never widened)
 * by what its manifest asks for.
 */
export function narrowLimits(namespace: ResourceLimits, requested: ResourceLimits = {}): ResourceLimits {
  const out: ResourceLimits = { ...namespace };
  for (const key of LIMIT_KEYS) {
    const asked = requested[key];
    if (asked === undefined) continue;
    const held = namespace[key];
    out[key] = held === undefined ? asked : Math.min(held, asked);
  }
  return out;
}
