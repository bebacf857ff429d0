/**
 * The flow's controller services and reporting tasks, as the FlowController
 * holds them. A controller service of an inline plugin is one object here,
 * enabled when the first processor naming it starts and disabled when the
 * last one stops; a sandboxed plugin's service is made in its sandbox (see
 * the sandbox runtime), so here it is only a binding. A reporting task runs
 * on a timer while started, one run at a time.
 */

import type { ControllerService, Logger, ReportingTask, ValidationFinding } from '../sdk/index.ts';
import { StandardProcessContext } from '../session/properties.ts';
import { isSandboxedService, type ServiceBinding } from './host.ts';

export interface ControllerServiceConfig {
  /** Unique among the flow's services; processors name it in their `controllerService` properties. */
  id: string;
  type: string;
  properties?: Readonly<Record<string, string>>;
}

export interface ReportingTaskConfig {
  id: string;
  type: string;
  properties?: Readonly<Record<string, string>>;
  /** Time between runs: `30 sec`, or milliseconds. Default: the task's `defaultPeriod`, else 30 s. */
  period?: string | number;
}

export interface ServiceSummary {
  id: string;
  type: string;
  pluginId: string;
  /** `enabled` while a processor that names it runs (inline services), `sandboxed` when made in a sandbox. */
  state: 'enabled' | 'disabled' | 'sandboxed';
  /** Running processors that name it. */
  users: number;
  findings: ValidationFinding[];
}

export interface ReportingTaskSummary {
  id: string;
  type: string;
  pluginId: string;
  state: 'running' | 'stopped';
  periodMs: number;
  runs: number;
  errors: number;
  lastError: string | null;
  lastRun: string | null;
  findings: ValidationFinding[];
}

/** @internal */
/** The sandboxed services among those a processor names, as its sandbox makes them (an inline processor names none). */
export function bindings(services: readonly ServiceNode[]): ServiceBinding[] {
  return services.filter((s) => s.sandboxed).map((s) => s.binding());
}

export class ServiceNode {
  readonly id: string;
  readonly type: string;
  readonly pluginId: string;
  readonly instance: ControllerService;
  readonly properties: Readonly<Record<string, string>>;
  readonly findings: ValidationFinding[];
  readonly #logger: Logger;
  users = 0;
  #enabling: Promise<void> | null = null;

  constructor(init: {
    id: string;
    type: string;
    pluginId: string;
    instance: ControllerService;
    properties: Readonly<Record<string, string>>;
    findings: ValidationFinding[];
    logger: Logger;
  }) {
    this.id = init.id;
    this.type = init.type;
    this.pluginId = init.pluginId;
    this.instance = init.instance;
    this.properties = init.properties;
    this.findings = init.findings;
    this.#logger = init.logger;
  }

  /** Made in its plugin's sandbox: processors of that plugin reach it there. */
  get sandboxed(): boolean {
    return isSandboxedService(this.instance);
  }

  binding(): ServiceBinding {
    if (!isSandboxedService(this.instance)) throw new Error(`controller service ${this.id} is not sandboxed`);
    return {
      id: this.id,
      pluginId: this.instance.pluginId,
      component: this.instance.component,
      properties: { ...this.properties },
    };
  }

  /**
   * One more user: the first enables an inline service (a failed enable is
   * thrown to that user and not counted); a sandboxed one is only counted,
   * its sandbox enables it.
   */
  async acquire(): Promise<void> {
    this.users++;
    if (this.sandboxed) return;
    if (!this.#enabling) {
      const ctx = new StandardProcessContext({
        processorId: this.id,
        logger: this.#logger,
        specs: this.instance.getInfo().properties,
        properties: this.properties,
      });
      this.#enabling = Promise.resolve(this.instance.enable?.(ctx));
    }
    try {
      await this.#enabling;
    } catch (err) {
      this.users--;
      this.#enabling = null;
      throw new Error(`controller service ${this.id} could not be enabled: ${(err as Error).message}`);
    }
  }

  /** One user fewer: the last disables the service (a throwing disable() is logged). */
  async release(): Promise<void> {
    if (this.users === 0 || --this.users > 0 || this.sandboxed) return;
    this.#enabling = null;
    try {
      await this.instance.disable?.();
    } catch (err) {
      this.#logger.warn('controller service disable() failed', { err: (err as Error).message });
    }
  }

  summary(): ServiceSummary {
    return {
      id: this.id,
      type: this.type,
      pluginId: this.pluginId,
      state: this.sandboxed ? 'sandboxed' : this.users > 0 ? 'enabled' : 'disabled',
      users: this.users,
      findings: [...this.findings],
    };
  }
}

/** @internal */
export class ReportingNode {
  readonly id: string;
  readonly type: string;
  readonly pluginId: string;
  task: ReportingTask;
  readonly context: StandardProcessContext;
  readonly periodMs: number;
  readonly findings: ValidationFinding[];
  state: 'running' | 'stopped' = 'stopped';
  initialized = false;
  running: Promise<void> | null = null;
  timer: NodeJS.Timeout | null = null;
  readonly stats = { runs: 0, errors: 0, lastError: null as string | null, lastRun: null as string | null };

  constructor(init: {
    id: string;
    type: string;
    pluginId: string;
    task: ReportingTask;
    properties: Readonly<Record<string, string>>;
    periodMs: number;
    findings: ValidationFinding[];
    logger: Logger;
  }) {
    this.id = init.id;
    this.type = init.type;
    this.pluginId = init.pluginId;
    this.task = init.task;
    this.periodMs = init.periodMs;
    this.findings = init.findings;
    this.context = new StandardProcessContext({
      processorId: init.id,
      logger: init.logger,
      specs: init.task.getInfo().properties,
      properties: init.properties,
    });
  }

  summary(): ReportingTaskSummary {
    return {
      id: this.id,
      type: this.type,
      pluginId: this.pluginId,
      state: this.state,
      periodMs: this.periodMs,
      ...this.stats,
      findings: [...this.findings],
    };
  }
}
