/**
 * Placing a processor: made by type through the host, its properties
 * migrated to its plugin's version and given their defaults, then checked
 * (its own validate(), its relationships, the controller services it
 * names), with its schedule read. Bad configuration becomes findings; a bad
 * schedule is a USAGE error.
 */

import { createError } from '../errors.ts';
import { toSdkLogger } from '../log.ts';
import { validateProperties, withDefaults } from '../session/properties.ts';
import { durationMs, type ProcessorConfig } from './flow-config.ts';
import type { FlowHost, ProcessorHandle } from './host.ts';
import { describeMigrations, migrateProperties } from './migrations.ts';
import { ProcessorNode } from './processor-node.ts';
import type { ServiceNode } from './services.ts';

export interface ProcessorPlacement {
  host: FlowHost;
  /** The flow's controller services, by id. */
  services: ReadonlyMap<string, ServiceNode>;
  /** Told what the property migrations changed, when any applied. */
  migrated: (what: string) => void;
  /** Told the controller services the processor names and may use. */
  uses: (ids: string[]) => void;
}

/** A fresh processor of a type, as the flow holds it: its host's handle on the instance the registry made. */
export function createHandle(host: FlowHost, type: string): { handle: ProcessorHandle; pluginId: string } {
  const { instance, pluginId } = host.registry.createProcessor(type);
  return { handle: host.processorHandle(instance), pluginId };
}

export function buildProcessorNode(
  type: string,
  config: ProcessorConfig,
  placement: ProcessorPlacement,
): ProcessorNode {
  const { host, services } = placement;
  const { handle: instance, pluginId } = createHandle(host, type);
  const info = instance.getInfo();
  const pluginVersion = host.registry.get(pluginId).version;
  const migration = migrateProperties(config.properties ?? {}, info.migrations, config.version, pluginVersion);
  if (migration.applied.length) {
    placement.migrated(describeMigrations(config.version!, pluginVersion, migration.applied));
  }
  const properties = withDefaults(info.properties, migration.properties);
  const findings = validateProperties(info.properties, properties, { dynamicProperties: info.dynamicProperties });
  const uses: string[] = [];
  for (const spec of info.properties) {
    const value = properties[spec.name];
    if (spec.type !== 'controllerService' || !value) continue;
    const service = services.get(value);
    const problem = !service
      ? `names controller service "${value}", which this flow does not have`
      : service.sandboxed !== (instance.mode !== 'inline') || (service.sandboxed && service.pluginId !== pluginId)
        ? `names controller service "${value}" of plugin ${service.pluginId}, which a processor of ${pluginId} cannot reach: a sandboxed plugin's processors use the services of their own plugin, inline processors those of inline plugins`
        : null;
    if (problem) findings.push({ property: spec.name, message: problem });
    else if (service!.findings.length) {
      findings.push({ property: spec.name, message: `names controller service "${value}", which is not valid` });
    } else uses.push(value);
  }
  placement.uses(uses);
  try {
    findings.push(...(instance.validate?.(properties) ?? []));
  } catch (err) {
    findings.push({ message: `validate() threw: ${(err as Error).message}` });
  }
  let specs = info.relationships;
  try {
    if (instance.getRelationships) specs = instance.getRelationships(properties);
  } catch (err) {
    findings.push({ message: `getRelationships() threw: ${(err as Error).message}` });
  }
  const relationships = new Set(specs.map((r) => r.name));
  const autoTerminate = new Set(config.autoTerminate ?? []);
  for (const r of specs) if (r.autoTerminateByDefault) autoTerminate.add(r.name);
  for (const r of config.autoTerminate ?? []) {
    if (!relationships.has(r)) findings.push({ message: `auto-terminated relationship "${r}" is not declared` });
  }
  const schedule = config.schedule ?? {};
  const positive = (n: number | undefined, fallback: number, what: string) => {
    if (n === undefined) return fallback;
    if (!Number.isInteger(n) || n < 1) throw createError('USAGE', { message: `${what} must be a positive integer` });
    return n;
  };
  const log = host.log.child({ plugin: pluginId, processor: config.id });
  return new ProcessorNode({
    id: config.id,
    type,
    name: config.name ?? config.id,
    pluginId,
    processor: instance,
    info,
    properties,
    relationships,
    autoTerminate,
    periodMs: durationMs(schedule.period, 0, 'schedule.period'),
    concurrentTasks: positive(schedule.concurrentTasks, 1, 'schedule.concurrentTasks'),
    batchSize: positive(schedule.batchSize, info.defaultBatchSize ?? 100, 'schedule.batchSize'),
    penaltyMs: durationMs(config.penaltyDuration, 30_000, 'penaltyDuration'),
    yieldMs: durationMs(config.yieldDuration, 1000, 'yieldDuration'),
    findings,
    logger: toSdkLogger(log),
    services: (serviceId) => {
      const service = uses.includes(serviceId) ? services.get(serviceId) : undefined;
      if (!service) throw new Error(`processor ${config.id} names no controller service "${serviceId}"`);
      if (service.users === 0) throw new Error(`controller service "${serviceId}" is not enabled`);
      return service.instance;
    },
  });
}
