/**
 * `databridge plugin new`: a TypeScript plugin project that builds, passes
 * `plugin validate` once signed, runs in a flow, and tests itself with
 * `databridge/sdk/testing`, with no edits.
 */

import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createError } from '../errors.ts';
import { PACKAGE_ROOT, VERSION } from '../version.ts';
import { checkManifest } from './manifest.ts';

/** `acme.csv-tools` → `CsvTools`. */
function componentName(id: string): string {
  return id
    .split('.')
    .pop()!
    .split('-')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

export function scaffoldFiles(id: string): Record<string, string> {
  const name = componentName(id);
  // the processor's factory function: csvTools for CsvTools
  const factory = `${name.charAt(0).toLowerCase()}${name.slice(1)}`;
  const publisher = id.split('.')[0]!;
  const manifest = {
    id,
    name,
    version: '0.1.0',
    publisher,
    description: `${name}: adds a greeting attribute and upper-cases text content`,
    type: 'processor',
    entryPoint: 'index.js',
    provides: { processors: [name] },
    engines: { databridge: `>=${VERSION}` },
    isolation: 'worker',
    limits: { maxMemoryMB: 64, maxExecutionMS: 5000 },
    tags: ['text'],
  };
  const source = `import { definePlugin, type Processor, Relationships } from 'databridge/sdk';

/**
 * ${name}: puts a greeting in an attribute and upper-cases the content.
 * Change it to do what your plugin is for; \`npm test\` tells you it still works.
 */
export function ${factory}(): Processor {
  return {
    getInfo: () => ({
      name: '${name}',
      version: '0.1.0',
      description: 'Adds a greeting attribute and upper-cases text content',
      tags: ['text'],
      properties: [
        {
          name: 'Greeting',
          description: 'The value of the greeting attribute',
          required: true,
          defaultValue: 'hello',
        },
      ],
      relationships: [Relationships.SUCCESS],
    }),
    validate(properties) {
      return properties.Greeting?.trim() ? [] : [{ property: 'Greeting', message: 'must not be blank' }];
    },
    async onTrigger(ctx, session) {
      const greeting = ctx.getProperty('Greeting').asString();
      for (let ff = session.get(); ff; ff = session.get()) {
        const text = new TextDecoder().decode(await session.read(ff));
        ff = session.write(ff, text.toUpperCase());
        session.transfer(session.putAttribute(ff, 'greeting', greeting), 'success');
      }
      session.commit();
    },
  };
}

export default definePlugin({ processors: { ${name}: ${factory} } });
`;
  const test = `import { test } from 'node:test';
import { TestRunner } from 'databridge/sdk/testing';
import { ${factory} } from '../src/index.ts';

test('${name} greets and upper-cases', async (t) => {
  const runner = await TestRunner.of(${factory}, { properties: { Greeting: 'hi' } });
  t.after(() => runner.close());
  runner.enqueue('some text', { filename: 'a.txt' });
  await runner.run();
  runner.assertAllFlowFilesTransferred('success', 1);
  const [out] = runner.flowFiles('success');
  out.assertContentEquals('SOME TEXT');
  out.assertAttributeEquals('greeting', 'hi');
});

test('a blank greeting is refused', async (t) => {
  const runner = await TestRunner.of(${factory}, { properties: { Greeting: ' ' } });
  t.after(() => runner.close());
  await runner.assertNotValid();
});

test('the built plugin runs in its worker sandbox', { skip: !process.env.DATABRIDGE_SANDBOX_TEST && 'build first, then set DATABRIDGE_SANDBOX_TEST=1' }, async (t) => {
  const runner = await TestRunner.forPlugin(new URL('../dist', import.meta.url).pathname, '${name}');
  t.after(() => runner.close());
  runner.enqueue('in a sandbox');
  await runner.run();
  runner.flowFiles('success')[0].assertContentEquals('IN A SANDBOX');
});
`;
  const flow = {
    processors: [
      {
        id: 'generate',
        type: 'GenerateFlowFile',
        properties: { 'Custom Text': 'hello world', 'Batch Size': '1' },
        schedule: { period: '1 sec' },
      },
      { id: 'mine', type: name, properties: { Greeting: 'hello' } },
      { id: 'log', type: 'LogAttribute', properties: { 'Log Payload': 'true' }, autoTerminate: ['success'] },
    ],
    connections: [
      { source: 'generate', relationship: 'success', destination: 'mine' },
      { source: 'mine', relationship: 'success', destination: 'log' },
    ],
  };
  const pkg = {
    name: id.replaceAll('.', '-'),
    version: '0.1.0',
    private: true,
    type: 'module',
    description: manifest.description,
    scripts: {
      build: 'databridge plugin build .',
      test: 'databridge plugin build . && DATABRIDGE_SANDBOX_TEST=1 node --test',
      pack: 'databridge plugin pack . --key ../keys/dev.key',
    },
    devDependencies: { databridge: `file:${PACKAGE_ROOT}` },
  };
  const tsconfig = {
    compilerOptions: {
      target: 'es2024',
      module: 'nodenext',
      moduleResolution: 'nodenext',
      strict: true,
      noEmit: true,
      allowImportingTsExtensions: true,
      verbatimModuleSyntax: true,
      skipLibCheck: true,
    },
    include: ['src', 'test'],
  };
  return {
    'manifest.json': `${JSON.stringify(manifest, null, 2)}\n`,
    'src/index.ts': source,
    'test/index.test.ts': test,
    'flow.json': `${JSON.stringify(flow, null, 2)}\n`,
    'package.json': `${JSON.stringify(pkg, null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify(tsconfig, null, 2)}\n`,
    '.gitignore': 'node_modules/\ndist/\n*.tgz\n',
    'README.md': `# ${id}\n\n${manifest.description}.\n\n\`\`\`sh\nnpm install                      # links databridge (the SDK and the test harness)\nnpx databridge plugin build .    # bundles src/ into dist/ (esbuild)\nnpx databridge plugin test .     # the tests, in-process and in the worker sandbox\nnpx databridge plugin pack . --key <your.key>   # signs dist/ and writes the .tgz\n\`\`\`\n\nSee DataBridge's docs/writing-a-plugin.md.\n`,
  };
}

/** Writes a new processor plugin project into `dir`, which must be missing or empty. Returns the files written. */
export function scaffold(dir: string, id: string): string[] {
  if (existsSync(dir) && readdirSync(dir).length > 0)
    throw createError('SCAFFOLD_REFUSED', { dir, reason: `${basename(dir)} exists and is not empty` });
  const files = scaffoldFiles(id);
  // the id (and the publisher taken from it) must make a manifest install would accept
  const problems = checkManifest(JSON.parse(files['manifest.json']!)).findings.filter((f) => f.severity === 'error');
  if (problems.length)
    throw createError('SCAFFOLD_REFUSED', {
      dir,
      reason: `"${id}" does not make a valid plugin id (lower-case words joined by dots, like acme.csv-tools): ${problems.map((f) => `${f.pointer ? `${f.pointer} ` : ''}${f.message}`).join('; ')}`,
    });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return Object.keys(files);
}
