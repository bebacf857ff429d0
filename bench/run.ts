/**
 * `npm run bench [-- <group>…]`: runs the named groups (all by default),
 * prints a table, and merges the figures into bench/results.json.
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { catalogBench } from './catalog.ts';
import { clusterBench } from './cluster.ts';
import { flowBench } from './flow.ts';
import { sandboxBench } from './sandbox.ts';
import { serverBench } from './server.ts';
import { trustBench } from './trust.ts';
import type { BenchGroup, BenchResult } from './types.ts';

const GROUPS: Record<string, BenchGroup> = {
  flow: flowBench,
  trust: trustBench,
  server: serverBench,
  sandbox: sandboxBench,
  cluster: clusterBench,
  catalog: catalogBench,
};

const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = asked.filter((g) => !Object.hasOwn(GROUPS, g));
if (unknown.length || process.argv.includes('--help')) {
  const out = unknown.length ? process.stderr : process.stdout;
  out.write(
    `${unknown.length ? `unknown group: ${unknown.join(', ')}\n` : ''}usage: npm run bench [-- <group>…]\ngroups: ${Object.keys(GROUPS).join(', ')}\n`,
  );
  process.exit(unknown.length ? 2 : 0);
}
const groups = asked.length ? asked : Object.keys(GROUPS);
const results: BenchResult[] = [];
for (const group of groups) {
  process.stderr.write(`bench ${group}…\n`);
  results.push(...(await GROUPS[group]!()));
}

const width = Math.max(...results.map((r) => r.name.length));
for (const r of results)
  process.stdout.write(`${r.name.padEnd(width)}  ${String(r.value).padStart(10)} ${r.unit.padEnd(12)} ${r.detail}\n`);

const file = join(import.meta.dirname, 'results.json');
const previous: BenchResult[] = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : [];
const merged = [...previous.filter((p) => !results.some((r) => r.name === p.name)), ...results];
writeFileSync(file, `${JSON.stringify(merged, null, 2)}\n`);
process.stderr.write(`wrote ${file}\n`);
