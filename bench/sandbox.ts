/**
 * The sandbox figures, all from one run:
 * - sandbox.worker_vs_inline, sandbox.process_vs_inline: FlowFiles/s of a
 *   plugin processor flipping the case of 1 KiB FlowFiles, batches of 256,
 *   in each mode, over the same plugin inline;
 * - sandbox.worker_vs_piscina: the worker sandbox over the same transform
 *   run through piscina (default settings, same batch size, same number of
 *   batches in flight);
 * - sandbox.confined_start_ms, sandbox.unconfined_start_ms: a process
 *   sandbox from spawn to serving its first batch (plugin loaded, instance
 *   made, 256 FlowFiles flipped), median of 10, confined as the host's probe
 *   allows and with confinement off;
 * - sandbox.recovery_vs_spawn: from a stuck task's deadline to the process
 *   sandbox serving again, over starting a bare Node process
 *   (sandbox.worker_recovery_vs_spawn: the same for a worker, over a bare Worker);
 * - sandbox.reload_lost: FlowFiles lost or duplicated by 20 reloads under load,
 *   process sandbox (sandbox.worker_reload_lost: worker sandbox).
 *
 * The process figures run under whatever confinement the host's probe finds
 * (bwrap, cgroups); each says which in its detail.
 */

import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { createFlowController } from '../src/flow/controller.ts';
import { createPluginManager, type PluginManager } from '../src/index.ts';
import { signPluginDir } from '../src/plugin/release.ts';
import { generateSigningKey, loadKey } from '../src/plugin/signing.ts';
import { type ConfinementReport, overrideConfinement, probeConfinement } from '../src/sandbox/confinement.ts';
import type { SandboxHost } from '../src/sandbox/sandbox-host.ts';
import { helperInfo } from '../src/testing/runner.ts';
import { type BenchResult, median } from './types.ts';

const BATCH = 256;
const IN_FLIGHT = 4;
const RUN_MS = 2500;
const flipSource = readFileSync(join(import.meta.dirname, 'fixtures', 'transform.js'), 'utf8').replace(
  /\/\/ piscina[\s\S]*$/,
  '',
);

function pluginCode(): string {
  return `${flipSource}
export default { processors: { Flip: () => ({
  getInfo: () => ({ name: 'Flip', version: '1.0.0', description: 'flips case', tags: [], properties: [], relationships: [{ name: 'success' }] }),
  async onTrigger(ctx, session) {
    for (let ff = session.get(); ff; ff = session.get()) {
      if (ff.attributes.hang) for (;;) {}
      session.transfer(session.write(ff, flip(await session.read(ff))), 'success');
    }
    session.commit();
  },
}) } };
`;
}

/** The operator's trust that puts bench.flip in a worker (a plugin folder set up as `process` stays there). */
const TRUSTED = { workerPlugins: ['bench.flip'] };

async function setup(
  root: string,
  isolation: 'worker' | 'process',
  extraManifest: Record<string, unknown> = {},
): Promise<{ dataDir: string; pluginDir: string }> {
  const pluginDir = join(root, `plugins-${isolation}`);
  const dataDir = join(root, `data-${isolation}`);
  const dir = join(pluginDir, 'bench.flip');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify({
      id: 'bench.flip',
      name: 'Flip',
      version: '1.0.0',
      publisher: 'bench',
      type: 'processor',
      entryPoint: 'index.js',
      provides: { processors: ['Flip'] },
      // a worker is the operator's trust (TRUSTED below), never the manifest's; asking process keeps it there
      ...(isolation === 'process' ? { isolation } : {}),
      limits: { maxConcurrentTasks: IN_FLIGHT, maxExecutionMS: 10_000, maxMemoryMB: 256 },
      ...extraManifest,
    }),
  );
  writeFileSync(join(dir, 'index.js'), pluginCode());
  const key = generateSigningKey();
  await signPluginDir(dir, loadKey(key.privateKeyPem, 'private'));
  const m = await createPluginManager({ dataDir, pluginDir, logLevel: false, autoLoad: false });
  await m.trust.addKey({ publisher: 'bench', publicKeyPem: key.publicKeyPem, namespaces: ['bench.*'] });
  await m.shutdown();
  return { dataDir, pluginDir };
}

