/** `databridge plugin new`, `plugin build` and `plugin test`: a plugin author's project. */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { createError } from '../errors.ts';
import { buildProject, projectSource } from '../plugin/project.ts';
import { KEY_FILE, SCAFFOLD_TYPES, type ScaffoldType, scaffold } from '../plugin/scaffold.ts';
import { EXIT_REFUSED, print } from './common.ts';

export function registerPluginProject(plugin: Command): void {
  plugin
    .command('new')
    .description('write a new TypeScript plugin project: manifest, source, tests, an example flow, a package.json')
    .argument('<dir>', 'the folder to create (missing or empty)')
    .requiredOption('--id <id>', 'the plugin id, like acme.csv-tools (its first word is the publisher)')
    .option(
      '--type <type>',
      'processor | controller (a controller service and a processor using it) | reporting (a reporting task)',
      'processor',
    )
    .option('--json', 'machine-readable output')
    .action((dir: string, opts: { id: string; type: string; json?: boolean }) => {
      if (!SCAFFOLD_TYPES.includes(opts.type as ScaffoldType))
        throw createError('USAGE', { message: `--type must be one of ${SCAFFOLD_TYPES.join(', ')}` });
      const target = resolve(dir);
      const files = scaffold(target, opts.id, opts.type as ScaffoldType);
      const shown = relative(process.cwd(), target) || '.';
      // where the project's `npm run pack` looks for it
      const key = relative(process.cwd(), resolve(target, KEY_FILE.replace(/\.key$/, '')));
      print(opts.json, { dir: target, id: opts.id, type: opts.type, files }, () =>
        [
          `created ${opts.id} in ${shown}: ${files.join(', ')}`,
          'next:',
          `  (cd ${shown} && npm install)               # links databridge for the SDK and the test harness`,
          `  npx databridge plugin test ${shown}        # builds, then runs its tests`,
          `  npx databridge keygen --out ${key}       # once: a signing key, outside the project`,
          `  npx databridge plugin pack ${shown} --key ${key}.key   # or, in ${shown}: npm run pack`,
          'then trust the key, install the .tgz and run its flow.json: docs/writing-a-plugin.md',
        ].join('\n'),
      );
    });

  plugin
    .command('build')
    .description(
      'type-check a plugin project (tsc, its tsconfig.json) and bundle it (src/index.ts and its npm dependencies) into dist/ with esbuild',
    )
    .argument('[dir]', 'the project folder', '.')
    .option('--json', 'machine-readable output')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const result = await buildProject(resolve(dir));
      print(opts.json, result, () =>
        [
          `built ${relative(process.cwd(), result.entry)} (${(result.bytes / 1024).toFixed(1)} KiB); dist/ is the plugin folder`,
          ...result.warnings.map((w) => `warning: ${w}`),
        ].join('\n'),
      );
    });

  plugin
    .command('test')
    .description('build a plugin project, then run its tests (node --test, on this Node)')
    .argument('[dir]', 'the project folder', '.')
    .action(async (dir: string) => {
      const root = resolve(dir);
      if (!projectSource(root)) throw createError('USAGE', { message: `${dir} has no manifest.json and src/index.ts` });
      if (!existsSync(join(root, 'node_modules', 'databridge')))
        throw createError('USAGE', { message: `${dir}: run npm install there first (it links databridge)` });
      await buildProject(root);
      // a run from inside another node:test run must report as a top-level one
      const { NODE_TEST_CONTEXT: _nested, ...env } = process.env;
      const run = spawnSync(process.execPath, ['--test'], {
        cwd: root,
        stdio: 'inherit',
        env: { ...env, DATABRIDGE_SANDBOX_TEST: '1' },
      });
      if (run.status !== 0) process.exitCode = EXIT_REFUSED;
    });
}
