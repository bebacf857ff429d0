/** The TestRunner: one processor under test in a private host and an in-memory flow. */

import { strict as assert } from 'node:assert';
import { createFlowController, type FlowController } from '../flow/controller.ts';
import type { PluginManager } from '../plugin/manager.ts';
import type { ControllerService, Processor, ProcessorInfo, ValidationFinding } from '../sdk/index.ts';
import { inProcessHost, type LogEntry, type PrivateHost, pluginHost, registerService } from './host.ts';

export interface TestRunnerOptions {
  /** Properties to start with (more with setProperty). */
  properties?: Record<string, string>;
  /** FlowFiles per trigger (the processor's batch size). Default: the processor's own default. */
  batchSize?: number;
}

/** A FlowFile that reached a relationship, with assertions. */
export interface MockFlowFile {
  readonly id: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly content: Buffer;
  readonly parentIds: readonly string[];
  /** The content as UTF-8 text. */
  text(): string;
  assertAttributeEquals(name: string, value: string): void;
  assertAttributeExists(name: string): void;
  assertAttributeNotExists(name: string): void;
  assertContentEquals(expected: string | Uint8Array): void;
}

/**
 * What happened to FlowFiles, derived from what each trigger consumed and
 * produced: `CREATE` (a FlowFile from nothing), `FORK` (a child of inputs),
 * `ATTRIBUTES_MODIFIED` and `CONTENT_MODIFIED` (an input sent on changed),
 * `ROUTE` (to a relationship), `DROP` (an input consumed and sent nowhere).
 */
export interface LineageEvent {
  type: 'CREATE' | 'FORK' | 'ATTRIBUTES_MODIFIED' | 'CONTENT_MODIFIED' | 'ROUTE' | 'DROP';
  flowFileId: string;
  relationship?: string;
  parentIds?: string[];
}

const UNDER_TEST = 'under-test';
const SOURCE = 'test-input';
let seq = 0;

interface Input {
  content: Uint8Array;
  attributes: Record<string, string>;
}

/**
 * One processor under test, as NiFi's TestRunner: set properties, enqueue
 * FlowFiles, run triggers, then assert on each relationship's FlowFiles, the
 * lineage, and the validation findings. The processor runs in a real
 * (in-memory) flow of a private host: in this process (`of`), or from a
 * built plugin folder in its own sandbox (`forPlugin`).
 *
 * @example
 * const runner = await TestRunner.of(lookup, { properties: { Dictionary: 'words' } });
 * runner.addControllerService('words', dictionary, { Entries: 'cat=chat' });
 * runner.enqueue('cat');
 * await runner.run();
 * runner.flowFiles('success')[0].assertAttributeEquals('translation', 'chat');
 * await runner.close();
 */
