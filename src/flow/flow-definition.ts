/**
 * The flow file: JSON checked against schemas/flow.schema.json, then against
 * what is registered (types, relationships, properties). Every problem is a
 * finding with a JSON pointer, all reported at once.
 */

import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Ajv } from 'ajv';
import semver from 'semver';
import flowSchema from '../../schemas/flow.schema.json' with { type: 'json' };
import { createError, isDataBridgeError } from '../errors.ts';
import type { PropertySpec } from '../sdk/index.ts';
import {
  type ConnectionConfig,
  type ControllerServiceConfig,
  createFlowController,
  type FlowController,
  type ProcessorConfig,
  type ReportingTaskConfig,
} from './controller.ts';
import type { FlowHost } from './host.ts';

export interface FlowDefinition {
  name?: string;
  description?: string;
  controllerServices?: ControllerServiceConfig[];
  processors: (ProcessorConfig & { type: string })[];
  connections?: ConnectionConfig[];
  reportingTasks?: ReportingTaskConfig[];
}

export const FLOW_FINDING_CODES = [
  'FLOW_JSON',
  'FLOW_SCHEMA',
  'FLOW_DUPLICATE_ID',
  'FLOW_UNKNOWN_TYPE',
  'FLOW_PLUGIN_UNAVAILABLE',
  'FLOW_DANGLING_CONNECTION',
  'FLOW_UNKNOWN_RELATIONSHIP',
  'FLOW_DUPLICATE_CONNECTION',
  'FLOW_UNCONNECTED_RELATIONSHIP',
  'FLOW_PROPERTY_INVALID',
  'FLOW_SCHEDULE_INVALID',
  'FLOW_INPUT_FORBIDDEN',
  'FLOW_INPUT_MISSING',
  'FLOW_PROPERTIES_MIGRATED',
  'FLOW_VERSION_NEWER',
] as const;

export type FlowFindingCode = (typeof FLOW_FINDING_CODES)[number];

export interface FlowFinding {
  code: FlowFindingCode;
  severity: 'error' | 'warning';
  /** JSON pointer into the flow file (RFC 6901). */
  pointer: string;
  message: string;
}

const validateSchema = new Ajv({ allErrors: true, strict: false }).compile<FlowDefinition>(flowSchema);
// the same schema, dropping the fields it does not know (it changes what it checks)
const dropUnknownFields = new Ajv({ allErrors: true, strict: false, removeAdditional: true }).compile(flowSchema);

/** Escapes a key for a JSON pointer. */
function key(k: string): string {
  return k.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** Reads and parses a flow file; bad JSON is a FLOW_INVALID with one finding. */
export function readFlowFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw createError('USAGE', { message: `cannot read the flow file ${file}: ${(err as Error).message}` });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const finding: FlowFinding = { code: 'FLOW_JSON', severity: 'error', pointer: '', message: (err as Error).message };
    throw createError('FLOW_INVALID', { count: 1, first: finding.message }, { details: { findings: [finding] } });
  }
}

/**
 * Every finding of a flow: schema first; when the shape is right, the
 * types, connections, relationships and properties, checked by building the
 * flow in a throw-away in-memory controller. Unknown fields alone do not
 * hide the rest: the flow without them is built too.
 */
export async function validateFlow(definition: unknown, manager: FlowHost): Promise<FlowFinding[]> {
  let shaped = definition;
  const schemaFindings: FlowFinding[] = [];
  if (!validateSchema(definition)) {
    for (const e of validateSchema.errors ?? []) {
      const extra = e.keyword === 'additionalProperties' ? `/${key(String(e.params.additionalProperty))}` : '';
      const pointer = e.instancePath + extra;
      const message = e.keyword === 'additionalProperties' ? 'is not a known field' : `${e.message ?? 'is invalid'}`;
      schemaFindings.push({ code: 'FLOW_SCHEMA', severity: 'error', pointer, message });
    }
    shaped = structuredClone(definition);
    dropUnknownFields(shaped);
    if (!validateSchema(shaped)) return schemaFindings;
  }
  const scratch = await createFlowController({ manager, repository: 'memory' });
  try {
    return [...schemaFindings, ...build(scratch, shaped as FlowDefinition)];
  } finally {
    await scratch.close();
  }
}

