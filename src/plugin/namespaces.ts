/**
 * Namespaces: named groups of plugins sharing resource limits. This module
 * keeps them (in the state store) and checks their limits; the sandboxes
 * enforce them.
 */

import { createError } from '../errors.ts';
import { Limiter } from '../limiter.ts';
import { LIMIT_KEYS, LIMIT_MAXIMA, type ResourceLimits } from '../sandbox/limits.ts';
import type { NamespaceRecord, StateStore } from '../store/types.ts';

// plugin ids name their own namespaces by default, so dots are allowed
const NAME = /^[a-z0-9][a-z0-9.-]{0,127}$/;

function checkLimits(limits: unknown): ResourceLimits {
  if (limits === null || typeof limits !== 'object' || Array.isArray(limits)) {
    throw createError('USAGE', { message: 'limits must be an object' });
  }
  const out: ResourceLimits = {};
  for (const [key, value] of Object.entries(limits)) {
    if (!(LIMIT_KEYS as readonly string[]).includes(key)) {
      throw createError('USAGE', { message: `"${key}" is not a limit (${LIMIT_KEYS.join(', ')})` });
    }
    const max = LIMIT_MAXIMA[key as keyof ResourceLimits];
    if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max) {
      throw createError('USAGE', { message: `${key} must be an integer from 1 to ${max}` });
    }
    out[key as keyof ResourceLimits] = value as number;
  }
  return out;
}

/**
 * @example
 * await manager.namespaces.create('etl', 'ETL jobs', { maxMemoryMB: 128, maxExecutionMS: 5000 });
 */
export class Namespaces {
  readonly #store: () => StateStore;
  readonly #defaults: () => ResourceLimits;
  readonly #probe: (name: string) => NamespaceProbe;
  readonly #slots = new Map<string, { acquire: () => Promise<() => void> }>();
  readonly #changed: (name: string, limits: ResourceLimits) => void;

  constructor(
    store: () => StateStore,
    defaults: () => ResourceLimits,
    probe: (name: string) => NamespaceProbe = () => ({}),
    /** Told the limits a namespace has now (after create, update, or delete: the defaults). */
    changed: (name: string, limits: ResourceLimits) => void = () => {},
  ) {
    this.#store = store;
    this.#defaults = defaults;
    this.#probe = probe;
    this.#changed = changed;
  }

