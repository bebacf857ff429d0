/**
 * What runs inside a sandbox (worker thread or child process): it loads
 * plugins through the module guard, makes processor instances, and runs a
 * whole session per trigger with the same session class as the host. The
 * outcomes of every commit go back in the reply, their new content packed
 * into one buffer.
 */

import type { ControllerService, Logger, PluginDefinition, Processor, ReportingTask } from '../sdk/index.ts';
import type { SessionOutcome } from '../session/outcome.ts';
import { StandardProcessContext } from '../session/properties.ts';
import { runSession } from '../session/session.ts';
import { guardedEntryUrl } from './module-guard.ts';
import {
  BOUNDS,
  type ComponentInfos,
  type CreatedReply,
  cut,
  type HostMessage,
  type LogLevel,
  type SandboxMessage,
  type ServiceBinding,
  type TriggeredReply,
  toWireError,
  type WireOutcome,
  type WireOutput,
} from './protocol.ts';

export type Send = (message: SandboxMessage, transfer?: ArrayBuffer[]) => void;

function sameAttributes(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>> | undefined): boolean {
  if (!b) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

/**
 * Packs an outcome for the wire: new contents in one buffer, and the
 * attributes of an input sent back unchanged left out (the host has them):
 * cloning them is most of a large batch's cost.
 */
function pack(outcome: SessionOutcome, inputs: ReadonlyMap<string, Readonly<Record<string, string>>>): WireOutcome {
  const outputs: WireOutput[] = outcome.outputs;
  for (const out of outputs) if (sameAttributes(out.attributes!, inputs.get(out.id))) out.attributes = null;
  const lengths = outcome.contents.map((c) => c.byteLength);
  const packed = new Uint8Array(lengths.reduce((a, b) => a + b, 0));
  let at = 0;
  for (const c of outcome.contents) {
    packed.set(c, at);
    at += c.byteLength;
  }
  return { outputs, consumed: outcome.consumed, packed: packed.buffer, lengths };
}

/** A log line's fields as plain data within BOUNDS (the host holds a sandbox to them). */
function cloneable(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!fields) return {};
  try {
    const json = JSON.stringify(fields);
    if (json === undefined || json.length > BOUNDS.logFields / 2)
      return { note: `fields of ${json?.length ?? 0} characters left out` };
    const plain = JSON.parse(json) as unknown;
    return plain && typeof plain === 'object' && !Array.isArray(plain) ? (plain as Record<string, unknown>) : {};
  } catch {
    return { note: 'fields could not be serialized' };
  }
}

/**
 * A new FlowFile's parents as the host can know them: inputs of the trigger
 * or FlowFiles of the same reply (a parent made and removed within the
 * session never reaches the host, and is left out).
 */
function knownParents(outcomes: readonly WireOutcome[], inputs: ReadonlyMap<string, unknown>): void {
  const known = new Set<string>();
  for (const o of outcomes) for (const out of o.outputs) known.add(out.id);
  for (const o of outcomes)
    for (const out of o.outputs)
      if (!inputs.has(out.id) && out.parentIds.some((p) => !inputs.has(p) && !known.has(p)))
        out.parentIds = out.parentIds.filter((p) => inputs.has(p) || known.has(p));
}

/** A processor's validate() findings as plain data within BOUNDS. */
function plainFindings(findings: readonly unknown[]): CreatedReply['findings'] {
  return findings.slice(0, BOUNDS.findings).map((f) => {
    const { property, message } = (f ?? {}) as { property?: unknown; message?: unknown };
    const text = cut(String(message), BOUNDS.errorText);
    return typeof property === 'string' ? { property: cut(property, 1024), message: text } : { message: text };
  });
}

/** Each kind's factories, called once each for what they say of themselves (plain data for the wire). */
function describe(def: PluginDefinition): ComponentInfos {
  const infos = (kind: keyof PluginDefinition): Record<string, never> => {
    const out: Record<string, never> = {};
    for (const [name, factory] of Object.entries(def[kind] ?? {})) {
      if (typeof factory !== 'function') throw new Error(`${kind}.${name} is not a factory`);
      out[name] = JSON.parse(JSON.stringify(factory().getInfo())) as never;
    }
    return out;
  };
  return {
    processors: infos('processors'),
    controllerServices: infos('controllerServices'),
    reportingTasks: infos('reportingTasks'),
  };
}

type Instance =
  | { kind: 'processor'; processor: Processor; ctx: StandardProcessContext; pluginId: string; services: string[] }
  | { kind: 'reportingTask'; task: ReportingTask; ctx: StandardProcessContext; pluginId: string; services: string[] };