export interface LoadFlowOptions {
  /**
   * Relative values of `path` properties are taken from this folder (the
   * flow file's own, for `databridge run`), not from the working directory.
   */
  baseDir?: string;
}

/** Builds a checked flow into a controller; throws FLOW_INVALID with every finding. */
export async function loadFlow(
  controller: FlowController,
  definition: unknown,
  options: LoadFlowOptions = {},
): Promise<FlowFinding[]> {
  const findings = await validateFlow(definition, controller.manager);
  const errors = findings.filter((f) => f.severity === 'error');
  if (errors.length > 0) {
    throw createError(
      'FLOW_INVALID',
      { count: errors.length, first: `${errors[0]!.pointer || '/'}: ${errors[0]!.message}` },
      { details: { findings } },
    );
  }
  const def = definition as FlowDefinition;
  build(controller, options.baseDir ? withPathsFrom(def, options.baseDir, controller.manager) : def);
  return findings;
}

/** The definition with relative `path` properties (of processors, services and reporting tasks) resolved against `baseDir`. */
function withPathsFrom(def: FlowDefinition, baseDir: string, manager: FlowHost): FlowDefinition {
  const resolved = <T extends { properties?: Readonly<Record<string, string>> }>(
    component: T,
    specs: readonly PropertySpec[],
  ): T => {
    const properties = { ...(component.properties ?? {}) };
    for (const spec of specs) {
      const value = properties[spec.name];
      if (spec.type === 'path' && value && !value.includes('${') && !isAbsolute(value)) {
        properties[spec.name] = resolve(baseDir, value);
      }
    }
    return { ...component, properties };
  };
  const { registry } = manager;
  return {
    ...def,
    controllerServices: def.controllerServices?.map((s) =>
      resolved(s, registry.componentInfo('controllerServices', s.type).properties),
    ),
    processors: def.processors.map((p) => resolved(p, registry.componentInfo('processors', p.type).properties)),
    reportingTasks: def.reportingTasks?.map((r) =>
      resolved(r, registry.componentInfo('reportingTasks', r.type).properties),
    ),
  };
}

const KIND_NAMES = {
  processors: 'processor',
  controllerServices: 'controller service',
  reportingTasks: 'reporting task',
} as const;

