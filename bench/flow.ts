/**
 * flow.durable_vs_memory: FlowFiles per second of GenerateFlowFile →
 * UpdateAttribute → HashContent → (terminated), 1 KiB content, with the
 * durable repositories and in memory, alternating runs in one process.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFlowController } from '../src/flow/controller.ts';
import { createPluginManager } from '../src/index.ts';
import { type BenchResult, median } from './types.ts';

const RUN_MS = 2500;
const WARMUP_MS = 500;

async function throughput(repository: 'durable' | 'memory'): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'databridge-bench-'));
  const manager = await createPluginManager({ dataDir: dir, pluginDir: join(dir, 'plugins'), logLevel: false });
  const flow = await createFlowController({ manager, repository });
  try {
    const batch = { batchSize: 256 };
    flow.createProcessorByType('GenerateFlowFile', {
      id: 'gen',
      properties: { 'File Size': '1 KB', 'Batch Size': '256' },
    });
    flow.createProcessorByType('UpdateAttribute', {
      id: 'tag',
      properties: { stage: 'bench', name: '${filename}' },
      schedule: batch,
    });
    flow.createProcessorByType('HashContent', { id: 'hash', autoTerminate: ['success', 'failure'], schedule: batch });
    flow.connect({ source: 'gen', relationship: 'success', destination: 'tag' });
    flow.connect({ source: 'tag', relationship: 'success', destination: 'hash' });
    await flow.startAll();
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const before = flow.stats().processors.hash!.in;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, RUN_MS));
    const done = flow.stats().processors.hash!.in - before;
    return done / ((performance.now() - t0) / 1000);
  } finally {
    await flow.close();
    await manager.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function flowBench(): Promise<BenchResult[]> {
  const durable: number[] = [];
  const memory: number[] = [];
  for (let i = 0; i < 3; i++) {
    memory.push(await throughput('memory'));
    durable.push(await throughput('durable'));
  }
  const d = median(durable);
  const m = median(memory);
  return [
    {
      name: 'flow.memory_ffps',
      value: Math.round(m),
      unit: 'FlowFiles/s',
      detail: 'in-memory repositories, median of 3',
    },
    {
      name: 'flow.durable_ffps',
      value: Math.round(d),
      unit: 'FlowFiles/s',
      detail: 'journal + content segments, median of 3',
    },
    {
      name: 'flow.durable_vs_memory',
      value: Number((d / m).toFixed(3)),
      unit: 'ratio',
      detail: `GenerateFlowFile → UpdateAttribute → HashContent, 1 KiB, batch 256: ${Math.round(d)} vs ${Math.round(m)} FlowFiles/s (goal ≥ 0.5)`,
    },
  ];
}
