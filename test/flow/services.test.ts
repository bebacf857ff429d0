import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { createFlowController } from '../../src/flow/controller.ts';
import { loadFlow, validateFlow } from '../../src/flow/flow-definition.ts';
import { createPluginManager, type PluginManager } from '../../src/index.ts';
import type { ControllerService, Processor, ReportingTask } from '../../src/sdk/index.ts';
import { helperInfo } from '../../src/testing/runner.ts';
import { registerSink, registerSource, testManager, waitQuiet } from '../flow-harness.ts';
import { tempDir, until } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

/** An inline plugin with a counter service, a processor that stamps with it, and a reporting task. */
function registerInline(manager: PluginManager, events: string[], seen: unknown[]) {
  const counter = (): ControllerService & { next(): number } => {
    let n = 0;
    let step = 1;
    return {
      getInfo: () => ({
        name: 'Counter',
        description: 'counts',
        version: '1.0.0',
        tags: [],
        properties: [{ name: 'Step', description: 'added per call', type: 'integer', defaultValue: '1' }],
      }),
      enable(ctx) {
        step = ctx.getProperty('Step').asInteger();
        events.push(`enable ${ctx.processorId}`);
      },
      disable() {
        events.push('disable');
      },
      next: () => (n += step),
    };
  };
  const stamp = (): Processor => ({
    getInfo: () => ({
      ...helperInfo('Stamp', ['success'], 'required'),
      properties: [{ name: 'Counter', description: 'the counter service', type: 'controllerService', required: true }],
    }),
    onTrigger(ctx, session) {
      const svc = ctx.getControllerService<{ next(): number }>(ctx.getProperty('Counter').asString());
      for (let ff = session.get(); ff; ff = session.get()) {
        session.transfer(session.putAttribute(ff, 'n', String(svc.next())), 'success');
      }
      session.commit();
    },
  });
  const report = (): ReportingTask => ({
    getInfo: () => ({ name: 'Report', description: 'records', version: '1.0.0', tags: [], properties: [] }),
    onTrigger(_ctx, metrics) {
      seen.push(metrics);
      if ((metrics as { queued: number }).queued < 0) throw new Error('impossible');
    },
  });
  manager.registry.register({
    id: 'test.counter',
    name: 'counter',
    version: '2.0.0',
    type: 'controller-service',
    source: 'builtin',
    isolation: 'inline',
    processors: { Stamp: { factory: stamp, info: stamp().getInfo() } },
    controllerServices: { Counter: { factory: counter, info: counter().getInfo() } },
    reportingTasks: { Report: { factory: report, info: report().getInfo() } },
  });
}

test('an inline controller service is enabled for the processors that name it, shared, and disabled after the last stops', async (t) => {
  const manager = await testManager(t);
  const events: string[] = [];
  registerInline(manager, events, []);
  const out: { attributes: Record<string, string> }[] = [];
  const source = registerSource(manager, [{ content: 'a' }, { content: 'b' }]);
  const sink = registerSink(manager, out as never);
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(() => flow.close());
  await loadFlow(flow, {
    controllerServices: [{ id: 'count', type: 'Counter', properties: { Step: '10' } }],
    processors: [
      { id: 'src', type: source },
      { id: 'one', type: 'Stamp', properties: { Counter: 'count' } },
      { id: 'two', type: 'Stamp', properties: { Counter: 'count' } },
      { id: 'sink', type: sink },
    ],
    connections: [
      { source: 'src', relationship: 'success', destination: 'one' },
      { source: 'one', relationship: 'success', destination: 'two' },
      { source: 'two', relationship: 'success', destination: 'sink' },
    ],
  });
  await flow.startAll();
  await until('both FlowFiles stamped twice', () => out.length === 2);
  // one service object behind both processors: four calls of step 10
  assert.deepEqual(out.map((o) => o.attributes.n).sort(), ['30', '40']);
  assert.deepEqual(events, ['enable count']);
  assert.equal(flow.stats().controllerServices[0]!.state, 'enabled');
  assert.equal(flow.stats().controllerServices[0]!.users, 2);
  await flow.stop('one');
  assert.deepEqual(events, ['enable count'], 'still used by "two"');
  await flow.stop('two');
  assert.deepEqual(events, ['enable count', 'disable']);
  assert.equal(flow.stats().controllerServices[0]!.state, 'disabled');
});