async function flowRate(manager: PluginManager): Promise<number> {
  const flow = await createFlowController({ manager, repository: 'memory' });
  try {
    flow.createProcessorByType('GenerateFlowFile', {
      id: 'gen',
      properties: { 'File Size': '1 KB', 'Batch Size': String(BATCH) },
    });
    flow.createProcessorByType('Flip', {
      id: 'flip',
      autoTerminate: ['success'],
      schedule: { batchSize: BATCH, concurrentTasks: IN_FLIGHT },
    });
    flow.connect({
      source: 'gen',
      relationship: 'success',
      destination: 'flip',
      backPressure: { objects: BATCH * 16 },
    });
    await flow.startAll();
    await new Promise((r) => setTimeout(r, 500));
    const before = flow.stats().processors.flip!.in;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, RUN_MS));
    return (flow.stats().processors.flip!.in - before) / ((performance.now() - t0) / 1000);
  } finally {
    await flow.close();
  }
}

/** What held a sandbox, as the figures' details say it. */
function confinementOf(sandbox: SandboxHost | undefined): string {
  const c = sandbox?.confinement;
  if (!c) return sandbox?.mode === 'worker' ? 'worker' : 'unknown';
  const cgroup = c.cgroup ? `cgroup v${c.cgroup} (${c.controllers.join(', ')})` : 'no cgroup';
  return `${c.bwrap ? 'bwrap' : 'no bwrap'}, ${cgroup}${c.network ? '' : ', no network'}`;
}

async function modeRate(
  dirs: { dataDir: string; pluginDir: string },
  inline: boolean,
  seen?: { confinement?: string },
): Promise<number> {
  const manager = await createPluginManager({
    ...dirs,
    logLevel: false,
    ...(inline ? { inlinePlugins: ['bench.flip'] } : TRUSTED),
  });
  try {
    const rate = await flowRate(manager);
    if (seen) seen.confinement = confinementOf(manager.sandboxOf('bench.flip'));
    return rate;
  } finally {
    await manager.shutdown();
  }
}

/**
 * The baseline: the same flow, with the transform done by an inline
 * processor that sends each batch to piscina (default settings), its
 * content packed into one transferred buffer, as many batches in flight.
 */
async function piscinaRate(dirs: { dataDir: string; pluginDir: string }): Promise<number> {
  const pool = new Piscina({ filename: new URL('./fixtures/transform.js', import.meta.url).href });
  const manager = await createPluginManager({ ...dirs, logLevel: false, autoLoad: false });
  const info = {
    name: 'Flip',
    description: 'flips case through piscina',
    version: '1.0.0',
    tags: [],
    properties: [],
    relationships: [{ name: 'success' }],
  };
  manager.registerBuiltInProcessor(
    'Flip',
    () => ({
      getInfo: () => info,
      async onTrigger(_ctx, session) {
        const batch = session.getBatch();
        if (batch.length === 0) return;
        const contents = await Promise.all(batch.map((ff) => session.read(ff)));
        const lengths = contents.map((c) => c.byteLength);
        const packed = Buffer.concat(contents);
        const buffer = packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength);
        const result = (await pool.run({ packed: buffer, lengths }, { transferList: [buffer] })) as {
          packed: ArrayBuffer;
        };
        const out = new Uint8Array(result.packed);
        let at = 0;
        batch.forEach((ff, i) => {
          session.transfer(session.write(ff, out.subarray(at, at + lengths[i]!)), 'success');
          at += lengths[i]!;
        });
        session.commit();
      },
    }),
    info,
  );
  try {
    return await flowRate(manager);
  } finally {
    await manager.shutdown();
    await pool.destroy();
  }
}

/**
 * From a stuck task's deadline to the sandbox serving again, over starting a
 * bare Worker. Each round is a first failure in a fresh sandbox: repeated
 * failures are delayed on purpose (backoff against crash loops).
 */
