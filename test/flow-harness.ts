/**
 * Runs one processor in a real FlowController: a source feeds it the given
 * FlowFiles once, and a sink per relationship records what comes out.
 */

import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createFlowController, type FlowController, type ProcessorConfig } from '../src/flow/controller.ts';
import { createPluginManager, type PluginManager } from '../src/index.ts';
import type { FlowFile, Processor } from '../src/sdk/index.ts';
import { helperInfo } from '../src/testing/runner.ts';
import { tempDir } from './helpers.ts';

export interface Emitted {
  attributes: Record<string, string>;
  content: Buffer;
  id: string;
  parentIds: readonly string[];
}

export interface RunResult {
  out: Record<string, Emitted[]>;
  flow: FlowController;
  manager: PluginManager;
}

let counter = 0;

/** A test manager with its own data directory. */
export async function testManager(t: TestContext): Promise<PluginManager> {
  const dir = tempDir(t);
  const manager = await createPluginManager({
    dataDir: join(dir, 'data'),
    pluginDir: join(dir, 'plugins'),
    logLevel: false,
  });
  t.after(() => manager.shutdown());
  return manager;
}

/** Registers a source that emits `inputs` once, then yields. Returns its type. */
export function registerSource(
  manager: PluginManager,
  inputs: readonly { content?: string | Uint8Array; attributes?: Record<string, string> }[],
): string {
  const type = `TestSource${++counter}`;
  manager.registerBuiltInProcessor(
    type,
    (): Processor => {
      let done = false;
      return {
        getInfo: () => helperInfo(type, ['success'], 'forbidden'),
        onTrigger(ctx, session) {
          if (done) return ctx.yield();
          for (const input of inputs) {
            let ff = session.create();
            if (input.content !== undefined) ff = session.write(ff, input.content);
            if (input.attributes) ff = session.putAllAttributes(ff, input.attributes);
            session.transfer(ff, 'success');
          }
          session.commit();
          done = true;
        },
      };
    },
    helperInfo(type, ['success'], 'forbidden'),
  );
  return type;
}

/** Registers a sink that records and removes what it receives. Returns its type. */
export function registerSink(manager: PluginManager, into: Emitted[]): string {
  const type = `TestSink${++counter}`;
  manager.registerBuiltInProcessor(
    type,
    (): Processor => ({
      getInfo: () => helperInfo(type, [], 'required'),
      async onTrigger(_ctx, session) {
        for (let ff: FlowFile | undefined = session.get(); ff; ff = session.get()) {
          into.push({
            attributes: { ...ff.attributes },
            content: Buffer.from(await session.read(ff)),
            id: ff.id,
            parentIds: ff.parentIds,
          });
          session.remove(ff);
        }
        session.commit();
      },
    }),
    helperInfo(type, [], 'required'),
  );
  return type;
}

/** Waits until the flow has been quiet for a moment, or throws after `timeoutMs`. */
/** Every running processor that no connection feeds has run at least once. */
function sourcesRan(flow: FlowController): boolean {
  const stats = flow.stats();
  const fed = new Set(stats.connections.map((c) => c.destination));
  return Object.values(stats.processors).every((p) => p.state !== 'running' || fed.has(p.id) || p.tasks > 0);
}

export async function waitQuiet(flow: FlowController, settleMs = 60, timeoutMs = 15_000): Promise<void> {
  const start = Date.now();
  for (;;) {
    // isQuiet() leaves sources out: one that has not run yet (a loaded machine) would make a flow look settled
    if (flow.isQuiet() && sourcesRan(flow) && Date.now() - flow.lastActivity >= settleMs) return;
    if (Date.now() - start > timeoutMs) throw new Error(`the flow did not settle: ${JSON.stringify(flow.stats())}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Runs processor `type` over `inputs` and returns what went to each of its
 * relationships (every relationship gets a sink).
 */
export async function runProcessor(
  t: TestContext,
  type: string,
  config: Omit<ProcessorConfig, 'id'> & {
    inputs?: readonly { content?: string | Uint8Array; attributes?: Record<string, string> }[];
    settleMs?: number;
  },
): Promise<RunResult> {
  const manager = await testManager(t);
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(() => flow.close());
  const summary = flow.createProcessorByType(type, { id: 'under-test', ...config });
  if (summary.findings.length) throw new Error(`findings: ${JSON.stringify(summary.findings)}`);
  if (config.inputs) {
    flow.createProcessorByType(registerSource(manager, config.inputs), { id: 'source' });
    flow.connect({ source: 'source', relationship: 'success', destination: 'under-test' });
  }
  const out: Record<string, Emitted[]> = {};
  const relationships = flow.unconnectedRelationships('under-test');
  for (const r of relationships) {
    out[r] = [];
    flow.createProcessorByType(registerSink(manager, out[r]), { id: `sink-${r}` });
    flow.connect({ source: 'under-test', relationship: r, destination: `sink-${r}` });
  }
  await flow.startAll();
  await waitQuiet(flow, config.settleMs);
  await flow.stopAll();
  return { out, flow, manager };
}

/**
 * Builds source → the processor → sink in an in-memory flow (the
 * processor's "success" goes to the sink) and starts it. Returns the flow
 * and what reaches the sink, as it arrives.
 */
export async function startThrough(
  t: TestContext,
  manager: PluginManager,
  inputs: readonly { content?: string | Uint8Array; attributes?: Record<string, string> }[],
  type: string,
  config: ProcessorConfig,
): Promise<{ flow: FlowController; out: Emitted[] }> {
  const out: Emitted[] = [];
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(() => flow.close());
  flow.createProcessorByType(registerSource(manager, inputs), { id: 'src' });
  flow.createProcessorByType(type, config);
  flow.createProcessorByType(registerSink(manager, out), { id: 'sink' });
  flow.connect({ source: 'src', relationship: 'success', destination: config.id });
  flow.connect({ source: config.id, relationship: 'success', destination: 'sink' });
  await flow.startAll();
  return { flow, out };
}
