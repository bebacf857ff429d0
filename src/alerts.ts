/**
 * Alerts: what an operator should know (a failing processor, a plugin
 * fault). One type, one list of codes and one bus that every part raises
 * on: the flow, the sandboxes, the monitor, the cluster node, the guards.
 * The server, the CLI and auto-rollback listen to the same bus.
 */

/** Every alert code the host raises; docs/errors.md lists them and a test keeps the two in step. */
export const ALERT_CODES = [
  'PROCESSOR_FAILED',
  'PROCESSOR_INIT_FAILED',
  'PROCESSOR_STOP_FAILED',
  'REPORTING_TASK_FAILED',
  'PLUGIN_UNAVAILABLE',
  'RELOAD_FAILED',
  'SANDBOX_CRASHED',
  'SANDBOX_PROTOCOL_VIOLATION',
  'MEMORY_LIMIT',
  'EXECUTION_TIMEOUT',
  'CPU_LIMIT',
  'FILE_HANDLES',
  'SANDBOX_FAILED',
  'AUTO_ROLLBACK',
  'CLUSTER_SYNC_FAILED',
  'KEY_REVOKED',
  'RELEASE_REVOKED',
  'VERSION_ROLLBACK',
  'VERSION_CONFLICT',
] as const;

export type AlertCode = (typeof ALERT_CODES)[number];

/** Something an operator should know: a failing processor, a plugin fault. */
export interface Alert {
  code: AlertCode;
  plugin: string;
  /** The processor, controller service or reporting task concerned, else null. */
  processor: string | null;
  message: string;
  /** ISO time it was raised. */
  at: string;
}

/** An alert as it is raised: the time is filled in when not given. */
export type AlertInput = Omit<Alert, 'at'> & { at?: string };

export type AlertListener = (alert: Alert) => void;

export interface AlertBusOptions {
  /** How many alerts are kept for `list()`. Default 1000. */
  keep?: number;
  /** Called for each alert before the listeners (the manager logs it). */
  onRaise?: (alert: Alert) => void;
}

/** Whether a string is one of the alert codes. */
export function isAlertCode(code: string): code is AlertCode {
  return (ALERT_CODES as readonly string[]).includes(code);
}

/**
 * The one alert bus: keeps the last alerts and sends each to every
 * listener (sequential: each in turn, synchronously; one that throws is ignored and does
 * not hide the alert from the others).
 *
 * @example
 * const bus = new AlertBus();
 * const off = bus.on((a) => console.log(a.code, a.message));
 * bus.raise({ code: 'PROCESSOR_FAILED', plugin: 'acme.x', processor: 'p1', message: 'boom' });
 * off();
 */
export class AlertBus {
  readonly #kept: Alert[] = [];
  readonly #listeners = new Set<AlertListener>();
  readonly #keep: number;
  readonly #onRaise: ((alert: Alert) => void) | undefined;

  constructor(options: AlertBusOptions = {}) {
    this.#keep = options.keep ?? 1000;
    this.#onRaise = options.onRaise;
  }

  /**
   * Raises an alert. One given with its time is kept and sent as the same
   * object, so that a part can tell its own alerts among the bus's.
   */
  raise(input: AlertInput): Alert {
    const alert: Alert = input.at === undefined ? { ...input, at: new Date().toISOString() } : (input as Alert);
    this.#kept.push(alert);
    if (this.#kept.length > this.#keep) this.#kept.splice(0, this.#kept.length - this.#keep);
    this.#onRaise?.(alert);
    for (const listener of this.#listeners) {
      try {
        listener(alert);
      } catch {
        // a faulty listener must not hide the alert from the others
      }
    }
    return alert;
  }

  /** Alerts kept so far, oldest first. */
  list(): Alert[] {
    return [...this.#kept];
  }

  /** Listens to alerts; returns the function that stops listening. */
  on(listener: AlertListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