test('a processor naming a missing or invalid service is a finding, and it does not start', async (t) => {
  const manager = await testManager(t);
  registerInline(manager, [], []);
  const findings = await validateFlow(
    {
      controllerServices: [{ id: 'bad', type: 'Counter', properties: { Step: 'many' } }],
      processors: [
        { id: 'a', type: 'Stamp', properties: { Counter: 'nope' }, autoTerminate: ['success'] },
        { id: 'b', type: 'Stamp', properties: { Counter: 'bad' }, autoTerminate: ['success'] },
      ],
    },
    manager,
  );
  const errors = findings.filter((f) => f.severity === 'error').map((f) => [f.code, f.pointer]);
  assert.deepEqual(errors, [
    ['FLOW_PROPERTY_INVALID', '/controllerServices/0/properties/Step'],
    ['FLOW_PROPERTY_INVALID', '/processors/0/properties/Counter'],
    ['FLOW_PROPERTY_INVALID', '/processors/1/properties/Counter'],
  ]);
  assert.match(findings[1]!.message, /does not have/);
  const unknown = await validateFlow({ controllerServices: [{ id: 'x', type: 'Nope' }], processors: [] }, manager);
  assert.ok(unknown.some((f) => f.code === 'FLOW_SCHEMA' || f.code === 'FLOW_UNKNOWN_TYPE'));
  const twice = await validateFlow(
    {
      controllerServices: [
        { id: 'count', type: 'Counter' },
        { id: 'count', type: 'Counter' },
      ],
      processors: [{ id: 'gen', type: 'GenerateFlowFile', autoTerminate: ['success'] }],
    },
    manager,
  );
  assert.deepEqual(
    twice.filter((f) => f.severity === 'error').map((f) => [f.code, f.pointer, f.message]),
    [
      [
        'FLOW_DUPLICATE_ID',
        '/controllerServices/1/id',
        'controller service id "count" is also used at /controllerServices/0',
      ],
    ],
  );
});

test('a reporting task runs on its period over the flow metrics; a failing one is alerted and runs again', async (t) => {
  const manager = await testManager(t);
  const seen: { queued: number; processors: Record<string, { out: number }> }[] = [];
  registerInline(manager, [], seen as unknown[]);
  const source = registerSource(manager, [{ content: 'x' }, { content: 'y' }]);
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(() => flow.close());
  flow.createProcessorByType(source, { id: 'src' });
  flow.createProcessorByType('Stamp', { id: 'held' });
  flow.addControllerService({ id: 'count', type: 'Counter' });
  flow.addReportingTask({ id: 'report', type: 'Report', period: '20 ms' });
  flow.connect({ source: 'src', relationship: 'success', destination: 'held' });
  await flow.start('src');
  await flow.startReportingTask('report');
  await until('a report that sees the queued FlowFiles', () => seen.some((m) => m.queued === 2));
  const last = seen.at(-1)!;
  assert.equal(last.processors.src!.out, 2);
  await flow.stopReportingTask('report');
  const runs = flow.stats().reportingTasks[0]!.runs;
  assert.ok(runs >= 1);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(flow.stats().reportingTasks[0]!.runs, runs, 'no run after stop');

  // a run that throws: counted, alerted, the flow goes on
  seen.length = 0;
  const failure = await flow.runReportingTask('report');
  assert.equal(failure, null);
  const throwing = flow.addReportingTask({ id: 'boom', type: 'Report', period: '1 sec' });
  assert.equal(throwing.state, 'stopped');
  const origPush = seen.push.bind(seen);
  seen.push = () => {
    throw new Error('the exporter is down');
  };
  const err = await flow.runReportingTask('boom');
  seen.push = origPush;
  assert.match(err!.message, /exporter is down/);
  const summary = flow.stats().reportingTasks.find((r) => r.id === 'boom')!;
  assert.equal(summary.errors, 1);
  assert.equal(summary.lastError, 'the exporter is down');
  assert.ok(flow.alerts().some((a) => a.code === 'REPORTING_TASK_FAILED' && a.processor === 'boom'));
  assert.equal(flow.queuedCount(), 2, 'the flow kept its FlowFiles');
});