  async create(name: string, displayName?: string, limits?: ResourceLimits, actor = 'embed'): Promise<NamespaceRecord> {
    if (!NAME.test(name))
      throw createError('USAGE', {
        message: `namespace name "${name}" must be lower-case letters, digits, "." and "-"`,
      });
    const record = await this.#store().createNamespace(
      name,
      displayName ?? name,
      checkLimits(limits ?? this.#defaults()),
    );
    await this.#store().appendAudit({
      actor,
      action: 'namespace.create',
      target: name,
      result: 'ok',
      details: record.limits,
    });
    this.#changed(name, record.limits);
    return record;
  }

  list(): Promise<NamespaceRecord[]> {
    return this.#store().listNamespaces();
  }

  async get(name: string): Promise<NamespaceRecord> {
    const record = await this.#store().getNamespace(name);
    if (!record) throw createError('NAMESPACE_NOT_FOUND', { name });
    return record;
  }

  async update(
    name: string,
    patch: { displayName?: string; limits?: ResourceLimits },
    actor = 'embed',
  ): Promise<NamespaceRecord> {
    const record = await this.#store().updateNamespace(name, {
      displayName: patch.displayName,
      limits: patch.limits === undefined ? undefined : checkLimits(patch.limits),
    });
    await this.#store().appendAudit({
      actor,
      action: 'namespace.update',
      target: name,
      result: 'ok',
      details: record.limits,
    });
    this.#slots.delete(name);
    this.#changed(name, record.limits);
    return record;
  }

  /** The namespace as an object with `newResourceGuard()`. */
  async open(name: string): Promise<NamespaceHandle> {
    const record = await this.get(name);
    let slots = this.#slots.get(name);
    if (!slots) {
      const tasks = new Limiter(() => record.limits.maxConcurrentTasks ?? Number.POSITIVE_INFINITY);
      slots = { acquire: () => tasks.acquire() };
      this.#slots.set(name, slots);
    }
    return new NamespaceHandle(record, this.#probe(name), slots);
  }

  async delete(name: string, actor = 'embed'): Promise<void> {
    if (!(await this.#store().deleteNamespace(name))) throw createError('NAMESPACE_NOT_FOUND', { name });
    await this.#store().appendAudit({ actor, action: 'namespace.delete', target: name, result: 'ok', details: null });
    this.#slots.delete(name);
    this.#changed(name, this.#defaults());
  }
}

/** The latest usage of a namespace's sandbox, as the monitor saw it. */
export interface NamespaceProbe {
  acquire?: () => Promise<() => void>;
  latest?: () => { cpuPercent: number | null; memoryUsed: number | null; handles: number | null } | undefined;
}

/**
 * Holds one task slot of a namespace (shared with its sandbox's tasks) and
 * checks its limits on demand: for code that wants to keep to them itself.
 *
 * @example
 * const guard = await (await manager.namespaces.open('etl')).newResourceGuard(signal);
 * try { for (const part of parts) { guard.checkLimits(); await work(part); } } finally { guard.release(); }
 */
export class ResourceGuard {
  readonly #limits: ResourceLimits;
  readonly #signal: AbortSignal | undefined;
  readonly #probe: NamespaceProbe;
  readonly #release: () => void;
  readonly #started = performance.now();
  #released = false;

  constructor(limits: ResourceLimits, release: () => void, probe: NamespaceProbe, signal?: AbortSignal) {
    this.#limits = limits;
    this.#release = release;
    this.#probe = probe;
    this.#signal = signal;
  }

  /** Throws LIMIT_EXCEEDED when the task ran too long, was aborted, or its namespace is over a limit. */
  checkLimits(): void {
    const exceeded = (limit: string, value: number, max: number) =>
      createError('LIMIT_EXCEEDED', { limit, value, max });
    if (this.#released) throw createError('USAGE', { message: 'this guard was released' });
    if (this.#signal?.aborted)
      throw createError('LIMIT_EXCEEDED', { limit: 'aborted', value: 1, max: 0 }, { cause: this.#signal.reason });
    const elapsed = performance.now() - this.#started;
    if (this.#limits.maxExecutionMS !== undefined && elapsed > this.#limits.maxExecutionMS) {
      throw exceeded('maxExecutionMS', Math.round(elapsed), this.#limits.maxExecutionMS);
    }
    const sample = this.#probe.latest?.();
    if (!sample) return;
    if (
      this.#limits.maxMemoryMB !== undefined &&
      sample.memoryUsed !== null &&
      sample.memoryUsed > this.#limits.maxMemoryMB * 1024 * 1024
    ) {
      throw exceeded('maxMemoryMB', Math.round(sample.memoryUsed / 1024 / 1024), this.#limits.maxMemoryMB);
    }
    if (
      this.#limits.maxCPUPercent !== undefined &&
      sample.cpuPercent !== null &&
      sample.cpuPercent > this.#limits.maxCPUPercent
    ) {
      throw exceeded('maxCPUPercent', Math.round(sample.cpuPercent), this.#limits.maxCPUPercent);
    }
    if (
      this.#limits.maxFileHandles !== undefined &&
      sample.handles !== null &&
      sample.handles > this.#limits.maxFileHandles
    ) {
      throw exceeded('maxFileHandles', sample.handles, this.#limits.maxFileHandles);
    }
  }

  /** Gives the slot back. Safe to call twice. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#release();
  }
}

/** A namespace as code uses it. */
export class NamespaceHandle {
  readonly record: NamespaceRecord;
  readonly #probe: NamespaceProbe;
  readonly #slots: { acquire: () => Promise<() => void> };

  constructor(record: NamespaceRecord, probe: NamespaceProbe, slots: { acquire: () => Promise<() => void> }) {
    this.record = record;
    this.#probe = probe;
    this.#slots = slots;
  }

  /** Waits for a task slot (maxConcurrentTasks) and returns a guard holding it. */
  async newResourceGuard(signal?: AbortSignal): Promise<ResourceGuard> {
    const release = await (this.#probe.acquire ?? this.#slots.acquire)();
    return new ResourceGuard(this.record.limits, release, this.#probe, signal);
  }
}
