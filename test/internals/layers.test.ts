/**
 * The folders are the architecture (docs/design.md, "Map"): each folder of
 * src/ may import only the folders below it, and no two folders import each
 * other. This test reads every import of src/ and fails on one that points
 * upward, or sideways between folders of the same layer.
 */

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const SRC = resolve(import.meta.dirname, '../../src');

/** Lowest first: a folder may import its own files and those of a lower layer. `.` is src/'s own files. */
export const LAYERS: readonly (readonly string[])[] = [
  ['sdk'],
  ['.'],
  ['session', 'processors'],
  ['flow'],
  ['sandbox'],
  ['store'],
  ['plugin'],
  ['catalog'],
  ['server', 'testing'],
  ['cli'],
];

/** src/index.ts is the front door: it re-exports from every folder. */
const FRONT_DOOR = 'index.ts';

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The folder of src/ a file belongs to (`.` for src/'s own files), or null outside src/. */
function folderOf(file: string): string | null {
  const rel = relative(SRC, file);
  if (rel.startsWith('..')) return null;
  return rel.includes(sep) ? rel.split(sep)[0]! : '.';
}

/** Every relative module a file imports or re-exports (static and dynamic; type-only imports count too), read by TypeScript's own scanner. */
export function importsOf(source: string): string[] {
  return ts
    .preProcessFile(source, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((name) => name.startsWith('.'));
}

function rank(folder: string): number {
  const i = LAYERS.findIndex((layer) => layer.includes(folder));
  assert.notEqual(i, -1, `src/${folder} is in no layer: add it to LAYERS and to the map in docs/design.md`);
  return i;
}

interface Edge {
  from: string;
  to: string;
  file: string;
  spec: string;
}

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of files(SRC)) {
    if (relative(SRC, file) === FRONT_DOOR) continue;
    const from = folderOf(file)!;
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const to = folderOf(resolve(dirname(file), spec));
      if (to === null || to === from) continue;
      out.push({ from, to, file: relative(SRC, file), spec });
    }
  }
  return out;
}

test('every folder of src/ imports only the layers below it', () => {
  const wrong = edges()
    .filter((e) => rank(e.to) >= rank(e.from))
    .map((e) => `src/${e.file} (${e.from}) imports ${e.spec} (${e.to})`);
  assert.deepEqual(wrong, [], 'upward or sideways imports');
});

test('no two folders of src/ import each other, directly or through others', () => {
  const graph = new Map<string, Set<string>>();
  for (const e of edges()) {
    if (!graph.has(e.from)) graph.set(e.from, new Set());
    graph.get(e.from)!.add(e.to);
  }
  const cycles: string[] = [];
  const visit = (node: string, path: string[]) => {
    if (path.includes(node)) {
      cycles.push([...path.slice(path.indexOf(node)), node].join(' → '));
      return;
    }
    for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
  };
  for (const start of graph.keys()) visit(start, []);
  assert.deepEqual(cycles, []);
});

test('the import reader sees static, type-only, re-exported and dynamic imports, and not template text', () => {
  const source = [
    "import { a } from './a.ts';",
    "import type { B } from '../flow/b.ts';",
    "export { c } from '../plugin/c.ts';",
    "const d = await import('../server/d.ts');",
    "const scaffold = `import { x } from '../src/index.ts';`;",
    "import { readFileSync } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(importsOf(source), ['./a.ts', '../flow/b.ts', '../plugin/c.ts', '../server/d.ts']);
});

test('an upward import is caught: the rule reads flow below plugin', () => {
  assert.ok(rank('flow') < rank('plugin'));
  assert.ok(rank('sandbox') < rank('plugin'));
  assert.ok(rank('store') < rank('plugin'));
  assert.ok(rank('sdk') < rank('.'), 'the SDK imports nothing of the host');
});