test('a flow made with an older plugin version has its properties migrated, and says so', async (t) => {
  const manager = await testManager(t);
  const seen: Record<string, string>[] = [];
  const casing = (): Processor => ({
    getInfo: () => ({
      ...helperInfo('Casing', ['success'], 'forbidden'),
      inputRequirement: 'allowed',
      version: '3.0.0',
      properties: [
        { name: 'Mode', description: 'UPPER or LOWER', allowedValues: ['UPPER', 'LOWER'], required: true },
        { name: 'Trim', description: 'trim first', type: 'boolean', required: true },
      ],
      migrations: [
        { version: '3.0.0', description: 'Trim is required', add: { Trim: 'false' } },
        { version: '2.0.0', rename: { Case: 'Mode' }, values: { Mode: { upper: 'UPPER', lower: 'LOWER' } } },
        { version: '2.1.0', remove: ['Legacy'] },
      ],
    }),
    onTrigger(ctx) {
      seen.push({ ...ctx.getProperties() });
      ctx.yield();
    },
  });
  manager.registry.register({
    id: 'test.casing',
    name: 'casing',
    version: '3.0.0',
    type: 'processor',
    source: 'builtin',
    isolation: 'inline',
    processors: { Casing: { factory: casing, info: casing().getInfo() } },
  });
  const old = {
    processors: [
      {
        id: 'c',
        type: 'Casing',
        version: '1.4.0',
        properties: { Case: 'lower', Legacy: 'x' },
        autoTerminate: ['success'],
      },
    ],
  };
  const findings = await validateFlow(old, manager);
  assert.deepEqual(
    findings.map((f) => [f.code, f.severity, f.pointer]),
    [['FLOW_PROPERTIES_MIGRATED', 'warning', '/processors/0/version']],
  );
  assert.match(
    findings[0]!.message,
    /1\.4\.0 to 3\.0\.0.*2\.0\.0: renamed "Case" to "Mode".*2\.1\.0: removed "Legacy".*3\.0\.0: Trim is required/,
  );
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(() => flow.close());
  await loadFlow(flow, old);
  await flow.runTasks('c', 1);
  assert.deepEqual(seen[0], { Mode: 'LOWER', Trim: 'false' });

  // made with this version or without one: untouched; made with a newer one: a warning
  const current = await validateFlow(
    { processors: [{ ...old.processors[0]!, version: '3.0.0', properties: { Mode: 'UPPER', Trim: 'true' } }] },
    manager,
  );
  assert.deepEqual(current, []);
  const newer = await validateFlow(
    { processors: [{ ...old.processors[0]!, version: '4.0.0', properties: { Mode: 'UPPER', Trim: 'true' } }] },
    manager,
  );
  assert.deepEqual(
    newer.map((f) => f.code),
    ['FLOW_VERSION_NEWER'],
  );
});

/** A plugin folder signed by a key the store trusts, ready to load: returns the manager's folders. */
async function signedPlugin(t: TestContext, id: string, code: string, manifest: Record<string, unknown>) {
  const root = tempDir(t);
  const dirs = { dataDir: join(root, 'data'), pluginDir: join(root, 'plugins') };
  const key = newKey();
  await sign(makePlugin(dirs.pluginDir, { id, code, manifest }), key);
  await beforeLoad(dirs, (m) => trustKey(m, key));
  return dirs;
}

const SANDBOXED = `
let enabled = 0;
export default {
  controllerServices: {
    Greeting: () => {
      let prefix = '';
      return {
        getInfo: () => ({ name: 'Greeting', description: 'says hello', version: '1.0.0', tags: [],
          properties: [{ name: 'Prefix', description: 'the greeting', defaultValue: 'Hello' }] }),
        enable(ctx) { enabled++; prefix = ctx.getProperty('Prefix').asString(); },
        greet: (name) => prefix + ', ' + name + ' (' + enabled + ')',
      };
    },
  },
  processors: {
    Greet: () => ({
      getInfo: () => ({ name: 'Greet', description: 'greets', version: '1.0.0', tags: [],
        properties: [{ name: 'Greeting Service', description: 'the service', type: 'controllerService', required: true }],
        relationships: [{ name: 'success' }] }),
      async onTrigger(ctx, session) {
        const svc = ctx.getControllerService(ctx.getProperty('Greeting Service').asString());
        for (let ff = session.get(); ff; ff = session.get()) {
          const name = new TextDecoder().decode(await session.read(ff));
          session.transfer(session.write(ff, svc.greet(name)), 'success');
        }
        session.commit();
      },
    }),
  },
  reportingTasks: {
    QueueReport: () => ({
      getInfo: () => ({ name: 'QueueReport', description: 'logs the queue', version: '1.0.0', tags: [], properties: [] }),
      onTrigger(ctx, metrics) {
        if (typeof metrics.queued !== 'number') throw new Error('no metrics');
        ctx.logger.info('queue report', { queued: metrics.queued, where: typeof globalThis.WorkerGlobalScope });
      },
    }),
  },
};
`;