async function recovery(
  root: string,
  mode: 'worker' | 'process',
): Promise<{ recoveryMs: number; spawnMs: number; confinement: string }> {
  const dirs = await setup(join(root, `recovery-${mode}`), mode, {
    limits: { maxExecutionMS: 300, maxConcurrentTasks: 4 },
  });
  let confinement = '';
  const ff = (hang: boolean) => ({
    id: hang ? 'stuck' : 'fine',
    attributes: (hang ? { uuid: 'stuck', hang: '1' } : { uuid: 'fine' }) as Record<string, string>,
    size: 0,
    entryDate: 0,
    lineageStartDate: 0,
    parentIds: [],
  });
  const recoveries: number[] = [];
  for (let i = 0; i < 3; i++) {
    const manager = await createPluginManager({ ...dirs, logLevel: false, ...(mode === 'worker' ? TRUSTED : {}) });
    try {
      const sandbox = manager.sandboxOf('bench.flip')!;
      await sandbox.create({
        instance: 9001,
        pluginId: 'bench.flip',
        component: 'Flip',
        processorId: 'r',
        properties: {},
        dynamicProperties: false,
      });
      const trigger = (hang: boolean) => {
        const content = new ArrayBuffer(0);
        return sandbox.trigger(
          {
            type: 'trigger',
            id: 0,
            instance: 9001,
            relationships: ['success'],
            inputs: [ff(hang)],
            content,
            offsets: [0],
          },
          [content],
        );
      };
      await trigger(false);
      // the warm spare is ready, as in a host that has been running a while
      await new Promise((r) => setTimeout(r, 1500));
      const deadline = await trigger(true).then(
        () => null,
        () => performance.now(),
      );
      if (deadline === null) throw new Error('the stuck task was not stopped');
      await trigger(false);
      recoveries.push(performance.now() - deadline);
      confinement = confinementOf(sandbox);
    } finally {
      await manager.shutdown();
    }
  }
  const spawns: number[] = [];
  for (let i = 0; i < 3; i++) spawns.push(mode === 'worker' ? await bareWorker() : await bareProcess());
  return { recoveryMs: median(recoveries), spawnMs: median(spawns), confinement };
}

/** Starting a bare Worker until its first message. */
async function bareWorker(): Promise<number> {
  const t0 = performance.now();
  const w = new Worker('require("node:worker_threads").parentPort.postMessage("ready")', { eval: true });
  await new Promise((r) => w.once('message', r));
  const ms = performance.now() - t0;
  await w.terminate();
  return ms;
}

/** Starting a bare Node process until its first output. */
async function bareProcess(): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['-e', 'process.stdout.write("ready")'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await new Promise((r) => child.stdout.once('data', r));
  const ms = performance.now() - t0;
  await new Promise((r) => child.once('exit', r));
  return ms;
}

/**
 * A process sandbox from spawn to serving its first batch: the plugin's
 * components are known (as on any start after its first load), so the
 * sandbox starts on the first request; the time runs from there through the
 * plugin's load, the instance's creation and one batch of 256 FlowFiles of
 * 1 KiB. Median of 10, each in a fresh manager.
 */
async function startMs(
  dirs: { dataDir: string; pluginDir: string },
  options: { allowWeakIsolation?: boolean; confinementReport?: ConfinementReport },
): Promise<{ ms: number; confinement: string }> {
  const times: number[] = [];
  let confinement = '';
  for (let i = 0; i < 11; i++) {
    const manager = await createPluginManager({ ...dirs, logLevel: false, ...options });
    try {
      const sandbox = manager.sandboxOf('bench.flip')!;
      const lazy = sandbox.state === 'idle';
      const t0 = performance.now();
      await sandbox.create({
        instance: 9002,
        pluginId: 'bench.flip',
        component: 'Flip',
        processorId: 's',
        properties: {},
        dynamicProperties: false,
      });
      const inputs = Array.from({ length: BATCH }, (_, k) => ({
        id: `ff-${k}`,
        attributes: { uuid: `ff-${k}`, filename: `ff-${k}` } as Record<string, string>,
        size: 1024,
        entryDate: 0,
        lineageStartDate: 0,
        parentIds: [],
      }));
      const content = new Uint8Array(BATCH * 1024).fill(97).buffer;
      const reply = await sandbox.trigger(
        {
          type: 'trigger',
          id: 0,
          instance: 9002,
          relationships: ['success'],
          inputs,
          content,
          offsets: inputs.map((_, k) => k * 1024),
        },
        [content],
      );
      if (reply.type !== 'triggered' || reply.outcomes.length !== 1) throw new Error('the first batch was not served');
      // the first run loads the plugin once, so that the others start lazily as a host does after its first start
      if (i > 0) {
        if (!lazy) throw new Error('the sandbox started before its first request');
        times.push(performance.now() - t0);
      }
      confinement = confinementOf(sandbox);
    } finally {
      await manager.shutdown();
    }
  }
  return { ms: median(times), confinement };
}