function build(controller: FlowController, def: FlowDefinition): FlowFinding[] {
  const findings: FlowFinding[] = [];
  const add = (code: FlowFindingCode, pointer: string, message: string, severity: 'error' | 'warning' = 'error') =>
    findings.push({ code, severity, pointer, message });
  /** A component the flow could not place, as a finding on the field at fault (`usageAt`: where a USAGE error points). */
  const unavailable = (err: unknown, at: string, usageAt = at): boolean => {
    if (isDataBridgeError(err, 'COMPONENT_UNKNOWN')) add('FLOW_UNKNOWN_TYPE', `${at}/type`, err.message);
    else if (isDataBridgeError(err, 'PLUGIN_DISABLED') || isDataBridgeError(err, 'PLUGIN_FAILED')) {
      add('FLOW_PLUGIN_UNAVAILABLE', `${at}/type`, err.message);
    } else if (isDataBridgeError(err, 'FLOW_DUPLICATE_PROCESSOR')) add('FLOW_DUPLICATE_ID', `${at}/id`, err.message);
    else if (isDataBridgeError(err, 'USAGE')) add('FLOW_SCHEDULE_INVALID', usageAt, err.message);
    else return false;
    return true;
  };
  const propertyFindings = (at: string, list: readonly { property?: string; message: string }[]) => {
    for (const f of list) {
      const pointer = f.property ? `${at}/properties/${key(f.property)}` : at;
      add('FLOW_PROPERTY_INVALID', pointer, f.property ? `"${f.property}" ${f.message}` : f.message);
    }
  };
  /** The first index of each id per kind, placed or not: a second use is a duplicate whatever became of the first. */
  const firstUse = new Map<string, number>();
  const duplicate = (kind: keyof typeof KIND_NAMES, id: string, at: string, i: number): boolean => {
    const first = firstUse.get(`${kind}/${id}`);
    if (first === undefined) {
      firstUse.set(`${kind}/${id}`, i);
      return false;
    }
    add('FLOW_DUPLICATE_ID', `${at}/id`, `${KIND_NAMES[kind]} id "${id}" is also used at /${kind}/${first}`);
    return true;
  };
  // services first: processors name them
  (def.controllerServices ?? []).forEach((s, i) => {
    const at = `/controllerServices/${i}`;
    if (duplicate('controllerServices', s.id, at, i)) return;
    try {
      propertyFindings(at, controller.addControllerService(s).findings);
    } catch (err) {
      if (!unavailable(err, at)) throw err;
    }
  });
  const placed = new Map<string, number>();
  def.processors.forEach((p, i) => {
    const at = `/processors/${i}`;
    if (duplicate('processors', p.id, at, i)) return;
    try {
      const summary = controller.createProcessorByType(p.type, p);
      placed.set(p.id, i);
      propertyFindings(at, summary.findings);
      if (summary.migrated) add('FLOW_PROPERTIES_MIGRATED', `${at}/version`, summary.migrated, 'warning');
      if (p.version && semver.valid(p.version) && semver.gt(p.version, summary.pluginVersion)) {
        add(
          'FLOW_VERSION_NEWER',
          `${at}/version`,
          `made with ${summary.pluginId} ${p.version}, newer than the ${summary.pluginVersion} that runs it`,
          'warning',
        );
      }
    } catch (err) {
      if (!unavailable(err, at)) throw err;
    }
  });
  (def.reportingTasks ?? []).forEach((r, i) => {
    const at = `/reportingTasks/${i}`;
    if (duplicate('reportingTasks', r.id, at, i)) return;
    try {
      propertyFindings(at, controller.addReportingTask(r).findings);
    } catch (err) {
      if (!unavailable(err, at, `${at}/period`)) throw err;
    }
  });
  const stats = () => controller.stats().processors;
  (def.connections ?? []).forEach((c, j) => {
    const at = `/connections/${j}`;
    let dangling = false;
    for (const end of ['source', 'destination'] as const) {
      if (placed.has(c[end])) continue;
      dangling = true;
      // a processor the flow has but could not place was reported where it is declared
      if (!firstUse.has(`processors/${c[end]}`))
        add('FLOW_DANGLING_CONNECTION', `${at}/${end}`, `no processor "${c[end]}" in this flow`);
    }
    if (dangling) return;
    try {
      controller.connect(c);
    } catch (err) {
      if (isDataBridgeError(err, 'FLOW_UNKNOWN_RELATIONSHIP'))
        add('FLOW_UNKNOWN_RELATIONSHIP', `${at}/relationship`, err.message);
      else if (isDataBridgeError(err, 'FLOW_DUPLICATE_CONNECTION')) add('FLOW_DUPLICATE_CONNECTION', at, err.message);
      else if (isDataBridgeError(err, 'USAGE')) add('FLOW_SCHEDULE_INVALID', `${at}/backPressure`, err.message);
      else throw err;
    }
  });
  const summaries = stats();
  const incoming = new Map<string, number>();
  for (const c of controller.stats().connections) incoming.set(c.destination, (incoming.get(c.destination) ?? 0) + 1);
  for (const [id, i] of placed) {
    const at = `/processors/${i}`;
    const info = controller.manager.registry.componentInfo('processors', def.processors[i]!.type);
    const requirement = info.inputRequirement ?? 'allowed';
    if (requirement === 'forbidden' && incoming.has(id)) {
      add('FLOW_INPUT_FORBIDDEN', at, `${info.name} is a source and takes no incoming connection`);
    }
    // a connection declared but not made (its source could not be placed) was reported already
    const declared = (def.connections ?? []).some(
      (c) => c.destination === id && !placed.has(c.source) && firstUse.has(`processors/${c.source}`),
    );
    if (requirement === 'required' && !incoming.has(id) && !declared) {
      add('FLOW_INPUT_MISSING', at, `${info.name} needs an incoming connection; it will never run`, 'warning');
    }
    // a relationship whose connection is dangling was reported already
    const named = new Set((def.connections ?? []).filter((c) => c.source === id).map((c) => c.relationship));
    for (const r of controller.unconnectedRelationships(id).filter((rel) => !named.has(rel))) {
      add(
        'FLOW_UNCONNECTED_RELATIONSHIP',
        `${at}/autoTerminate`,
        `relationship "${r}" of ${summaries[id]!.id} is neither connected nor auto-terminated`,
      );
    }
  }
  return findings;
}
