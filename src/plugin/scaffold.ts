/**
 * `databridge plugin new`: a TypeScript plugin project that builds, passes
 * `plugin validate` once signed, runs in a flow, and tests itself with
 * `databridge/sdk/testing`, with no edits.
 */

import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createError } from '../errors.ts';
import { PACKAGE_ROOT, PINNED_NODE, VERSION } from '../version.ts';
import { checkManifest } from './manifest.ts';
import { DEFAULT_COMPILER_OPTIONS } from './project.ts';

/** `acme.csv-tools` → `CsvTools`. */
function componentName(id: string): string {
  return id
    .split('.')
    .pop()!
    .split('-')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

/**
 * Where `npm run pack` finds the author's private key: beside the project,
 * never inside it (or in the DataBridge checkout), so no commit takes it along.
 * docs/writing-a-plugin.md makes the key there.
 */
export const KEY_FILE = '../keys/dev.key';

/** What `plugin new --type` makes. */
export type ScaffoldType = 'processor' | 'controller' | 'reporting';
export const SCAFFOLD_TYPES: readonly ScaffoldType[] = ['processor', 'controller', 'reporting'];

interface Template {
  description: string;
  manifestType: 'processor' | 'controller-service' | 'reporting-task';
  provides: Record<string, string[]>;
  source: string;
  test: string;
  flow: Record<string, unknown>;
}

const GENERATE = {
  id: 'generate',
  type: 'GenerateFlowFile',
  properties: { 'Custom Text': 'hello world', 'Batch Size': '1' },
  schedule: { period: '1 sec' },
};
const LOG = { id: 'log', type: 'LogAttribute', properties: { 'Log Payload': 'true' }, autoTerminate: ['success'] };

/** A test that runs the built plugin (dist/) in its real sandbox, after `plugin build`. */
function sandboxTest(title: string, body: string): string {
  return `
test('${title}', { skip: !process.env.DATABRIDGE_SANDBOX_TEST && 'build first, then set DATABRIDGE_SANDBOX_TEST=1' }, async (t) => {
  const dist = new URL('../dist', import.meta.url).pathname;
${body}
});
`;
}

function processorTemplate(name: string, factory: string): Template {
  return {
    description: `${name}: adds a greeting attribute and upper-cases text content`,
    manifestType: 'processor',
    provides: { processors: [name] },
    source: `import { definePlugin, type Processor, Relationships } from 'databridge/sdk';

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
`,
    test: `import { test } from 'node:test';
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
${sandboxTest(
  'the built plugin runs in its process sandbox',
  `  const runner = await TestRunner.forPlugin(dist, '${name}');
  t.after(() => runner.close());
  runner.enqueue('in a sandbox');
  await runner.run();
  runner.flowFiles('success')[0].assertContentEquals('IN A SANDBOX');`,
)}`,
    flow: {
      processors: [GENERATE, { id: 'mine', type: name, properties: { Greeting: 'hello' } }, LOG],
      connections: [
        { source: 'generate', relationship: 'success', destination: 'mine' },
        { source: 'mine', relationship: 'success', destination: 'log' },
      ],
    },
  };
}

function controllerTemplate(name: string, factory: string): Template {
  const service = `${name}Dictionary`;
  const processor = `${name}Lookup`;
  return {
    description: `${service}: a dictionary controller service, and ${processor}, a processor that looks attributes up in it`,
    manifestType: 'controller-service',
    provides: { controllerServices: [service], processors: [processor] },
    source: `import { type ControllerService, definePlugin, type Processor, Relationships } from 'databridge/sdk';

/** What ${service} offers the processors that name it. */
export interface Dictionary extends ControllerService {
  lookup(key: string): string | undefined;
}

/**
 * ${service}: a controller service, made once in the plugin's sandbox and
 * shared by every processor that names it. Enabled before the first of them
 * starts, disabled after the last one stops.
 */
export function ${factory}Dictionary(): Dictionary {
  let entries = new Map<string, string>();
  return {
    getInfo: () => ({
      name: '${service}',
      version: '0.1.0',
      description: 'Looks keys up in a table of key=value entries',
      tags: ['lookup'],
      properties: [
        {
          name: 'Entries',
          description: 'key=value pairs, comma separated',
          required: true,
          defaultValue: 'hello world=bonjour le monde',
          pattern: '[^=,]+=[^,]*(,[^=,]+=[^,]*)*',
        },
      ],
    }),
    enable(ctx) {
      entries = new Map(
        ctx
          .getProperty('Entries')
          .asString()
          .split(',')
          .map((pair) => pair.split('=').map((s) => s.trim()) as [string, string]),
      );
      ctx.logger.info('dictionary enabled', { entries: entries.size });
    },
    disable() {
      entries = new Map();
    },
    lookup: (key) => entries.get(key.trim()),
  };
}

/** ${processor}: sets an attribute to the dictionary's value for the FlowFile's content. */
export function ${factory}Lookup(): Processor {
  return {
    getInfo: () => ({
      name: '${processor}',
      version: '0.1.0',
      description: 'Looks the content up in a ${service} and puts the value in an attribute',
      tags: ['lookup'],
      properties: [
        { name: 'Dictionary', description: 'The ${service} to use', type: 'controllerService', required: true },
        { name: 'Attribute', description: 'Receives the value', required: true, defaultValue: 'translation' },
      ],
      relationships: [Relationships.SUCCESS, { name: 'unmatched', description: 'The dictionary has no such key' }],
    }),
    async onTrigger(ctx, session) {
      const dictionary = ctx.getControllerService<Dictionary>(ctx.getProperty('Dictionary').asString());
      const attribute = ctx.getProperty('Attribute').asString();
      for (let ff = session.get(); ff; ff = session.get()) {
        const value = dictionary.lookup(new TextDecoder().decode(await session.read(ff)));
        if (value === undefined) session.transfer(ff, 'unmatched');
        else session.transfer(session.putAttribute(ff, attribute, value), 'success');
      }
      session.commit();
    },
  };
}

export default definePlugin({
  controllerServices: { ${service}: ${factory}Dictionary },
  processors: { ${processor}: ${factory}Lookup },
});
`,
    test: `import { test } from 'node:test';
import { TestRunner } from 'databridge/sdk/testing';
import { ${factory}Dictionary, ${factory}Lookup } from '../src/index.ts';

test('${processor} finds values in the dictionary', async (t) => {
  const runner = await TestRunner.of(${factory}Lookup, { properties: { Dictionary: 'words' } });
  t.after(() => runner.close());
  runner.addControllerService('words', ${factory}Dictionary, { Entries: 'cat=chat, dog=chien' });
  runner.enqueue('cat').enqueue('bird');
  await runner.run();
  runner.assertTransferCount('success', 1);
  runner.flowFiles('success')[0].assertAttributeEquals('translation', 'chat');
  runner.assertTransferCount('unmatched', 1);
});

test('a processor without its service does not start', async (t) => {
  const runner = await TestRunner.of(${factory}Lookup, { properties: { Dictionary: 'missing' } });
  t.after(() => runner.close());
  await runner.assertNotValid();
});
${sandboxTest(
  'the built plugin runs service and processor in its process sandbox',
  `  const runner = await TestRunner.forPlugin(dist, '${processor}', { properties: { Dictionary: 'words' } });
  t.after(() => runner.close());
  runner.addControllerService('words', '${service}', { Entries: 'cat=chat' });
  runner.enqueue('cat');
  await runner.run();
  runner.flowFiles('success')[0].assertAttributeEquals('translation', 'chat');`,
)}`,
    flow: {
      controllerServices: [
        { id: 'dictionary', type: service, properties: { Entries: 'hello world=bonjour le monde' } },
      ],
      processors: [
        GENERATE,
        { id: 'mine', type: processor, properties: { Dictionary: 'dictionary' }, autoTerminate: ['unmatched'] },
        LOG,
      ],
      connections: [
        { source: 'generate', relationship: 'success', destination: 'mine' },
        { source: 'mine', relationship: 'success', destination: 'log' },
      ],
    },
  };
}

function reportingTemplate(name: string, factory: string): Template {
  return {
    description: `${name}: a reporting task that logs the flow's metrics`,
    manifestType: 'reporting-task',
    provides: { reportingTasks: [name] },
    source: `import { definePlugin, type ReportingTask } from 'databridge/sdk';

/**
 * ${name}: every period the host hands it a snapshot of the flow's metrics;
 * it logs a summary, and a warning when the queues hold too much.
 */
export function ${factory}(): ReportingTask {
  return {
    getInfo: () => ({
      name: '${name}',
      version: '0.1.0',
      description: "Logs the flow's metrics",
      tags: ['metrics'],
      defaultPeriod: '10 sec',
      properties: [
        {
          name: 'Queue Warning',
          description: 'Warn when the queues hold at least this many FlowFiles',
          type: 'integer',
          required: true,
          defaultValue: '1000',
        },
      ],
    }),
    onTrigger(ctx, metrics) {
      const out = Object.values(metrics.processors).reduce((sum, p) => sum + p.out, 0);
      ctx.logger.info('flow metrics', { queued: metrics.queued, queuedBytes: metrics.queuedBytes, out });
      const limit = ctx.getProperty('Queue Warning').asInteger();
      if (metrics.queued >= limit) ctx.logger.warn('the queues are filling up', { queued: metrics.queued, limit });
    },
  };
}

export default definePlugin({ reportingTasks: { ${name}: ${factory} } });
`,
    test: `import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReportingTaskRunner } from 'databridge/sdk/testing';
import { ${factory} } from '../src/index.ts';

test('${name} logs the metrics and warns past the threshold', async (t) => {
  const runner = await ReportingTaskRunner.of(${factory}, { properties: { 'Queue Warning': '10' } });
  t.after(() => runner.close());
  await runner.run({ queued: 3, processors: { a: { in: 0, out: 5, bytesIn: 0, bytesOut: 50, tasks: 1, errors: 0 } } });
  await runner.run({ queued: 20 });
  const logged = runner.logs();
  assert.equal(logged.find((l) => l.message === 'flow metrics')?.fields.out, 5);
  assert.equal(logged.filter((l) => l.level === 'warn').length, 1);
});

test('a threshold that is not a number is refused', async (t) => {
  const runner = await ReportingTaskRunner.of(${factory}, { properties: { 'Queue Warning': 'many' } });
  t.after(() => runner.close());
  await runner.assertNotValid();
});
${sandboxTest(
  'the built plugin reports from its process sandbox',
  `  const runner = await ReportingTaskRunner.forPlugin(dist, '${name}');
  t.after(() => runner.close());
  await runner.run({ queued: 1 });
  assert.deepEqual(runner.errors(), []);
  assert.ok(runner.logs().some((l) => l.message === 'flow metrics'));`,
)}`,
    flow: {
      processors: [GENERATE, LOG],
      connections: [{ source: 'generate', relationship: 'success', destination: 'log' }],
      reportingTasks: [{ id: 'mine', type: name, period: '1 sec' }],
    },
  };
}

export function scaffoldFiles(id: string, type: ScaffoldType = 'processor'): Record<string, string> {
  const name = componentName(id);
  // the factory function: csvTools for CsvTools
  const factory = `${name.charAt(0).toLowerCase()}${name.slice(1)}`;
  const publisher = id.split('.')[0]!;
  const template = { processor: processorTemplate, controller: controllerTemplate, reporting: reportingTemplate }[type](
    name,
    factory,
  );
  const manifest = {
    id,
    name,
    version: '0.1.0',
    publisher,
    description: template.description,
    type: template.manifestType,
    entryPoint: 'index.js',
    provides: template.provides,
    engines: { databridge: `>=${VERSION}` },
    limits: { maxMemoryMB: 64, maxExecutionMS: 5000 },
    tags: [type === 'processor' ? 'text' : type === 'controller' ? 'lookup' : 'metrics'],
  };
  const { source, test, flow } = template;
  const pkg = {
    name: id.replaceAll('.', '-'),
    version: '0.1.0',
    private: true,
    type: 'module',
    description: manifest.description,
    // npm and npx put node_modules/.bin first on PATH: the scripts and bins run on the pinned Node, not the system's
    engines: { node: '>=24' },
    scripts: {
      build: 'databridge plugin build .',
      test: 'databridge plugin build . && DATABRIDGE_SANDBOX_TEST=1 node --test',
      pack: `databridge plugin pack . --key ${KEY_FILE}`,
    },
    devDependencies: { databridge: `file:${PACKAGE_ROOT}`, node: PINNED_NODE },
    allowScripts: { node: true },
  };
  const tsconfig = {
    compilerOptions: DEFAULT_COMPILER_OPTIONS,
    include: ['src', 'test'],
  };
  return {
    'manifest.json': `${JSON.stringify(manifest, null, 2)}\n`,
    'src/index.ts': source,
    'test/index.test.ts': test,
    'flow.json': `${JSON.stringify(flow, null, 2)}\n`,
    'package.json': `${JSON.stringify(pkg, null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify(tsconfig, null, 2)}\n`,
    '.gitignore': 'node_modules/\ndist/\n*.tgz\n*.key\n',
    'README.md': readme(id, manifest.description),
  };
}

function readme(id: string, description: string): string {
  return `# ${id}

${description}.

\`\`\`sh
npm install        # links databridge (the SDK and the test harness) and brings Node ${PINNED_NODE}
npm test           # builds dist/, then runs the tests in-process and in the process sandbox
npm run build      # type-checks src/ and bundles it into dist/ (the same as npx databridge plugin build .)
npm run pack       # signs dist/ with ${KEY_FILE} and writes the .tgz
\`\`\`

npm and npx run these on the Node that \`npm install\` brought, whatever the
system's Node is; \`npx databridge …\` runs any other command the same way.
Make the key once with \`npx databridge keygen --out ../keys/dev\`: it stays
outside the project, so no commit takes it along.

See DataBridge's docs/writing-a-plugin.md.
`;
}

/** Writes a new plugin project into `dir`, which must be missing or empty. Returns the files written. */
export function scaffold(dir: string, id: string, type: ScaffoldType = 'processor'): string[] {
  if (existsSync(dir) && readdirSync(dir).length > 0)
    throw createError('SCAFFOLD_REFUSED', { dir, reason: `${basename(dir)} exists and is not empty` });
  const files = scaffoldFiles(id, type);
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