/** FlowFiles lost or duplicated by 20 reloads of a sandboxed plugin under load. */
async function reloadLost(
  root: string,
  mode: 'worker' | 'process',
): Promise<{ lost: number; duplicated: number; delivered: number; reloads: number }> {
  const dirs = await setup(join(root, `reload-${mode}`), mode);
  const manager = await createPluginManager({ ...dirs, logLevel: false, ...(mode === 'worker' ? TRUSTED : {}) });
  const seen = new Set<string>();
  let duplicated = 0;
  const countSink = helperInfo('CountSink', [], 'required');
  manager.registerBuiltInProcessor(
    'CountSink',
    () => ({
      getInfo: () => countSink,
      onTrigger(_ctx, session) {
        for (let f = session.get(); f; f = session.get()) {
          if (seen.has(f.id)) duplicated++;
          seen.add(f.id);
          session.remove(f);
        }
        session.commit();
      },
    }),
    countSink,
  );
  const flow = await createFlowController({ manager, repository: 'memory' });
  const TOTAL = 30_000;
  try {
    flow.createProcessorByType('GenerateFlowFile', {
      id: 'gen',
      properties: {
        'File Size': '1 KB',
        'Batch Size': '100',
        'Max FlowFiles': String(TOTAL),
        'Unique FlowFiles': 'false',
      },
      schedule: { period: '5 ms' },
    });
    flow.createProcessorByType('Flip', {
      id: 'flip',
      schedule: { batchSize: 64, concurrentTasks: IN_FLIGHT },
      penaltyDuration: '10 ms',
    });
    flow.createProcessorByType('CountSink', { id: 'sink' });
    flow.connect({ source: 'gen', relationship: 'success', destination: 'flip' });
    flow.connect({ source: 'flip', relationship: 'success', destination: 'sink' });
    await flow.startAll();
    let reloads = 0;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 60));
      await manager.reload('bench.flip');
      reloads++;
    }
    const start = Date.now();
    while ((seen.size < TOTAL || flow.queuedCount() > 0) && Date.now() - start < 60_000)
      await new Promise((r) => setTimeout(r, 50));
    const generated = flow.stats().processors.gen!.out;
    const lost = generated - seen.size - flow.queuedCount();
    return { lost, duplicated, delivered: seen.size, reloads };
  } finally {
    await flow.close();
    await manager.shutdown();
  }
}

