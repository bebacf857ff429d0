/**
 * What runs inside a sandbox (worker thread or child process): it loads
 * plugins through the module guard, makes processor instances, and runs a
 * whole session per trigger with the same session class as the host. The
 * outcomes of every commit go back in the reply, their new content packed
 * into one buffer.
 */

import type { OutputFlowFile, SessionOutcome } from '../flow/outcome.ts';
import { StandardProcessContext } from '../flow/properties.ts';
import { StandardProcessSession } from '../flow/session.ts';
import { guardedEntryUrl } from '../plugin/module-guard.ts';
import type { Logger, PluginDefinition, Processor, ProcessorInfo } from '../sdk/index.ts';
import { type HostMessage, type SandboxMessage, toWireError } from './protocol.ts';

/** An outcome as sent: new contents packed into one buffer; `attributes: null` means the input's, unchanged. */
export interface WireOutcome extends Omit<SessionOutcome, 'contents' | 'outputs'> {
  outputs: (Omit<OutputFlowFile, 'attributes'> & { attributes: Record<string, string> | null })[];
  packed: ArrayBuffer;
  lengths: number[];
}

export type Send = (message: SandboxMessage | WireTriggered, transfer?: ArrayBuffer[]) => void;

export interface WireTriggered {
  type: 'triggered';
  id: number;
  outcomes: WireOutcome[];
  leftovers: { id: string; penalize: boolean }[];
  yielded: boolean;
  error: ReturnType<typeof toWireError> | null;
}

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
  for (const out of outcome.outputs) {
    if (sameAttributes(out.attributes, inputs.get(out.id)))
      (out as { attributes: Record<string, string> | null }).attributes = null;
  }
  const lengths = outcome.contents.map((c) => c.byteLength);
  const packed = new Uint8Array(lengths.reduce((a, b) => a + b, 0));
  let at = 0;
  for (const c of outcome.contents) {
    packed.set(c, at);
    at += c.byteLength;
  }
  return { outputs: outcome.outputs, consumed: outcome.consumed, packed: packed.buffer, lengths };
}

function cloneable(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!fields) return {};
  try {
    return JSON.parse(JSON.stringify(fields)) as Record<string, unknown>;
  } catch {
    return { note: 'fields could not be serialized' };
  }
}

/** Returns the message handler of a sandbox. */
export function createRuntime(send: Send): (message: HostMessage) => Promise<void> {
  const plugins = new Map<string, PluginDefinition>();
  const instances = new Map<number, { processor: Processor; ctx: StandardProcessContext; pluginId: string }>();
  const logger = (plugin: string, extra: Record<string, unknown> = {}): Logger => {
    const log = (level: 'debug' | 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) =>
      send({ type: 'log', level, message: String(message), fields: { ...extra, ...cloneable(fields) }, plugin });
    return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
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
          const processors: Record<string, ProcessorInfo> = {};
          for (const [name, factory] of Object.entries(def.processors ?? {})) {
            if (typeof factory !== 'function') throw new Error(`processors.${name} is not a factory`);
            processors[name] = JSON.parse(JSON.stringify(factory().getInfo())) as ProcessorInfo;
          }
          send({ type: 'loaded', id: m.id, processors });
          return;
        }
        case 'create': {
          const def = plugins.get(m.pluginId);
          const factory = def?.processors?.[m.component];
          if (!factory) throw new Error(`${m.pluginId} provides no processor ${m.component}`);
          const processor = factory();
          const info = processor.getInfo();
          const ctx = new StandardProcessContext({
            processorId: m.processorId,
            logger: logger(m.pluginId, { processor: m.processorId }),
            specs: info.properties,
            properties: m.properties,
            dynamicProperties: m.dynamicProperties,
          });
          const findings = [...(processor.validate?.(ctx.getProperties()) ?? [])];
          await processor.initialize?.(ctx);
          instances.set(m.instance, { processor, ctx, pluginId: m.pluginId });
          send({ type: 'created', id: m.id, findings: JSON.parse(JSON.stringify(findings)) });
          return;
        }
        case 'trigger': {
          const inst = instances.get(m.instance);
          if (!inst) throw new Error(`no processor instance ${m.instance} in this sandbox`);
          const content = new Uint8Array(m.content);
          const at = new Map(m.inputs.map((ff, i) => [ff.id, i]));
          const outcomes: SessionOutcome[] = [];
          const session = new StandardProcessSession(
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
          let error: ReturnType<typeof toWireError> | null = null;
          try {
            await inst.processor.onTrigger(inst.ctx, session);
            if (session.hasUncommittedWork()) session.commit();
          } catch (err) {
            session.rollback(true);
            error = toWireError(err, inst.pluginId);
          }
          const original = new Map(m.inputs.map((ff) => [ff.id, ff.attributes]));
          const wire = outcomes.map((o) => pack(o, original));
          const reply: WireTriggered = {
            type: 'triggered',
            id: m.id,
            outcomes: wire,
            leftovers: session.leftovers(),
            yielded: inst.ctx.takeYield(),
            error,
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
          await inst?.processor.onStopped?.(inst.ctx);
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
