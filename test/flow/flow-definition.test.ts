import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { validateFlow } from '../../src/flow/flow-definition.ts';
import { testManager } from '../flow-harness.ts';

describe('flow definitions', () => {
  test('every problem is reported at once, each with a code and a JSON pointer', async (t) => {
    const manager = await testManager(t);
    const findings = await validateFlow(
      {
        processors: [
          { id: 'gen', type: 'GenerateFlowFile', properties: { 'File Size': 'lots' } },
          { id: 'x', type: 'NoSuchProcessor' },
          { id: 'gen', type: 'LogAttribute' },
          { id: 'split', type: 'SplitText', properties: { 'Line Split Count': '5' } },
        ],
        connections: [
          { source: 'gen', relationship: 'success', destination: 'nowhere' },
          { source: 'gen', relationship: 'sideways', destination: 'split' },
          { source: 'split', relationship: 'splits', destination: 'gen' },
        ],
      },
      manager,
    );
    const got = findings.map((f) => `${f.severity} ${f.code} ${f.pointer}`).sort();
    assert.deepEqual(got, [
      'error FLOW_DANGLING_CONNECTION /connections/0/destination',
      'error FLOW_DUPLICATE_ID /processors/2/id',
      'error FLOW_INPUT_FORBIDDEN /processors/0',
      'error FLOW_PROPERTY_INVALID /processors/0/properties/File Size',
      'error FLOW_UNCONNECTED_RELATIONSHIP /processors/3/autoTerminate',
      'error FLOW_UNCONNECTED_RELATIONSHIP /processors/3/autoTerminate',
      'error FLOW_UNKNOWN_RELATIONSHIP /connections/1/relationship',
      'error FLOW_UNKNOWN_TYPE /processors/1/type',
      'warning FLOW_INPUT_MISSING /processors/3',
    ]);
  });

  test('schema problems come first, with pointers to the field', async (t) => {
    const manager = await testManager(t);
    const findings = await validateFlow(
      {
        processors: [{ id: 'a b', type: 'GenerateFlowFile', schedule: { concurrentTasks: 0 }, colour: 'red' }],
        connections: [{ source: 'a' }],
      },
      manager,
    );
    const got = findings.map((f) => `${f.code} ${f.pointer}`).sort();
    assert.deepEqual(got, [
      'FLOW_SCHEMA /connections/0',
      'FLOW_SCHEMA /connections/0',
      'FLOW_SCHEMA /processors/0/colour',
      'FLOW_SCHEMA /processors/0/id',
      'FLOW_SCHEMA /processors/0/schedule/concurrentTasks',
    ]);
  });

  test('a disabled plugin is a finding, not a crash; a valid flow has none', async (t) => {
    const manager = await testManager(t);
    const flow = {
      processors: [
        { id: 'gen', type: 'GenerateFlowFile' },
        { id: 'h', type: 'HashContent', autoTerminate: ['success', 'failure'] },
      ],
      connections: [{ source: 'gen', relationship: 'success', destination: 'h' }],
    };
    assert.deepEqual(await validateFlow(flow, manager), []);
    await manager.disable('builtin.HashContent');
    const findings = await validateFlow(flow, manager);
    assert.deepEqual(
      findings.map((f) => `${f.code} ${f.pointer}`),
      // the connection to it is not dangling: the processor is there, it cannot run
      ['FLOW_PLUGIN_UNAVAILABLE /processors/1/type'],
    );
  });

  test('an unknown field hides no other finding; an id used twice is a duplicate even when the first is of an unknown type', async (t) => {
    const manager = await testManager(t);
    const findings = await validateFlow(
      {
        bogus: 1,
        processors: [
          { id: 'a', type: 'NoSuchType' },
          { id: 'a', type: 'GenerateFlowFile', properties: { 'File Size': 'lots' }, colour: 'red' },
          { id: 'log', type: 'LogAttribute' },
        ],
        connections: [{ source: 'a', relationship: 'success', destination: 'log' }],
        reportingTasks: [
          { id: 'r', type: 'NoSuchTask', period: '1 s' },
          { id: 'r', type: 'NoSuchTask', period: '1 s' },
        ],
      },
      manager,
    );
    assert.deepEqual(findings.map((f) => `${f.code} ${f.pointer}`).sort(), [
      'FLOW_DUPLICATE_ID /processors/1/id',
      'FLOW_DUPLICATE_ID /reportingTasks/1/id',
      'FLOW_SCHEMA /bogus',
      'FLOW_SCHEMA /processors/1/colour',
      'FLOW_UNCONNECTED_RELATIONSHIP /processors/2/autoTerminate',
      'FLOW_UNKNOWN_TYPE /processors/0/type',
      'FLOW_UNKNOWN_TYPE /reportingTasks/0/type',
    ]);
    const duplicate = findings.find((f) => f.code === 'FLOW_DUPLICATE_ID' && f.pointer === '/processors/1/id')!;
    assert.match(duplicate.message, /also used at \/processors\/0/);
  });
});