export class TestRunner {
  readonly #host: PrivateHost;
  readonly #manager: PluginManager;
  readonly #type: string;
  readonly #services: {
    id: string;
    service: string | (() => ControllerService);
    properties: Record<string, string>;
  }[] = [];
  readonly #properties: Record<string, string>;
  readonly #batchSize: number | undefined;
  readonly #pending: Input[] = [];
  /** Every input ever enqueued, by the id it got in the flow: for the lineage. */
  readonly #inputs = new Map<string, { attributes: Record<string, string>; content: Buffer }>();
  #flow: FlowController | null = null;
  #errors: Error[] = [];
  /** The processor's relationships, each held in a queue of its own (set when the flow is built). */
  #relationships: string[] = [];

  private constructor(host: PrivateHost, type: string, options: TestRunnerOptions) {
    this.#host = host;
    this.#manager = host.manager;
    this.#type = type;
    this.#properties = { ...(options.properties ?? {}) };
    this.#batchSize = options.batchSize;
  }

  /** A runner for a processor made by `factory`, run in this process. */
  static async of(factory: () => Processor, options: TestRunnerOptions = {}): Promise<TestRunner> {
    const host = await inProcessHost();
    const info = factory().getInfo();
    host.manager.registerBuiltInProcessor(info.name, factory, info);
    return new TestRunner(host, info.name, options);
  }

  /**
   * A runner for processor `component` of the plugin folder `dir` (built:
   * its manifest and entry module), loaded as the host loads it: in a
   * process sandbox, as a host runs every plugin it does not trust (with
   * what confinement this machine has: a plugin's own tests accept weaker
   * isolation); `inline: true` runs it in this process. The folder is
   * copied and signed with a throwaway key trusted for it.
   */
  static async forPlugin(
    dir: string,
    component: string,
    options: TestRunnerOptions & { inline?: boolean } = {},
  ): Promise<TestRunner> {
    return new TestRunner(await pluginHost(dir, options.inline ?? false), component, options);
  }

  /** Where the processor runs: 'inline', 'worker' or 'process'. */
  get isolation(): string {
    const owner = this.#manager.registry.processorOwner(this.#type);
    return owner ? this.#manager.get(owner).isolation : 'inline';
  }

  setProperty(name: string, value: string): this {
    this.#assertNotBuilt('setProperty');
    this.#properties[name] = value;
    return this;
  }

  removeProperty(name: string): this {
    this.#assertNotBuilt('removeProperty');
    delete this.#properties[name];
    return this;
  }

  /**
   * Puts a controller service in the flow under `id`, for the processor's
   * `controllerService` properties to name: made by a factory (in this
   * process) or, for a plugin runner, a service type its plugin provides.
   */
  addControllerService(
    id: string,
    service: string | (() => ControllerService),
    properties: Record<string, string> = {},
  ): this {
    this.#assertNotBuilt('addControllerService');
    this.#services.push({ id, service, properties: { ...properties } });
    return this;
  }

  /** What the processor (and its services) logged so far. */
  logs(): LogEntry[] {
    return this.#host.logs();
  }

  /** Queues a FlowFile for the processor (content as text or bytes). */
  enqueue(content: string | Uint8Array = '', attributes: Record<string, string> = {}): this {
    this.#pending.push({
      content: typeof content === 'string' ? new TextEncoder().encode(content) : content,
      attributes: { ...attributes },
    });
    return this;
  }

  /** The findings of the processor's configuration: property checks and its own validate(). */
  async validate(): Promise<ValidationFinding[]> {
    const flow = await this.#ensure();
    return flow.validateProcessor(UNDER_TEST);
  }

  async assertValid(): Promise<void> {
    const findings = await this.validate();
    assert.deepEqual(findings, [], `the configuration has findings: ${JSON.stringify(findings)}`);
  }

  async assertNotValid(): Promise<void> {
    assert.ok((await this.validate()).length > 0, 'the configuration has no findings');
  }

  /** Runs `times` triggers (default 1). Queued FlowFiles are handed over first. Failures are kept: see errors(). */
  async run(times = 1): Promise<void> {
    const flow = await this.#ensure();
    if (this.#pending.length > 0) {
      const failed = await flow.runTasks(SOURCE, 1);
      if (failed.length) throw failed[0];
    }
    this.#errors.push(...(await flow.runTasks(UNDER_TEST, times)));
  }

  /** What the triggers threw (each rolled its session back). */
  errors(): Error[] {
    return [...this.#errors];
  }

  /** FlowFiles still waiting for the processor (rolled back or not yet taken). */
  queued(): number {
    const flow = this.#flow;
    if (!flow) return this.#pending.length;
    return flow.stats().connections.find((c) => c.source === SOURCE)!.queued + this.#pending.length;
  }

  /** The FlowFiles routed to `relationship`, in order. */
  flowFiles(relationship: string): MockFlowFile[] {
    const flow = this.#build();
    if (!this.#relationships.includes(relationship)) {
      throw new Error(`the processor has no relationship "${relationship}"`);
    }
    return routed(flow, flow.queueContents(), relationship);
  }

  assertTransferCount(relationship: string, count: number): void {
    assert.equal(this.flowFiles(relationship).length, count, `FlowFiles routed to "${relationship}"`);
  }

  /** Every FlowFile went to `relationship` (and `count` of them, when given). */
  assertAllFlowFilesTransferred(relationship: string, count?: number): void {
    const flow = this.#build();
    for (const c of flow.stats().connections) {
      if (c.source !== UNDER_TEST || c.relationship === relationship) continue;
      assert.equal(c.queued, 0, `${c.queued} FlowFile(s) went to "${c.relationship}", not "${relationship}"`);
    }
    if (count !== undefined) this.assertTransferCount(relationship, count);
  }

  /** The lineage of everything the processor did so far. */
  lineage(): LineageEvent[] {
    const flow = this.#build();
    const queues = flow.queueContents();
    const events: LineageEvent[] = [];
    const outputIds = new Set<string>();
    for (const relationship of this.#relationships) {
      for (const ff of routed(flow, queues, relationship)) {
        outputIds.add(ff.id);
        const input = this.#inputs.get(ff.id);
        if (input) {
          if (JSON.stringify(withoutUuid(input.attributes)) !== JSON.stringify(withoutUuid(ff.attributes)))
            events.push({ type: 'ATTRIBUTES_MODIFIED', flowFileId: ff.id });
          if (!input.content.equals(ff.content)) events.push({ type: 'CONTENT_MODIFIED', flowFileId: ff.id });
        } else if (ff.parentIds.some((p) => this.#inputs.has(p))) {
          events.push({ type: 'FORK', flowFileId: ff.id, parentIds: [...ff.parentIds] });
        } else events.push({ type: 'CREATE', flowFileId: ff.id });
        events.push({ type: 'ROUTE', flowFileId: ff.id, relationship });
      }
    }
    const waiting = new Set((queues.get(`${SOURCE}/success/${UNDER_TEST}`) ?? []).map((r) => r.id));
    for (const id of this.#inputs.keys()) {
      if (!outputIds.has(id) && !waiting.has(id)) events.push({ type: 'DROP', flowFileId: id });
    }
    return events;
  }

  /** Stops the processor (onStopped), its sandbox and the private host. */
  async close(): Promise<void> {
    await this.#host.close(this.#flow);
  }

  #assertNotBuilt(what: string): void {
    if (this.#flow) throw new Error(`${what}: set properties before the first run() or validate()`);
  }

  #build(): FlowController {
    if (!this.#flow) throw new Error('call run() (or validate()) first');
    return this.#flow;
  }

  /** The flow: a source handing over what was enqueued, the processor, a held queue per relationship. */
  async #ensure(): Promise<FlowController> {
    if (this.#flow) return this.#flow;
    const flow = await createFlowController({ manager: this.#manager, repository: 'memory' });
    const n = ++seq;
    const inputType = `TestRunnerInput${n}`;
    const holdType = `TestRunnerHold${n}`;
    const pending = this.#pending;
    const inputs = this.#inputs;
    this.#manager.registerBuiltInProcessor(
      inputType,
      () => ({
        getInfo: () => helperInfo(inputType, ['success'], 'forbidden'),
        onTrigger(_ctx, session) {
          const taken = pending.splice(0);
          for (const input of taken) {
            const ff = session.putAllAttributes(session.write(session.create(), input.content), input.attributes);
            inputs.set(ff.id, { attributes: { ...ff.attributes }, content: Buffer.from(input.content) });
            session.transfer(ff, 'success');
          }
          session.commit();
        },
      }),
      helperInfo(inputType, ['success'], 'forbidden'),
    );
    this.#manager.registerBuiltInProcessor(
      holdType,
      () => ({ getInfo: () => helperInfo(holdType, [], 'required'), onTrigger() {} }),
      helperInfo(holdType, [], 'required'),
    );
    for (const s of this.#services) {
      const type = typeof s.service === 'string' ? s.service : registerService(this.#manager, s.service);
      flow.addControllerService({ id: s.id, type, properties: s.properties });
    }
    flow.createProcessorByType(this.#type, {
      id: UNDER_TEST,
      properties: this.#properties,
      schedule: this.#batchSize === undefined ? {} : { batchSize: this.#batchSize },
      penaltyDuration: '0 ms',
      yieldDuration: '0 ms',
    });
    flow.createProcessorByType(inputType, { id: SOURCE });
    flow.connect({ source: SOURCE, relationship: 'success', destination: UNDER_TEST });
    this.#relationships = flow.unconnectedRelationships(UNDER_TEST);
    for (const r of this.#relationships) {
      flow.createProcessorByType(holdType, { id: `sink-${r}` });
      flow.connect({ source: UNDER_TEST, relationship: r, destination: `sink-${r}` });
    }
    this.#flow = flow;
    return flow;
  }
}

/** The FlowFiles held in a relationship's queue, as MockFlowFiles. */
function routed(
  flow: FlowController,
  queues: ReturnType<FlowController['queueContents']>,
  relationship: string,
): MockFlowFile[] {
  const records = queues.get(`${UNDER_TEST}/${relationship}/sink-${relationship}`) ?? [];
  return records.map((r) => mock(r.id, r.attributes, Buffer.from(flow.readContent(r)), r.parentIds));
}

/** The info of a helper processor (a source or a sink around the one under test). */
export function helperInfo(name: string, relationships: string[], input: 'forbidden' | 'required'): ProcessorInfo {
  return {
    name,
    version: '1.0.0',
    description: 'a helper around the processor under test',
    tags: [],
    properties: [],
    relationships: relationships.map((r) => ({ name: r })),
    inputRequirement: input,
  };
}

function withoutUuid(a: Readonly<Record<string, string>>): Record<string, string> {
  const { uuid: _uuid, ...rest } = a;
  return rest;
}

function mock(
  id: string,
  attributes: Readonly<Record<string, string>>,
  content: Buffer,
  parentIds: readonly string[],
): MockFlowFile {
  return {
    id,
    attributes,
    content,
    parentIds,
    text: () => content.toString('utf8'),
    assertAttributeEquals(name, value) {
      assert.equal(attributes[name], value, `attribute "${name}"`);
    },
    assertAttributeExists(name) {
      assert.ok(Object.hasOwn(attributes, name), `attribute "${name}" is missing`);
    },
    assertAttributeNotExists(name) {
      assert.ok(!Object.hasOwn(attributes, name), `attribute "${name}" is present`);
    },
    assertContentEquals(expected) {
      const want = typeof expected === 'string' ? Buffer.from(expected, 'utf8') : Buffer.from(expected);
      assert.ok(content.equals(want), `content differs: got ${JSON.stringify(content.toString('utf8').slice(0, 200))}`);
    },
  };
}