test('a sandboxed plugin: its processors use its own service in the sandbox, its reporting task runs there', async (t) => {
  const dirs = await signedPlugin(t, 'acme.greet', SANDBOXED, {
    type: 'controller-service',
    provides: { processors: ['Greet'], controllerServices: ['Greeting'], reportingTasks: ['QueueReport'] },
  });
  const lines: string[] = [];
  const manager = await createPluginManager({
    ...dirs,
    logLevel: 'info',
    logDestination: { write: (l) => void lines.push(l) },
  });
  t.after(() => manager.shutdown());
  assert.equal(manager.get('acme.greet').isolation, 'process');
  assert.deepEqual(manager.get('acme.greet').components, {
    processors: ['Greet'],
    controllerServices: ['Greeting'],
    reportingTasks: ['QueueReport'],
  });
  const out: { content: Buffer }[] = [];
  const source = registerSource(manager, [{ content: 'Ada' }]);
  const sink = registerSink(manager, out as never);
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(() => flow.close());
  await loadFlow(flow, {
    controllerServices: [{ id: 'hi', type: 'Greeting', properties: { Prefix: 'Hi' } }],
    processors: [
      { id: 'src', type: source },
      { id: 'greet', type: 'Greet', properties: { 'Greeting Service': 'hi' } },
      { id: 'sink', type: sink },
    ],
    connections: [
      { source: 'src', relationship: 'success', destination: 'greet' },
      { source: 'greet', relationship: 'success', destination: 'sink' },
    ],
    reportingTasks: [{ id: 'report', type: 'QueueReport', period: '20 ms' }],
  });
  assert.equal(flow.stats().controllerServices[0]!.state, 'sandboxed');
  await flow.startAll();
  await until('the greeting', () => out.length === 1);
  assert.match(out[0]!.content.toString(), /^Hi, .*\(1\)$/);
  await until('a report logged from the sandbox', () => lines.some((l) => l.includes('"queue report"')));
  const report = JSON.parse(lines.find((l) => l.includes('"queue report"'))!);
  assert.equal(report.plugin, 'acme.greet');
  assert.equal(report.namespace, 'acme.greet', 'logged by the sandbox, not the host');
  assert.equal(report.reportingTask, 'report');
  await waitQuiet(flow);
  assert.equal(flow.stats().reportingTasks[0]!.errors, 0);
});

test('a processor cannot name a service another sandboxed plugin provides', async (t) => {
  const dirs = await signedPlugin(t, 'acme.greet', SANDBOXED, {
    type: 'controller-service',
    provides: { processors: ['Greet'], controllerServices: ['Greeting'], reportingTasks: ['QueueReport'] },
  });
  const manager = await createPluginManager({ ...dirs, logLevel: false });
  t.after(() => manager.shutdown());
  registerInline(manager, [], []);
  const findings = await validateFlow(
    {
      controllerServices: [{ id: 'hi', type: 'Greeting' }],
      processors: [{ id: 's', type: 'Stamp', properties: { Counter: 'hi' }, autoTerminate: ['success'] }],
    },
    manager,
  );
  const errors = findings.filter((f) => f.severity === 'error');
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.pointer, '/processors/0/properties/Counter');
  assert.match(errors[0]!.message, /cannot reach/);
});

const FAULTY = `
export default {
  controllerServices: {
    Broken: () => ({
      getInfo: () => ({ name: 'Broken', description: 'cannot enable', version: '1.0.0', tags: [], properties: [] }),
      enable() { throw new Error('the database is unreachable'); },
    }),
  },
  processors: {
    Uses: () => ({
      getInfo: () => ({ name: 'Uses', description: 'uses Broken', version: '1.0.0', tags: [],
        properties: [{ name: 'Service', description: 'the service', type: 'controllerService', required: true }],
        relationships: [{ name: 'success' }] }),
      onTrigger(ctx) { ctx.yield(); },
    }),
  },
  reportingTasks: {
    Spin: () => ({
      getInfo: () => ({ name: 'Spin', description: 'never returns', version: '1.0.0', tags: [], properties: [] }),
      onTrigger() { for (;;) {} },
    }),
  },
};
`;

