/**
 * Resource limits of a namespace, and how a plugin's request narrows them.
 */

/** Limits a namespace holds its plugins to. Every field is optional: absent means no limit. */
export interface ResourceLimits {
  /** Memory cap of the sandbox, in MiB: a process sandbox's whole memory (its cgroup), a worker's V8 heap. */
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

/**
 * The most each limit may be set to (a namespace, the default limits): past
 * these a number means nothing a host can hold (64 GiB of heap, 128 cores,
 * a day per task), and a huge one (1e308) is a mistake, not a wish.
 */
export const LIMIT_MAXIMA: Readonly<Required<ResourceLimits>> = Object.freeze({
  maxMemoryMB: 65_536,
  maxCPUPercent: 12_800,
  maxConcurrentTasks: 1024,
  maxFileHandles: 65_536,
  maxExecutionMS: 86_400_000,
});

const LIMIT_DESCRIPTIONS: Readonly<Record<keyof ResourceLimits, string>> = {
  maxMemoryMB: 'Heap (and, in a process sandbox, cgroup memory) cap, in MiB',
  maxCPUPercent: 'CPU over the monitoring window, in percent of one core',
  maxConcurrentTasks: 'Tasks in flight at once in the namespace',
  maxFileHandles: 'Open file descriptors',
  maxExecutionMS: 'Deadline of one task, in milliseconds',
};

/** The JSON Schema of a limits object: integers from 1 to each limit's maximum; unknown keys refused. */
export function limitsJsonSchema() {
  return {
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(
      LIMIT_KEYS.map((k) => [
        k,
        {
          type: 'integer',
          minimum: 1,
          maximum: LIMIT_MAXIMA[k],
          description: `${LIMIT_DESCRIPTIONS[k]} (1 to ${LIMIT_MAXIMA[k]})`,
        },
      ]),
    ),
  } as const;
}

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
