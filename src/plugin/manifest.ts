/**
 * Reading and checking manifest.json. Bad JSON, an oversized file,
 * prototype keys, unknown fields and bad versions are findings, never
 * exceptions.
 */

import { join } from 'node:path';
import { Ajv } from 'ajv';
import semver from 'semver';
import manifestSchema from '../../schemas/plugin-manifest.schema.json' with { type: 'json' };
import { isNormalizedPath, type PluginPermissions } from '../sandbox/grants.ts';
import type { ResourceLimits } from '../sandbox/limits.ts';
import { PluginFileRefused, readPluginFileSync } from './files.ts';
import { type Finding, finding } from './findings.ts';
import type { PluginType, SandboxMode } from './types.ts';

export type { PluginPermissions };
export { isNormalizedPath };

export const MANIFEST_FILE = 'manifest.json';
export const MAX_MANIFEST_BYTES = 64 * 1024;

export interface ComponentDeclaration {
  name: string;
  description?: string;
  tags?: string[];
}

export interface PluginManifest {
  id: string;
  name: string;
  version: string;
  publisher: string;
  author?: string;
  description?: string;
  license?: string;
  type: PluginType;
  entryPoint: string;
  provides: {
    processors?: (string | ComponentDeclaration)[];
    controllerServices?: (string | ComponentDeclaration)[];
    reportingTasks?: (string | ComponentDeclaration)[];
  };
  dependencies?: Record<string, string>;
  engines?: { databridge?: string };
  permissions?: PluginPermissions;
  isolation?: SandboxMode;
  limits?: ResourceLimits;
  tags?: string[];
  config?: Record<string, unknown>;
}

const validateSchema = new Ajv({ allErrors: true, strict: false }).compile<PluginManifest>(manifestSchema);
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** The names of a component list, whichever form each entry takes. */
export function componentNames(list: readonly (string | ComponentDeclaration)[] | undefined): string[] {
  return (list ?? []).map((c) => (typeof c === 'string' ? c : c.name));
}

function pointerKey(k: string): string {
  return k.replaceAll('~', '~0').replaceAll('/', '~1');
}

function prototypeKeys(value: unknown, pointer: string, out: string[]): void {
  if (value === null || typeof value !== 'object') return;
  for (const key of Object.keys(value)) {
    const at = `${pointer}/${pointerKey(key)}`;
    if (FORBIDDEN_KEYS.has(key)) out.push(at);
    prototypeKeys((value as Record<string, unknown>)[key], at, out);
  }
}

/** Checks a parsed manifest; returns it (typed) when it has no error finding. */
const PATH_RULE =
  'a declared path must be absolute and normalized (no "..", ".", "//" or trailing "/"): a relative one would be resolved against the host\'s working directory';

export function checkManifest(raw: unknown): { manifest: PluginManifest | null; findings: Finding[] } {
  const findings: Finding[] = [];
  const where = (pointer: string) => ({ path: MANIFEST_FILE, pointer });
  const proto: string[] = [];
  prototypeKeys(raw, '', proto);
  for (const pointer of proto)
    findings.push(finding('MANIFEST_INVALID', 'prototype keys are not allowed', where(pointer)));
  if (!validateSchema(raw)) {
    for (const e of validateSchema.errors ?? []) {
      if (e.keyword === 'anyOf') continue; // its branches say more
      const extra = e.keyword === 'additionalProperties' ? `/${pointerKey(String(e.params.additionalProperty))}` : '';
      const pointer = e.instancePath + extra;
      if (proto.includes(pointer)) continue;
      const message = e.keyword === 'additionalProperties' ? 'is not a known field' : (e.message ?? 'is invalid');
      if (e.keyword === 'pattern' && pointer.startsWith('/permissions/fs/'))
        findings.push(finding('PATH_INVALID', PATH_RULE, where(pointer)));
      else findings.push(finding('MANIFEST_INVALID', message, where(pointer)));
    }
    return { manifest: null, findings };
  }
  const m = raw;
  if (semver.valid(m.version) === null)
    findings.push(finding('MANIFEST_INVALID', `"${m.version}" is not a semantic version`, where('/version')));
  if (m.id.startsWith('builtin.'))
    findings.push(finding('NAMESPACE_FORBIDDEN', 'the builtin. namespace is reserved', where('/id')));
  if (m.engines?.databridge !== undefined && semver.validRange(m.engines.databridge) === null) {
    findings.push(
      finding('MANIFEST_INVALID', `"${m.engines.databridge}" is not a semver range`, where('/engines/databridge')),
    );
  }
  for (const [dep, range] of Object.entries(m.dependencies ?? {})) {
    if (semver.validRange(range) === null) {
      findings.push(
        finding('MANIFEST_INVALID', `"${range}" is not a semver range`, where(`/dependencies/${pointerKey(dep)}`)),
      );
    }
    if (dep === m.id)
      findings.push(
        finding('MANIFEST_INVALID', 'a plugin cannot depend on itself', where(`/dependencies/${pointerKey(dep)}`)),
      );
  }
  for (const kind of ['read', 'write'] as const) {
    for (const [i, path] of (m.permissions?.fs?.[kind] ?? []).entries()) {
      if (!isNormalizedPath(path))
        findings.push(finding('PATH_INVALID', PATH_RULE, where(`/permissions/fs/${kind}/${i}`)));
    }
  }
  const seen = new Set<string>();
  for (const kind of ['processors', 'controllerServices', 'reportingTasks'] as const) {
    componentNames(m.provides[kind]).forEach((name, i) => {
      if (seen.has(name))
        findings.push(
          finding('MANIFEST_INVALID', `component "${name}" is listed twice`, where(`/provides/${kind}/${i}`)),
        );
      seen.add(name);
    });
  }
  const errors = findings.some((f) => f.severity === 'error');
  return { manifest: errors ? null : m, findings };
}

/** Reads and checks `<dir>/manifest.json`. */
export function readManifest(dir: string): { manifest: PluginManifest | null; findings: Finding[] } {
  const file = join(dir, MANIFEST_FILE);
  const invalid = (message: string) => ({
    manifest: null,
    findings: [finding('MANIFEST_INVALID', message, { path: MANIFEST_FILE })],
  });
  let text: string;
  try {
    // opened without following links or waiting on a pipe, checked on the descriptor (files.ts)
    text = readPluginFileSync(file, MAX_MANIFEST_BYTES);
  } catch (err) {
    if (err instanceof PluginFileRefused)
      return invalid(
        err.reason === 'too-large'
          ? `manifest.json is larger than ${MAX_MANIFEST_BYTES} bytes, the most`
          : `manifest.json is not a regular file: ${err.message}`,
      );
    return invalid(
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'manifest.json is missing'
        : `manifest.json cannot be read: ${(err as Error).message}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return invalid(`not valid JSON: ${(err as Error).message}`);
  }
  return checkManifest(raw);
}

/**
 * The manifest and the entry module must name the same components: what
 * the manifest provides and the module does not export, or the reverse.
 * `label` goes before the names (`processors `), for a message that says
 * which kind.
 */
export function exportsProblem(declared: readonly string[], exported: readonly string[], label = ''): string | null {
  const missing = declared.filter((n) => !exported.includes(n));
  const extra = exported.filter((n) => !declared.includes(n));
  if (missing.length) return `the manifest provides ${label}${missing.join(', ')}, which the module does not export`;
  if (extra.length) return `the module exports ${label}${extra.join(', ')}, which the manifest does not declare`;
  return null;
}