export async function sandboxBench(): Promise<BenchResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'databridge-bench-sandbox-'));
  // a root host runs sandboxes as uid 65534, which must read the plugins' folders in here
  chmodSync(root, 0o755);
  try {
    const workerDirs = await setup(root, 'worker');
    const processDirs = await setup(root, 'process');
    const inline: number[] = [];
    const worker: number[] = [];
    const proc: number[] = [];
    const pisc: number[] = [];
    const held: { confinement?: string } = {};
    for (let i = 0; i < 2; i++) {
      inline.push(await modeRate(workerDirs, true));
      worker.push(await modeRate(workerDirs, false));
      proc.push(await modeRate(processDirs, false, held));
      pisc.push(await piscinaRate({ dataDir: join(root, 'data-piscina'), pluginDir: join(root, 'plugins-piscina') }));
    }
    const [i, w, p, q] = [median(inline), median(worker), median(proc), median(pisc)];
    const r = await recovery(root, 'process');
    const rw = await recovery(root, 'worker');
    const reload = await reloadLost(root, 'process');
    const reloadW = await reloadLost(root, 'worker');
    const confined = await startMs(processDirs, {});
    // the same start with bwrap and cgroups off: what the confinement costs
    const real = await probeConfinement();
    const off = { version: null, memory: false, cpu: false, pids: false, detail: 'off for the benchmark' } as const;
    const unconfined = await startMs(processDirs, {
      allowWeakIsolation: true,
      confinementReport: { ...real, bwrap: { ...real.bwrap, ok: false }, cgroup: off, level: 'none' },
    });
    overrideConfinement(null);
    const fmt = (n: number) => `${Math.round(n)}`;
    const lost = (x: typeof reload) =>
      `${x.reloads} reloads under load: ${x.lost} lost, ${x.duplicated} duplicated, ${x.delivered} delivered (goal 0)`;
    return [
      {
        name: 'sandbox.inline_ffps',
        value: Math.round(i),
        unit: 'FlowFiles/s',
        detail: `Flip on 1 KiB, batches of ${BATCH}, inline`,
      },
      {
        name: 'sandbox.worker_vs_inline',
        value: Number((w / i).toFixed(3)),
        unit: 'ratio',
        detail: `${fmt(w)} vs ${fmt(i)} FlowFiles/s (goal ≥ 0.6)`,
      },
      {
        name: 'sandbox.worker_vs_piscina',
        value: Number((w / q).toFixed(3)),
        unit: 'ratio',
        detail: `${fmt(w)} vs ${fmt(q)} FlowFiles/s for the same flow with the transform in piscina (default settings), ${IN_FLIGHT} batches of ${BATCH} in flight each (goal ≥ 1.5)`,
      },
      {
        name: 'sandbox.process_vs_inline',
        value: Number((p / i).toFixed(3)),
        unit: 'ratio',
        detail: `${fmt(p)} vs ${fmt(i)} FlowFiles/s, process sandbox under ${held.confinement} (goal ≥ 0.5)`,
      },
      {
        name: 'sandbox.confined_start_ms',
        value: Number(confined.ms.toFixed(1)),
        unit: 'ms',
        detail: `process sandbox from spawn to serving its first batch of ${BATCH} (plugin loaded, instance made), median of 10, under ${confined.confinement}`,
      },
      {
        name: 'sandbox.unconfined_start_ms',
        value: Number(unconfined.ms.toFixed(1)),
        unit: 'ms',
        detail: `the same with confinement off (${unconfined.confinement}): the confinement adds ${(confined.ms - unconfined.ms).toFixed(1)} ms`,
      },
      {
        name: 'sandbox.recovery_vs_spawn',
        value: Number((r.recoveryMs / r.spawnMs).toFixed(3)),
        unit: 'ratio',
        detail: `process sandbox under ${r.confinement}: deadline to serving again ${r.recoveryMs.toFixed(1)} ms (warm spare, plugin reloaded, instance remade) vs a bare Node process ${r.spawnMs.toFixed(1)} ms (goal ≤ 2)`,
      },
      {
        name: 'sandbox.worker_recovery_vs_spawn',
        value: Number((rw.recoveryMs / rw.spawnMs).toFixed(3)),
        unit: 'ratio',
        detail: `worker sandbox: deadline to serving again ${rw.recoveryMs.toFixed(1)} ms vs a bare Worker ${rw.spawnMs.toFixed(1)} ms (goal ≤ 2)`,
      },
      {
        name: 'sandbox.reload_lost',
        value: reload.lost + reload.duplicated,
        unit: 'FlowFiles',
        detail: `process sandbox: ${lost(reload)}`,
      },
      {
        name: 'sandbox.worker_reload_lost',
        value: reloadW.lost + reloadW.duplicated,
        unit: 'FlowFiles',
        detail: `worker sandbox: ${lost(reloadW)}`,
      },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
