/** `databridge namespace list|create|set|delete`: namespaces and the limits they hold their plugins to. */

import type { Command } from 'commander';
import { createError } from '../errors.ts';
import { LIMIT_MAXIMA, type ResourceLimits } from '../sandbox/limits.ts';
import type { NamespaceRecord } from '../store/types.ts';
import { cliActor, print, type StateOptions, table, withManager, withStateOptions } from './common.ts';
import { changeState, readState } from './remote.ts';

type LimitName = keyof ResourceLimits;
const LIMITS = Object.keys(LIMIT_MAXIMA) as LimitName[];

/** `maxMemoryMB` → `--max-memory-mb`. */
const flagOf = (name: LimitName): string =>
  `--${name
    .replace(/([a-z])([A-Z])/g, '$1-$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1-$2')
    .toLowerCase()}`;

const MEANING: Record<LimitName, string> = {
  maxMemoryMB: 'memory cap, in MiB',
  maxCPUPercent: 'CPU, in percent of one core',
  maxConcurrentTasks: 'tasks in flight at once',
  maxFileHandles: 'open files',
  maxExecutionMS: 'deadline of one task, in ms',
};
/** The camel-cased option commander makes of a flag. */
const optionKey = (name: LimitName): string =>
  flagOf(name)
    .slice(2)
    .replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

interface NamespaceOptions extends StateOptions {
  displayName?: string;
  [limit: string]: unknown;
}

function withLimitOptions(command: Command): Command {
  for (const name of LIMITS)
    command.option(`${flagOf(name)} <n>`, `${MEANING[name]} (${name}): 1 to ${LIMIT_MAXIMA[name]}`);
  return command.option('--display-name <text>', 'the name people see (default: the name)');
}

/** The limits given as flags; USAGE for one that is not a whole number. */
function limitsOf(opts: NamespaceOptions): ResourceLimits | undefined {
  const limits: ResourceLimits = {};
  for (const name of LIMITS) {
    const given = opts[optionKey(name)];
    if (given === undefined) continue;
    const n = Number(given);
    if (!/^\d+$/.test(String(given)) || !Number.isSafeInteger(n))
      throw createError('USAGE', { message: `${flagOf(name)} must be a whole number, not "${String(given)}"` });
    limits[name] = n;
  }
  return Object.keys(limits).length ? limits : undefined;
}

function describe(n: NamespaceRecord): string {
  return `${n.name} (${n.displayName}): ${LIMITS.map((k) => `${k}=${n.limits[k] ?? '-'}`).join(' ')}`;
}

const path = (name: string) => `/api/namespaces/${encodeURIComponent(name)}`;

export function registerNamespace(program: Command): void {
  const namespace = program
    .command('namespace')
    .description('manage namespaces: the limits (memory, CPU, tasks, files, deadline) their plugins run under');

  withStateOptions(namespace.command('list').description('list namespaces with their limits')).action(
    async (opts: StateOptions) => {
      const list = await readState(opts, {
        server: async (client) => (await client.call<NamespaceRecord[]>('GET', '/api/namespaces')).body,
        local: () => withManager(opts, (m) => m.namespaces.list(), { autoLoad: false, readOnly: true }),
      });
      print(opts.json, list, () =>
        list.length
          ? table(
              ['NAME', 'DISPLAY NAME', ...LIMITS.map((k) => k.toUpperCase())],
              list.map((n) => [n.name, n.displayName, ...LIMITS.map((k) => String(n.limits[k] ?? '-'))]),
            )
          : 'No namespaces (plugins run under the default limits).',
      );
    },
  );

  withStateOptions(
    withLimitOptions(
      namespace
        .command('create')
        .description('make a namespace; limits not given take the default limits')
        .argument('<name>', 'lower-case letters, digits, "." and "-"; a plugin id names its own namespace'),
    ),
  ).action(async (name: string, opts: NamespaceOptions) => {
    const limits = limitsOf(opts);
    // a limit not given is the default one, never no limit at all (a namespace's missing limit is not held)
    const made = await changeState(opts, 'namespace create', {
      server: async (client) => {
        const { body } = await client.call<NamespaceRecord>('POST', '/api/namespaces', {
          json: { name, ...(opts.displayName !== undefined ? { displayName: opts.displayName } : {}) },
        });
        // made with the server's default limits; then the ones given
        if (!limits) return body;
        return (
          await client.call<NamespaceRecord>('PUT', path(name), { json: { limits: { ...body.limits, ...limits } } })
        ).body;
      },
      local: () =>
        withManager(
          opts,
          (m) =>
            m.namespaces.create(
              name,
              opts.displayName,
              limits ? { ...m.config.defaultLimits, ...limits } : undefined,
              cliActor(),
            ),
          { autoLoad: false },
        ),
    });
    print(opts.json, made, () => `created namespace ${describe(made)}`);
  });

  withStateOptions(
    withLimitOptions(
      namespace
        .command('set')
        .description('change a namespace’s limits or display name; limits not given keep their values')
        .argument('<name>', 'the namespace'),
    ),
  ).action(async (name: string, opts: NamespaceOptions) => {
    const limits = limitsOf(opts);
    if (!limits && opts.displayName === undefined)
      throw createError('USAGE', { message: `give a limit (${LIMITS.map(flagOf).join(', ')}) or --display-name` });
    const patch = (current: NamespaceRecord) => ({
      ...(opts.displayName !== undefined ? { displayName: opts.displayName } : {}),
      ...(limits ? { limits: { ...current.limits, ...limits } } : {}),
    });
    const updated = await changeState(opts, 'namespace set', {
      server: async (client) => {
        const { body: current } = await client.call<NamespaceRecord>('GET', path(name));
        return (await client.call<NamespaceRecord>('PUT', path(name), { json: patch(current) })).body;
      },
      local: () =>
        withManager(opts, async (m) => m.namespaces.update(name, patch(await m.namespaces.get(name)), cliActor()), {
          autoLoad: false,
        }),
    });
    print(opts.json, updated, () => `updated namespace ${describe(updated)}`);
  });

  withStateOptions(
    namespace
      .command('delete')
      .description('delete a namespace: its plugins run under the default limits')
      .argument('<name>', 'the namespace'),
  ).action(async (name: string, opts: StateOptions) => {
    await changeState(opts, 'namespace delete', {
      server: async (client) => {
        await client.call('DELETE', path(name));
      },
      local: () => withManager(opts, (m) => m.namespaces.delete(name, cliActor()), { autoLoad: false }),
    });
    print(opts.json, { deleted: name }, () => `deleted namespace ${name}`);
  });
}
