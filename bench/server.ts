/**
 * server.list_vs_health: requests per second of GET /api/plugins (200
 * plugins registered) over GET /healthz, the same load generator
 * (autocannon) against the same server process, in one run.
 */

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import autocannon from 'autocannon';
import type { BenchResult } from './types.ts';

interface Load {
  rps: number;
  p99: number;
}

async function load(url: string, headers: Record<string, string>): Promise<Load> {
  const result = await autocannon({ url, headers, connections: 20, duration: 4, pipelining: 1 });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { rps: result.requests.average, p99: result.latency.p99 };
}

export async function serverBench(): Promise<BenchResult[]> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'server-child.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', (code) => reject(new Error(`the server exited with ${code}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: 'Bearer bench' };
    await load(`${base}/healthz`, {}); // warm up both paths
    await load(`${base}/api/plugins`, auth);
    const health = await load(`${base}/healthz`, {});
    const list = await load(`${base}/api/plugins`, auth);
    return [
      {
        name: 'server.list_vs_health',
        value: Number((list.rps / health.rps).toFixed(3)),
        unit: 'ratio',
        detail: `GET /api/plugins (200 plugins) ${Math.round(list.rps)} req/s, p99 ${list.p99} ms vs GET /healthz ${Math.round(health.rps)} req/s, p99 ${health.p99} ms; autocannon 20 connections × 4 s (goal ≥ 0.5)`,
      },
      { name: 'server.list_rps', value: Math.round(list.rps), unit: 'req/s', detail: `p99 ${list.p99} ms` },
      { name: 'server.health_rps', value: Math.round(health.rps), unit: 'req/s', detail: `p99 ${health.p99} ms` },
    ];
  } finally {
    child.kill('SIGTERM');
  }
}
