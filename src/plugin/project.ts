/**
 * Plugin source projects: what `databridge plugin new` writes and `plugin
 * build` bundles. A project is a folder with `manifest.json` and
 * `src/index.ts` (or `.js`); building bundles the source and its npm
 * dependencies with esbuild into one ESM file, `dist/<entryPoint>`, beside a
 * copy of the manifest: `dist/` is then an ordinary plugin folder, which
 * sign, pack, validate and install take. A TypeScript source is
 * type-checked first (esbuild only strips types): a misspelt SDK method
 * fails the build with the compiler's message, not the first run.
 */

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { build } from 'esbuild';
import { createError } from '../errors.ts';
import { PACKAGE_ROOT } from '../version.ts';

const SOURCES = ['src/index.ts', 'src/index.mts', 'src/index.js', 'src/index.mjs'];

/** The project's source entry, or null when `dir` is a plain plugin folder. */
export function projectSource(dir: string): string | null {
  if (!existsSync(join(dir, 'manifest.json'))) return null;
  for (const s of SOURCES) if (existsSync(join(dir, s))) return join(dir, s);
  return null;
}

/**
 * The plugin folder a command should act on: `dir` itself, or a project's
 * `dist/` (built first when `buildFirst`).
 */
export async function pluginFolder(dir: string, buildFirst: boolean): Promise<string> {
  if (!projectSource(dir)) return dir;
  if (buildFirst) return (await buildProject(dir)).outDir;
  const out = join(dir, 'dist');
  if (!existsSync(join(out, 'manifest.json')))
    throw createError('USAGE', {
      message: `${dir} is a plugin project: build it first (databridge plugin build ${dir})`,
    });
  return out;
}

/** The options a project without a tsconfig.json is checked with: the ones the scaffold writes. */
export const DEFAULT_COMPILER_OPTIONS = {
  target: 'es2024',
  module: 'nodenext',
  moduleResolution: 'nodenext',
  strict: true,
  noEmit: true,
  allowImportingTsExtensions: true,
  verbatimModuleSyntax: true,
  skipLibCheck: true,
};

/**
 * Type-checks what the build bundles: the entry and what it imports, with
 * the project's tsconfig.json compiler options (its file list is not
 * used: tests are not built). Returns the errors as `file:line: message (TSnnnn)`.
 */
export async function typeCheck(dir: string, source: string): Promise<string[]> {
  const ts = (await import('typescript')).default;
  const configFile = join(dir, 'tsconfig.json');
  let raw: unknown = { compilerOptions: DEFAULT_COMPILER_OPTIONS };
  if (existsSync(configFile)) {
    const read = ts.readConfigFile(configFile, ts.sys.readFile);
    if (read.error) return [format(read.error)];
    raw = read.config;
  }
  const parsed = ts.parseJsonConfigFileContent(raw, ts.sys, dir, { noEmit: true }, configFile);
  const optionErrors = parsed.errors.filter((d) => d.code !== 18003); // 18003: the file list matched nothing
  if (optionErrors.length) return optionErrors.map(format);
  // as the bundle's alias: the SDK is this package's own, installed or not
  const paths = { 'databridge/sdk': [join(PACKAGE_ROOT, 'src', 'sdk', 'index.ts')], ...parsed.options.paths };
  const program = ts.createProgram({ rootNames: [source], options: { ...parsed.options, paths, noEmit: true } });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.category === ts.DiagnosticCategory.Error)
    .map(format);

  function format(d: import('typescript').Diagnostic): string {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return `${message} (TS${d.code})`;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${relative(dir, d.file.fileName)}:${line + 1}: ${message} (TS${d.code})`;
  }
}

export interface BuildResult {
  outDir: string;
  entry: string;
  bytes: number;
  warnings: string[];
}

/** Bundles the project into `dist/`: the entry module (one ESM file, dependencies inlined) and the manifest. */
export async function buildProject(dir: string): Promise<BuildResult> {
  const source = projectSource(dir);
  if (!source) throw createError('USAGE', { message: `${dir} has no manifest.json and src/index.ts` });
  const manifestText = readFileSync(join(dir, 'manifest.json'), 'utf8');
  let manifest: { entryPoint?: unknown };
  try {
    manifest = JSON.parse(manifestText);
  } catch (err) {
    throw createError('USAGE', { message: `${dir}/manifest.json: ${(err as Error).message}` });
  }
  const entryPoint = typeof manifest.entryPoint === 'string' ? manifest.entryPoint : 'index.js';
  const outDir = join(dir, 'dist');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const outfile = join(outDir, entryPoint);
  mkdirSync(dirname(outfile), { recursive: true });
  // after dist/ is cleared: a failed build leaves nothing that could be packed by mistake
  if (/\.m?ts$/.test(source)) {
    const errors = await typeCheck(dir, source);
    if (errors.length) throw createError('BUILD_FAILED', { dir, message: errors.join('; ') });
  }
  let result: Awaited<ReturnType<typeof build>>;
  try {
    result = await build({
      entryPoints: [source],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node24',
      logLevel: 'silent',
      legalComments: 'none',
      // the SDK is this package's own: a project builds without installing it
      alias: { 'databridge/sdk': join(PACKAGE_ROOT, 'src', 'sdk', 'index.ts') },
      absWorkingDir: dir,
      metafile: true,
    });
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors;
    const message = errors?.length
      ? errors.map((e) => (e.location ? `${e.location.file}:${e.location.line}: ${e.text}` : e.text)).join('; ')
      : (err as Error).message;
    throw createError('BUILD_FAILED', { dir, message });
  }
  writeFileSync(join(outDir, 'manifest.json'), manifestText);
  const bytes = Object.values(result.metafile?.outputs ?? {}).reduce((n, o) => n + o.bytes, 0);
  return { outDir, entry: outfile, bytes, warnings: result.warnings.map((w) => w.text) };
}