/** Returns the message handler of a sandbox. */
export function createRuntime(send: Send): (message: HostMessage) => Promise<void> {
  const plugins = new Map<string, PluginDefinition>();
  const instances = new Map<number, Instance>();
  /** Enabled controller services, by binding (id and configuration), with how many instances use each. */
  const services = new Map<string, { service: ControllerService; refs: number }>();
  const logger = (plugin: string, extra: Record<string, unknown> = {}): Logger => {
    const log = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) =>
      send({
        type: 'log',
        level,
        message: cut(String(message), BOUNDS.logMessage),
        fields: { ...extra, ...cloneable(fields) },
        plugin,
      });
    return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  };
  const bindingKey = (b: ServiceBinding) => JSON.stringify([b.id, b.pluginId, b.component, b.properties]);
  /** Enables the services an instance names (each once per sandbox); returns their keys and a resolver. */
  const acquireServices = async (bindings: readonly ServiceBinding[]) => {
    const keys: string[] = [];
    const byId = new Map<string, ControllerService>();
    try {
      for (const b of bindings) {
        const key = bindingKey(b);
        let held = services.get(key);
        if (!held) {
          const factory = plugins.get(b.pluginId)?.controllerServices?.[b.component];
          if (!factory) throw new Error(`${b.pluginId} provides no controller service ${b.component}`);
          const service = factory();
          const ctx = new StandardProcessContext({
            processorId: b.id,
            logger: logger(b.pluginId, { service: b.id }),
            specs: service.getInfo().properties,
            properties: b.properties,
          });
          await service.enable?.(ctx);
          held = { service, refs: 0 };
          services.set(key, held);
        }
        held.refs++;
        keys.push(key);
        byId.set(b.id, held.service);
      }
    } catch (err) {
      await releaseServices(keys);
      throw err;
    }
    const resolve = (id: string) => {
      const s = byId.get(id);
      if (!s) throw new Error(`no controller service "${id}" is bound to this processor`);
      return s;
    };
    return { keys, resolve };
  };
  const releaseServices = async (keys: readonly string[]) => {
    for (const key of keys) {
      const held = services.get(key);
      if (!held || --held.refs > 0) continue;
      services.delete(key);
      await held.service.disable?.();
    }
  };

  return async (m: HostMessage) => {
    try {
      switch (m.type) {
        case 'load': {
          const url = guardedEntryUrl(m.root, m.entryPoint, m.files, m.digest, m.pluginId);
          const mod = (await import(url)) as { default?: PluginDefinition };
          const def = mod.default;
          if (!def || typeof def !== 'object') throw new Error('the entry module has no default export');
          plugins.set(m.pluginId, def);
          send({ type: 'loaded', id: m.id, ...describe(def) });
          return;
        }
        case 'create': {
          const def = plugins.get(m.pluginId);
          const kind = m.kind ?? 'processor';
          const factory = kind === 'processor' ? def?.processors?.[m.component] : def?.reportingTasks?.[m.component];
          if (!factory) throw new Error(`${m.pluginId} provides no ${kind} ${m.component}`);
          const component = factory();
          const bound = await acquireServices(m.services ?? []);
          try {
            const ctx = new StandardProcessContext({
              processorId: m.processorId,
              logger: logger(m.pluginId, { [kind === 'processor' ? 'processor' : 'reportingTask']: m.processorId }),
              specs: component.getInfo().properties,
              properties: m.properties,
              dynamicProperties: m.dynamicProperties,
              services: bound.resolve,
            });
            const findings: unknown[] = [];
            if (kind === 'processor') {
              const processor = component as Processor;
              findings.push(...(processor.validate?.(ctx.getProperties()) ?? []));
              await processor.initialize?.(ctx);
              instances.set(m.instance, { kind, processor, ctx, pluginId: m.pluginId, services: bound.keys });
            } else {
              const task = component as ReportingTask;
              await task.initialize?.(ctx);
              instances.set(m.instance, { kind, task, ctx, pluginId: m.pluginId, services: bound.keys });
            }
            send({ type: 'created', id: m.id, findings: plainFindings(findings) });
          } catch (err) {
            await releaseServices(bound.keys);
            throw err;
          }
          return;
        }
        case 'report': {
          const inst = instances.get(m.instance);
          if (inst?.kind !== 'reportingTask')
            throw new Error(`no reporting task instance ${m.instance} in this sandbox`);
          try {
            await inst.task.onTrigger(inst.ctx, m.metrics);
          } catch (err) {
            throw Object.assign(new Error(toWireError(err).message), { code: 'REPORTING_TASK_FAILED' });
          }
          send({ type: 'reported', id: m.id });
          return;
        }
        case 'trigger': {
          const inst = instances.get(m.instance);
          if (inst?.kind !== 'processor') throw new Error(`no processor instance ${m.instance} in this sandbox`);
          const content = new Uint8Array(m.content);
          const at = new Map(m.inputs.map((ff, i) => [ff.id, i]));
          const outcomes: SessionOutcome[] = [];
          const run = await runSession(
            inst.processor,
            inst.ctx,
            {
              relationships: new Set(m.relationships),
              logger: inst.ctx.logger,
              readInput: (id) => {
                const i = at.get(id)!;
                return content.subarray(m.offsets[i]!, m.offsets[i]! + m.inputs[i]!.size);
              },
              apply: (o) => void outcomes.push({ ...o, contents: [...o.contents] }),
            },
            m.inputs,
          );
          const original = new Map(m.inputs.map((ff) => [ff.id, ff.attributes]));
          const wire = outcomes.map((o) => pack(o, original));
          knownParents(wire, original);
          const reply: TriggeredReply = {
            type: 'triggered',
            id: m.id,
            outcomes: wire,
            leftovers: run.leftovers,
            yielded: run.yielded,
            error: run.error === null ? null : toWireError(run.error, inst.pluginId),
          };
          send(
            reply,
            wire.map((o) => o.packed),
          );
          return;
        }
        case 'stop': {
          const inst = instances.get(m.instance);
          instances.delete(m.instance);
          try {
            if (inst?.kind === 'processor') await inst.processor.onStopped?.(inst.ctx);
            else await inst?.task.onStopped?.(inst.ctx);
          } finally {
            if (inst) await releaseServices(inst.services);
          }
          send({ type: 'stopped', id: m.id });
          return;
        }
        case 'usage': {
          const mem = process.memoryUsage();
          const cpu = process.cpuUsage();
          send({
            type: 'usage',
            id: m.id,
            heapUsed: mem.heapUsed,
            heapTotal: mem.heapTotal,
            rss: mem.rss,
            cpuUser: cpu.user,
            cpuSystem: cpu.system,
            handles: process.getActiveResourcesInfo().length,
          });
          return;
        }
      }
    } catch (err) {
      send({ type: 'error', id: (m as { id: number }).id, error: toWireError(err) });
    }
  };
}
