/**
 * server.list_vs_health: requests per second of GET /api/plugins (200
 * plugins registered) over GET /healthz, the same load generator
 * (autocannon) against the same server process, in one run. Both requests
 * say `Accept-Encoding: gzip, deflate, br`, as the console's browser (and
 * fetch) do, so the list goes gzipped as it does to them;
 * server.list_identity_vs_health is the same for a client that takes no
 * compression (160 KB of JSON per answer: copying the bytes is the cost).
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
    const browser = { 'accept-encoding': 'gzip, deflate, br' };
    const auth = { ...browser, authorization: 'Bearer bench' };
    await load(`${base}/healthz`, browser); // warm up both paths
    await load(`${base}/api/plugins`, auth);
    const health = await load(`${base}/healthz`, browser);
    const list = await load(`${base}/api/plugins`, auth);
    const identity = await load(`${base}/api/plugins`, { authorization: 'Bearer bench' });
    const ratio = (l: Load) => Number((l.rps / health.rps).toFixed(3));
    return [
      {
        name: 'server.list_vs_health',
        value: ratio(list),
        unit: 'ratio',
        detail: `GET /api/plugins (200 plugins, gzip) ${Math.round(list.rps)} req/s, p99 ${list.p99} ms vs GET /healthz ${Math.round(health.rps)} req/s, p99 ${health.p99} ms; Accept-Encoding as a browser's; autocannon 20 connections × 4 s (goal ≥ 0.5)`,
      },
      {
        name: 'server.list_identity_vs_health',
        value: ratio(identity),
        unit: 'ratio',
        detail: `GET /api/plugins without Accept-Encoding (160 KB of JSON) ${Math.round(identity.rps)} req/s, p99 ${identity.p99} ms vs GET /healthz`,
      },
      { name: 'server.list_rps', value: Math.round(list.rps), unit: 'req/s', detail: `p99 ${list.p99} ms` },
      { name: 'server.health_rps', value: Math.round(health.rps), unit: 'req/s', detail: `p99 ${health.p99} ms` },
    ];
  } finally {
    child.kill('SIGTERM');
  }
}