test('hostile: a service that cannot enable keeps its processor stopped; a reporting task that loops is cut off; the rest runs on', async (t) => {
  const dirs = await signedPlugin(t, 'acme.faulty', FAULTY, {
    provides: { processors: ['Uses'], controllerServices: ['Broken'], reportingTasks: ['Spin'] },
    limits: { maxExecutionMS: 300 },
  });
  const manager = await createPluginManager({ ...dirs, logLevel: false });
  t.after(() => manager.shutdown());
  const seen: unknown[] = [];
  registerInline(manager, [], seen);
  const out: unknown[] = [];
  const source = registerSource(manager, [{ content: 'a' }]);
  const sink = registerSink(manager, out as never);
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(() => flow.close());
  await loadFlow(flow, {
    controllerServices: [
      { id: 'broken', type: 'Broken' },
      { id: 'count', type: 'Counter' },
    ],
    processors: [
      { id: 'uses', type: 'Uses', properties: { Service: 'broken' }, autoTerminate: ['success'] },
      { id: 'src', type: source },
      { id: 'stamp', type: 'Stamp', properties: { Counter: 'count' } },
      { id: 'sink', type: sink },
    ],
    connections: [
      { source: 'src', relationship: 'success', destination: 'stamp' },
      { source: 'stamp', relationship: 'success', destination: 'sink' },
    ],
    reportingTasks: [
      { id: 'spin', type: 'Spin', period: '50 ms' },
      { id: 'report', type: 'Report', period: '50 ms' },
    ],
  });
  await assert.rejects(flow.start('uses'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'PROCESSOR_START_FAILED');
    assert.match(err.message, /the database is unreachable/);
    return true;
  });
  assert.equal(flow.stats().processors.uses!.state, 'stopped');
  for (const id of ['src', 'stamp', 'sink']) await flow.start(id);
  await flow.startReportingTask('report');
  const spin = await flow.runReportingTask('spin');
  assert.equal((spin as Error & { code?: string }).code, 'SANDBOX_CRASHED');
  assert.match(spin!.message, /deadline of 300 ms/);
  assert.ok(manager.alerts().some((a) => a.code === 'EXECUTION_TIMEOUT' && a.plugin === 'acme.faulty'));
  assert.ok(flow.alerts().some((a) => a.code === 'REPORTING_TASK_FAILED' && a.processor === 'spin'));
  // the inline processor, its service and the other reporting task went on
  await until('the FlowFile through', () => out.length === 1);
  await until('the other report', () => seen.length > 0);
  // and the faulty plugin's sandbox came back: the task is made again there and fails again, cleanly
  const again = await flow.runReportingTask('spin');
  assert.match(again!.message, /deadline/);
});

test('relative path properties of services and reporting tasks are taken from the flow file folder', async (t) => {
  const manager = await testManager(t);
  const seen: string[] = [];
  const info = (name: string) => ({
    name,
    description: 'keeps a folder',
    version: '1.0.0',
    tags: [],
    properties: [{ name: 'Folder', description: 'where', type: 'path' as const, required: true }],
  });
  const user = (): Processor => ({
    getInfo: () => ({
      ...helperInfo('UsesKeeper', ['success'], 'forbidden'),
      properties: [{ name: 'Keeper', description: 'the service', type: 'controllerService', required: true }],
    }),
    onTrigger: (ctx) => ctx.yield(),
  });
  manager.registry.register({
    id: 'test.paths',
    name: 'paths',
    version: '1.0.0',
    type: 'controller-service',
    source: 'builtin',
    isolation: 'inline',
    processors: { UsesKeeper: { factory: user, info: user().getInfo() } },
    controllerServices: {
      Keeper: {
        factory: () => ({
          getInfo: () => info('Keeper'),
          enable: (ctx) => void seen.push(`service ${ctx.getProperty('Folder').asString()}`),
        }),
        info: info('Keeper'),
      },
    },
    reportingTasks: {
      Sweeper: {
        factory: () => ({
          getInfo: () => info('Sweeper'),
          onTrigger: (ctx) => void seen.push(`task ${ctx.getProperty('Folder').asString()}`),
        }),
        info: info('Sweeper'),
      },
    },
  });
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(() => flow.close());
  await loadFlow(
    flow,
    {
      controllerServices: [{ id: 'keep', type: 'Keeper', properties: { Folder: 'archive' } }],
      processors: [{ id: 'u', type: 'UsesKeeper', properties: { Keeper: 'keep' }, autoTerminate: ['success'] }],
      reportingTasks: [{ id: 'sweep', type: 'Sweeper', properties: { Folder: '/already/absolute' } }],
    },
    { baseDir: '/flows/here' },
  );
  await flow.runTasks('u', 1);
  await flow.runReportingTask('sweep');
  assert.deepEqual(seen, ['service /flows/here/archive', 'task /already/absolute']);
});
