/**
 * `databridge/sdk/testing`: a test harness for plugin authors, after NiFi's
 * TestRunner. Set properties, enqueue FlowFiles, run a number of triggers,
 * then assert on what went to each relationship (attributes, content), on
 * the lineage events, and on the validation findings of bad properties.
 *
 * It runs the processor in a real (in-memory) flow of a private plugin host:
 * in-process for a processor you pass as a factory, or from a plugin folder
 * in a process sandbox, as a host runs a plugin it does not trust.
 *
 * @example
 * import { TestRunner } from 'databridge/sdk/testing';
 * const runner = await TestRunner.of(() => new UpperCase());
 * runner.enqueue('hello', { filename: 'a.txt' });
 * await runner.run();
 * runner.assertAllFlowFilesTransferred('success', 1);
 * runner.flowFiles('success')[0].assertContentEquals('HELLO');
 * await runner.close();
 *
 * @module databridge/sdk/testing
 */

export type { LogEntry } from './host.ts';
export { ReportingTaskRunner, type ReportingTaskRunnerOptions } from './reporting.ts';
export type { LineageEvent, MockFlowFile } from './runner.ts';
export { TestRunner, type TestRunnerOptions } from './runner.ts';
