/**
 * Scanners. The built-in one parses every JavaScript file and lists the
 * modules it imports, then compares them with the permissions the manifest
 * declares. Scanner hooks add external scanners; one that fails or times
 * out fails the validation, never passes it.
 */

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { parse } from 'acorn';
import { simple } from 'acorn-walk';
import { withDeadline } from '../deadline.ts';
import { MAX_PLUGIN_BYTES, readPluginFileSync } from './files.ts';
import { type Finding, type FindingCode, finding } from './findings.ts';
import type { PluginManifest } from './manifest.ts';

type Permission = 'fs' | 'network' | 'childProcess';

/** Built-in modules that need a permission. */
const NEEDS: Record<string, Permission> = {
  fs: 'fs',
  'fs/promises': 'fs',
  sqlite: 'fs',
  net: 'network',
  tls: 'network',
  dgram: 'network',
  dns: 'network',
  'dns/promises': 'network',
  http: 'network',
  https: 'network',
  http2: 'network',
  child_process: 'childProcess',
  cluster: 'childProcess',
};

/** What the code of a plugin imports. */
export interface ImportReport {
  /** Module specifiers, per file. */
  imports: Record<string, string[]>;
  findings: Finding[];
}

function granted(manifest: PluginManifest, permission: Permission): boolean {
  const p = manifest.permissions;
  if (permission === 'fs') return Boolean(p?.fs?.read?.length || p?.fs?.write?.length);
  return Boolean(p?.[permission]);
}

/** What one file imports: a pure function of its bytes, so it can be cached by sha256. */
interface FileScan {
  imports: string[];
  dynamicImports: number;
  native: string[];
  parseError: string | null;
}

/** Bump when the scan changes, so cached results of older scanners are not used. */
export const IMPORT_SCANNER = 'imports/1';

function scanSource(source: string): FileScan {
  const scan: FileScan = { imports: [], dynamicImports: 0, native: [], parseError: null };
  let ast: ReturnType<typeof parse>;
  try {
    ast = parse(source, { ecmaVersion: 'latest', sourceType: 'module', allowHashBang: true });
  } catch (err) {
    scan.parseError = (err as Error).message;
    return scan;
  }
  const found = new Set<string>();
  const literal = (node: { type: string; value?: unknown } | null | undefined) =>
    node && node.type === 'Literal' && typeof node.value === 'string' ? node.value : undefined;
  simple(ast, {
    ImportDeclaration(n) {
      found.add(String(n.source.value));
    },
    ExportNamedDeclaration(n) {
      if (n.source) found.add(String(n.source.value));
    },
    ExportAllDeclaration(n) {
      found.add(String(n.source.value));
    },
    ImportExpression(n) {
      const s = literal(n.source as { type: string; value?: unknown });
      if (s) found.add(s);
      else scan.dynamicImports++;
    },
    CallExpression(n) {
      if (n.callee.type === 'Identifier' && n.callee.name === 'require') {
        const s = literal(n.arguments[0] as { type: string; value?: unknown });
        if (s) found.add(s);
      }
      if (
        n.callee.type === 'MemberExpression' &&
        n.callee.object.type === 'Identifier' &&
        n.callee.object.name === 'process' &&
        n.callee.property.type === 'Identifier' &&
        (n.callee.property.name === 'binding' || n.callee.property.name === 'dlopen')
      ) {
        scan.native.push(n.callee.property.name);
      }
    },
  });
  scan.imports = [...found].sort();
  return scan;
}

/** Where scan results are kept between validations (the state store). */
export interface ScanCache {
  getScanResult(sha256: string, scanner: string): Promise<unknown>;
  saveScanResult(sha256: string, scanner: string, result: unknown): Promise<void>;
}

/**
 * Lists imports of the plugin's .js/.mjs/.cjs files and checks them against
 * its permissions. With a cache, a file already scanned (same sha256) is not
 * parsed again.
 */
