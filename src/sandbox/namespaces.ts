/**
 * Namespaces: named groups of plugins sharing resource limits. This module
 * keeps them (in the state store) and checks their limits; the sandboxes
 * enforce them.
 */

import { createError } from '../errors.ts';
import type { NamespaceRecord, StateStore } from '../store/types.ts';
import { LIMIT_KEYS, type ResourceLimits } from './limits.ts';

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

function checkLimits(limits: unknown): ResourceLimits {
  if (limits === null || typeof limits !== 'object' || Array.isArray(limits)) {
    throw createError('USAGE', { message: 'limits must be an object' });
  }
  const out: ResourceLimits = {};
  for (const [key, value] of Object.entries(limits)) {
    if (!(LIMIT_KEYS as readonly string[]).includes(key)) {
      throw createError('USAGE', { message: `"${key}" is not a limit (${LIMIT_KEYS.join(', ')})` });
    }
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw createError('USAGE', { message: `${key} must be a positive integer` });
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

  constructor(store: () => StateStore, defaults: () => ResourceLimits) {
    this.#store = store;
    this.#defaults = defaults;
  }

  async create(name: string, displayName?: string, limits?: ResourceLimits, actor = 'embed'): Promise<NamespaceRecord> {
    if (!NAME.test(name))
      throw createError('USAGE', { message: `namespace name "${name}" must be lower-case letters, digits and "-"` });
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
    return record;
  }

  async delete(name: string, actor = 'embed'): Promise<void> {
    if (!(await this.#store().deleteNamespace(name))) throw createError('NAMESPACE_NOT_FOUND', { name });
    await this.#store().appendAudit({ actor, action: 'namespace.delete', target: name, result: 'ok', details: null });
  }
}
