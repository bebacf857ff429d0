/**
 * The event hub behind `GET /api/events` (Server-Sent Events) and
 * `GET /api/alerts`: registry changes, installs and reloads, and alerts,
 * each with a sequence number so a client can tell what it missed.
 */

import type { Alert, AlertBus } from '../alerts.ts';
import type { PluginManager } from '../plugin/manager.ts';

export interface HubEvent {
  seq: number;
  type: string;
  at: string;
  data: unknown;
}

const KEEP_ALERTS = 500;

export class EventHub {
  #seq = 0;
  readonly #listeners = new Set<(e: HubEvent) => void>();
  /** The event number each alert went out with; the alerts themselves stay on the bus. */
  readonly #alertSeq = new WeakMap<Alert, number>();
  readonly #bus: AlertBus;
  readonly #unsubscribe: (() => void)[] = [];

  constructor(manager: PluginManager) {
    this.#bus = manager.alertBus;
    this.#unsubscribe.push(
      manager.on((e) => this.publish(`plugin.${e.type}`, { pluginId: e.pluginId, plugin: e.plugin })),
    );
    // what the manager raised while it started (a plugin refused at load) is listed too
    for (const a of manager.alerts()) this.alert(a);
    // the flow and the sandboxes raise their alerts on the manager: one bus
    this.#unsubscribe.push(manager.onAlert((a) => this.alert(a)));
  }

  /** Sends an event to every listener (sequential, each in turn; a listener that throws is dropped). */
  publish(type: string, data: unknown): HubEvent {
    const event = { seq: ++this.#seq, type, at: new Date().toISOString(), data };
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        this.#listeners.delete(listener);
      }
    }
    return event;
  }

  alert(alert: Alert): void {
    const event = this.publish('alert', alert);
    this.#alertSeq.set(alert, event.seq);
  }

  /** The last alerts (at most 500), newest first, each with the number of its event. */
  alerts(limit = 100): (Alert & { seq: number })[] {
    return this.#bus
      .list()
      .filter((a) => this.#alertSeq.has(a))
      .slice(-Math.min(limit, KEEP_ALERTS))
      .reverse()
      .map((a) => ({ ...a, seq: this.#alertSeq.get(a)! }));
  }

  subscribe(listener: (e: HubEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  close(): void {
    for (const off of this.#unsubscribe) off();
    this.#listeners.clear();
  }
}