export async function scanImports(
  dir: string,
  files: readonly { path: string; sha256: string }[],
  manifest: PluginManifest,
  cache?: ScanCache,
): Promise<ImportReport> {
  const report: ImportReport = { imports: {}, findings: [] };
  for (const { path, sha256 } of files.filter((f) => /\.(m?js|cjs)$/.test(f.path))) {
    let scan = (await cache?.getScanResult(sha256, IMPORT_SCANNER)) as FileScan | undefined;
    if (!scan) {
      scan = scanSource(readPluginFileSync(join(dir, path), MAX_PLUGIN_BYTES));
      await cache?.saveScanResult(sha256, IMPORT_SCANNER, scan);
    }
    if (scan.parseError) {
      report.findings.push(finding('STRUCTURE_INVALID', `not valid JavaScript: ${scan.parseError}`, { path }));
      continue;
    }
    if (scan.dynamicImports) {
      report.findings.push(
        finding('IMPORT_DYNAMIC', 'import() of a computed name cannot be checked against the permissions', {
          path,
          severity: 'warning',
        }),
      );
    }
    for (const call of scan.native) {
      report.findings.push(finding('PERMISSION_UNDECLARED', `process.${call}() reaches native code`, { path }));
    }
    report.imports[path] = scan.imports;
    for (const spec of scan.imports) {
      const name = spec.startsWith('node:') ? spec.slice(5) : spec;
      const permission = NEEDS[name];
      if (permission && !granted(manifest, permission)) {
        report.findings.push(
          finding('PERMISSION_UNDECLARED', `imports ${spec}, which needs the "${permission}" permission`, {
            path,
            pointer: permission === 'fs' ? '/permissions/fs' : `/permissions/${permission}`,
          }),
        );
      }
    }
  }
  return report;
}

/** An external scanner: a program or a function that looks at a plugin folder. */
export interface ScannerHook {
  name: string;
  /** Default 30 s. A scanner past it fails the validation. */
  timeoutMs?: number;
  /**
   * Either a command (run with the plugin folder as its last argument; it
   * prints `{ "findings": [{ "code", "severity", "path", "message" }] }`
   * and exits 0), or a function.
   */
  command?: readonly string[];
  scan?: (
    dir: string,
    manifest: PluginManifest,
  ) => Promise<readonly { code?: string; severity?: string; path?: string | null; message: string }[]>;
}

function runCommand(command: readonly string[], dir: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(
      command[0]!,
      [...command.slice(1), dir],
      { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, env: {} },
      (err, stdout) => {
        if (err) reject(err.killed ? new Error(`timed out after ${timeoutMs} ms`) : err);
        else {
          try {
            resolve(JSON.parse(stdout));
          } catch {
            reject(new Error('printed something other than {"findings": [...]}'));
          }
        }
      },
    );
  });
}

/** Runs scanner hooks (in parallel); their findings come back as SCANNER_FINDING, their failures as SCANNER_FAILED. */
export async function runScanners(
  hooks: readonly ScannerHook[],
  dir: string,
  manifest: PluginManifest,
): Promise<Finding[]> {
  const results = await Promise.all(
    hooks.map(async (hook): Promise<Finding[]> => {
      const timeoutMs = hook.timeoutMs ?? 30_000;
      try {
        let raw: unknown;
        if (hook.command)
          raw = { findings: undefined, ...((await runCommand(hook.command, dir, timeoutMs)) as object) };
        else if (hook.scan) {
          raw = {
            findings: await withDeadline(hook.scan(dir, manifest), timeoutMs, `timed out after ${timeoutMs} ms`),
          };
        } else throw new Error('has neither a command nor a scan function');
        const list = (raw as { findings?: unknown }).findings;
        if (!Array.isArray(list)) throw new Error('returned no findings list');
        return list.map((f: { code?: string; severity?: string; path?: string | null; message?: string }) =>
          finding(
            'SCANNER_FINDING' as FindingCode,
            `${hook.name}: ${f.code ? `${f.code}: ` : ''}${String(f.message ?? '')}`,
            {
              path: typeof f.path === 'string' ? f.path : null,
              severity: f.severity === 'warning' ? 'warning' : 'error',
            },
          ),
        );
      } catch (err) {
        return [finding('SCANNER_FAILED', `scanner ${hook.name} failed: ${(err as Error).message}`)];
      }
    }),
  );
  return results.flat();
}
