import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDataBridgeError, type PluginRegistration, PluginRegistry, type RegistryEvent } from '../../src/index.ts';
import type { Processor, ProcessorInfo } from '../../src/sdk/index.ts';

function processorInfo(name: string): ProcessorInfo {
  return { name, description: `${name} processor`, version: '1.0.0', tags: [], properties: [], relationships: [] };
}

function plugin(id: string, extra: Partial<PluginRegistration> = {}): PluginRegistration {
  const component = `${id
    .split('.')
    .pop()!
    .replace(/^./, (c) => c.toUpperCase())}Proc`;
  const factory = (): Processor => ({ getInfo: () => processorInfo(component), onTrigger() {} });
  return {
    id,
    name: id,
    version: '1.0.0',
    type: 'processor',
    source: 'external',
    processors: { [component]: { factory, info: processorInfo(component) } },
    ...extra,
  };
}

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isDataBridgeError(err), `expected a coded error, got ${err}`);
    assert.equal(err.code, code);
    return true;
  });
}

describe('PluginRegistry', () => {
  test('search by free text ranks id and name matches first', () => {
    const r = new PluginRegistry();
    r.register(plugin('acme.csv', { name: 'CSV tools', description: 'Parses comma-separated files', tags: ['text'] }));
    r.register(plugin('acme.json', { name: 'JSON tools', description: 'Reads JSON; better than csv hacks' }));
    r.register(plugin('acme.zip', { name: 'Zip', description: 'Compression' }));
    assert.deepEqual(
      r.search({ text: 'csv' }).map((p) => p.id),
      ['acme.csv', 'acme.json'],
    );
    assert.deepEqual(
      r.search({ text: 'COMPRESSION' }).map((p) => p.id),
      ['acme.zip'],
    );
    assert.deepEqual(
      r.search({ text: 'JsonProc' }).map((p) => p.id),
      ['acme.json'],
      'component names are searched',
    );
    assert.deepEqual(r.search({ text: 'nothing-like-this' }), []);
  });

  test('search filters by type, tags (all must match), status, enabled and source', () => {
    const r = new PluginRegistry();
    r.register(plugin('a.one', { tags: ['text', 'csv'] }));
    r.register(plugin('a.two', { tags: ['text'], enabled: false }));
    r.register({ ...plugin('a.svc'), type: 'controller-service', processors: {}, tags: ['db'] });
    r.register(plugin('b.builtin', { source: 'builtin' }));
    assert.deepEqual(
      r.search({ tags: ['text'] }).map((p) => p.id),
      ['a.one', 'a.two'],
    );
    assert.deepEqual(
      r.search({ tags: ['text', 'CSV'] }).map((p) => p.id),
      ['a.one'],
    );
    assert.deepEqual(
      r.search({ type: 'controller-service' }).map((p) => p.id),
      ['a.svc'],
    );
    assert.deepEqual(
      r.search({ enabled: false }).map((p) => p.id),
      ['a.two'],
    );
    assert.deepEqual(
      r.search({ status: 'inactive' }).map((p) => p.id),
      ['a.two'],
    );
    assert.deepEqual(
      r.search({ source: 'builtin' }).map((p) => p.id),
      ['b.builtin'],
    );
    assert.deepEqual(
      r.search({ text: 'a.', enabled: true, type: 'processor' }).map((p) => p.id),
      ['a.one'],
    );
  });

  test('a duplicate id or a component provided twice is refused with a code', () => {
    const r = new PluginRegistry();
    r.register(plugin('acme.upper'));
    expectCode(() => r.register(plugin('acme.upper')), 'PLUGIN_DUPLICATE');
    expectCode(
      () => r.register({ ...plugin('other.upper'), processors: r.getRegistration('acme.upper').processors }),
      'COMPONENT_DUPLICATE',
    );
    assert.equal(r.list().length, 1, 'the refused registrations left nothing behind');
  });

  test('bad metadata is refused: version, id, dependency range', () => {
    const r = new PluginRegistry();
    expectCode(() => r.register(plugin('acme.v', { version: 'one' })), 'REGISTRATION_INVALID');
    expectCode(() => r.register(plugin('../evil')), 'REGISTRATION_INVALID');
    expectCode(
      () => r.register(plugin('acme.d', { dependencies: { 'acme.x': 'not a range!' } })),
      'REGISTRATION_INVALID',
    );
    assert.equal(r.list().length, 0);
  });

  test('a missing dependency puts the plugin in error with the reason, and installing it fixes that', () => {
    const r = new PluginRegistry();
    r.register(plugin('acme.app', { dependencies: { 'acme.base': '^1.2.0' } }));
    let app = r.get('acme.app');
    assert.equal(app.status, 'error');
    assert.match(app.statusReason!, /acme\.base \(\^1\.2\.0\) is not installed/);
    r.register(plugin('acme.base', { version: '1.4.0' }));
    app = r.get('acme.app');
    assert.equal(app.status, 'active');
    assert.equal(app.statusReason, null);
  });

  test('an incompatible dependency version is an error naming both versions', () => {
    const r = new PluginRegistry();
    r.register(plugin('acme.base', { version: '2.0.0' }));
    r.register(plugin('acme.app', { dependencies: { 'acme.base': '^1.0.0' } }));
    const app = r.get('acme.app');
    assert.equal(app.status, 'error');
    assert.match(app.statusReason!, /\^1\.0\.0 is not satisfied by the installed 2\.0\.0/);
    expectCode(() => r.createProcessor('AppProc'), 'PLUGIN_FAILED');
  });

  test('dependency cycles are found and reported on every member; dependents of the cycle fail too', () => {
    const r = new PluginRegistry();
    r.register(plugin('c.a', { dependencies: { 'c.b': '*' } }));
    r.register(plugin('c.b', { dependencies: { 'c.c': '*' } }));
    r.register(plugin('c.c', { dependencies: { 'c.a': '*' } }));
    r.register(plugin('c.user', { dependencies: { 'c.a': '*' } }));
    for (const id of ['c.a', 'c.b', 'c.c']) {
      const p = r.get(id);
      assert.equal(p.status, 'error', id);
      assert.match(p.statusReason!, /^dependency cycle: /, id);
      assert.ok(p.statusReason!.includes(id), `${id} is named in ${p.statusReason}`);
    }
    const user = r.get('c.user');
    assert.equal(user.status, 'error');
    assert.match(user.statusReason!, /dependency c\.a is in error: dependency cycle/);
  });

  test('disabling a plugin that enabled plugins depend on is refused naming them, unless forced', () => {
    const r = new PluginRegistry();
    r.register(plugin('acme.base'));
    r.register(plugin('acme.app', { dependencies: { 'acme.base': '1.x' } }));
    r.register(plugin('acme.tool', { dependencies: { 'acme.base': '*' } }));
    assert.throws(
      () => r.setEnabled('acme.base', false),
      (err: unknown) => {
        assert.ok(isDataBridgeError(err, 'PLUGIN_HAS_DEPENDENTS'));
        assert.deepEqual((err.details as { dependents: string[] }).dependents, ['acme.app', 'acme.tool']);
        assert.match(err.message, /acme\.app, acme\.tool/);
        return true;
      },
    );
    assert.equal(r.get('acme.base').enabled, true);
    // a disabled dependent does not hold it back
    r.setEnabled('acme.tool', false);
    expectCode(() => r.setEnabled('acme.base', false), 'PLUGIN_HAS_DEPENDENTS');
    r.setEnabled('acme.base', false, { force: true });
    assert.equal(r.get('acme.base').status, 'inactive');
    assert.equal(r.get('acme.app').status, 'error');
    assert.match(r.get('acme.app').statusReason!, /acme\.base is disabled/);
    r.setEnabled('acme.base', true);
    assert.equal(r.get('acme.app').status, 'active');
  });

  test('removing a plugin with enabled dependents is refused unless forced', () => {
    const r = new PluginRegistry();
    r.register(plugin('acme.base'));
    r.register(plugin('acme.app', { dependencies: { 'acme.base': '*' } }));
    expectCode(() => r.unregister('acme.base'), 'PLUGIN_HAS_DEPENDENTS');
    assert.ok(r.has('acme.base'));
    r.unregister('acme.base', { force: true });
    assert.ok(!r.has('acme.base'));
    assert.equal(r.get('acme.app').status, 'error');
    expectCode(() => r.unregister('acme.base'), 'PLUGIN_NOT_FOUND');
    expectCode(() => r.createProcessor('BaseProc'), 'COMPONENT_UNKNOWN');
  });

  test('instances come fresh from the factory; disabled and failed plugins are refused', () => {
    const r = new PluginRegistry();
    r.register(plugin('acme.upper'));
    const a = r.createProcessor('UpperProc');
    const b = r.createProcessor('UpperProc');
    assert.notEqual(a.instance, b.instance);
    assert.equal(a.pluginId, 'acme.upper');
    r.setEnabled('acme.upper', false);
    expectCode(() => r.createProcessor('UpperProc'), 'PLUGIN_DISABLED');
    r.setEnabled('acme.upper', true);
    r.setLoadState('acme.upper', { failure: 'entry point threw' });
    expectCode(() => r.createProcessor('UpperProc'), 'PLUGIN_FAILED');
    assert.equal(r.get('acme.upper').statusReason, 'entry point threw');
    r.setLoadState('acme.upper', 'loading');
    assert.equal(r.get('acme.upper').status, 'loading');
    r.setLoadState('acme.upper', null);
    assert.equal(r.get('acme.upper').status, 'active');
    assert.equal(r.get('acme.upper').stats.instancesCreated, 2);
  });

  test('statistics count by type, status and source, instances and errors', () => {
    const r = new PluginRegistry();
    r.register(plugin('a.one', { source: 'builtin' }));
    r.register(plugin('a.two', { enabled: false }));
    r.register({ ...plugin('a.svc'), type: 'controller-service', processors: {} });
    r.register(plugin('a.broken', { dependencies: { 'a.gone': '*' } }));
    r.createProcessor('OneProc');
    r.recordError('a.one');
    r.recordError('a.one');
    const s = r.stats();
    assert.equal(s.total, 4);
    assert.equal(s.enabled, 3);
    assert.deepEqual(s.byType, { processor: 3, 'controller-service': 1, 'reporting-task': 0 });
    assert.deepEqual(s.byStatus, { active: 2, inactive: 1, error: 1, loading: 0 });
    assert.deepEqual(s.bySource, { builtin: 1, external: 3 });
    assert.equal(s.instancesCreated, 1);
    assert.equal(s.errors, 2);
    assert.equal(s.components.processors, 3);
  });

  test('every change is an event; a throwing listener harms nobody', () => {
    const r = new PluginRegistry();
    const events: RegistryEvent[] = [];
    r.on(() => {
      throw new Error('bad listener');
    });
    const off = r.on((e) => events.push(e));
    r.register(plugin('acme.base'));
    r.register(plugin('acme.app', { dependencies: { 'acme.base': '*' } }));
    r.setEnabled('acme.base', false, { force: true });
    r.unregister('acme.app');
    const seen = events.map((e) => `${e.type}:${e.pluginId}:${e.plugin?.status ?? '-'}`);
    assert.deepEqual(seen, [
      'registered:acme.base:active',
      'registered:acme.app:active',
      'status:acme.app:error',
      'disabled:acme.base:inactive',
      'unregistered:acme.app:-',
    ]);
    off();
    r.setEnabled('acme.base', true);
    assert.equal(events.length, seen.length, 'no events after unsubscribing');
  });
});
