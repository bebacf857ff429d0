/** `GET /metrics`: Prometheus text, gathered at scrape time from the registry and the flow. */

import type { FastifyPluginAsync } from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';
import type { FlowController } from '../flow/controller.ts';
import type { PluginManager } from '../plugin/manager.ts';
import { PLUGIN_STATUSES } from '../plugin/types.ts';
import { textBody } from './responses.ts';

export interface MetricsOptions {
  manager: PluginManager;
  flow?: FlowController;
  /** Installed plugins with a newer release in the catalogs, at the last look. */
  updatesAvailable?: () => number;
}

export const metricsRoutes: FastifyPluginAsync<MetricsOptions> = async (app, { manager, flow, updatesAvailable }) => {
  const registry = new Registry();
  new Gauge({
    name: 'databridge_plugin_updates_available',
    help: 'Installed plugins with a newer release in the catalogs, at the last look for updates',
    registers: [registry],
    collect() {
      this.set(updatesAvailable?.() ?? 0);
    },
  });
  const seen = new Set(manager.list().map((p) => p.id));
  new Gauge({
    name: 'databridge_plugins',
    help: 'Registered plugins by status',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      const byStatus = manager.stats().byStatus;
      for (const s of PLUGIN_STATUSES) this.set({ status: s }, byStatus[s]);
    },
  });
  new Gauge({
    name: 'databridge_store_up',
    help: 'Whether the state store answers (1) or not (0)',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      const store = await manager.storeStatus();
      this.reset();
      this.set({ kind: store.kind }, store.up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'databridge_cluster_nodes',
    help: 'Nodes of the cluster whose heartbeat is recent (1 for a node on its own)',
    registers: [registry],
    async collect() {
      const view = await manager.cluster?.view().catch(() => null);
      this.set(manager.cluster ? (view?.nodes.filter((n) => n.alive).length ?? 0) : 1);
    },
  });
  const loads = new Counter({ name: 'databridge_plugin_loads_total', help: 'Plugins loaded', registers: [registry] });
  const reloads = new Counter({
    name: 'databridge_plugin_reloads_total',
    help: 'Plugins loaded again (reload or upgrade)',
    registers: [registry],
  });
  const failures = new Counter({
    name: 'databridge_validation_failures_total',
    help: 'Plugins that failed validation or loading, by finding code',
    labelNames: ['code'],
    registers: [registry],
  });
  new Gauge({
    name: 'databridge_sandbox_restarts',
    help: 'Sandbox restarts after a crash or a limit, over all plugins',
    registers: [registry],
    collect() {
      this.set(manager.list().reduce((n, p) => n + (manager.sandboxOf(p.id)?.stats.restarts ?? 0), 0));
    },
  });
  const perPlugin = (name: string, help: string, key: 'in' | 'out' | 'tasks' | 'errors' | 'bytesIn' | 'bytesOut') =>
    new Gauge({
      name,
      help,
      labelNames: ['plugin'],
      registers: [registry],
      collect() {
        this.reset();
        const totals = new Map<string, number>();
        for (const p of Object.values(flow?.stats().processors ?? {}))
          totals.set(p.pluginId, (totals.get(p.pluginId) ?? 0) + p[key]);
        for (const [plugin, n] of totals) this.set({ plugin }, n);
      },
    });
  perPlugin('databridge_plugin_flowfiles_in', 'FlowFiles taken in by committed sessions, per plugin', 'in');
  perPlugin('databridge_plugin_flowfiles_out', 'FlowFiles sent out by committed sessions, per plugin', 'out');
  perPlugin('databridge_plugin_bytes_in', 'Bytes taken in, per plugin', 'bytesIn');
  perPlugin('databridge_plugin_tasks', 'Tasks run, per plugin', 'tasks');
  perPlugin('databridge_plugin_errors', 'Failed tasks, per plugin', 'errors');
  const sandboxGauge = (
    name: string,
    help: string,
    pick: (s: ReturnType<PluginManager['statsOf']>['sandbox']) => number | null | undefined,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['plugin', 'mode'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of manager.list()) {
          const sandbox = manager.sandboxOf(p.id) ? manager.statsOf(p.id).sandbox : null;
          const value = sandbox ? pick(sandbox) : null;
          if (value !== null && value !== undefined) this.set({ plugin: p.id, mode: sandbox!.mode }, value);
        }
      },
    });
  sandboxGauge(
    'databridge_plugin_cpu_percent',
    'CPU of the plugin’s sandbox, percent of one core over the last interval',
    (s) => s?.usage?.cpuPercent,
  );
  sandboxGauge(
    'databridge_plugin_memory_bytes',
    'Memory of the plugin’s sandbox as the host measures it: a process sandbox’s cgroup charge (heap and off-heap), a worker’s V8 heap',
    (s) => s?.usage?.memoryUsed,
  );
  sandboxGauge('databridge_plugin_sandbox_restarts', 'Restarts of the plugin’s sandbox', (s) => s?.restarts);
  new Gauge({
    name: 'databridge_queued_flowfiles',
    help: 'FlowFiles held in the flow’s queues',
    registers: [registry],
    collect() {
      this.set(flow?.queuedCount() ?? 0);
    },
  });
  const off = manager.on((e) => {
    if (e.type === 'registered') {
      if (seen.has(e.pluginId)) reloads.inc();
      else loads.inc();
      seen.add(e.pluginId);
    }
    if (e.type === 'status' && e.plugin?.status === 'error' && e.plugin.statusReason) {
      for (const code of /^([A-Z_, ]+):/.exec(e.plugin.statusReason)?.[1]?.split(', ') ?? ['UNKNOWN'])
        failures.inc({ code });
    }
  });
  app.addHook('onClose', async () => off());
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['observe'],
        summary: 'Prometheus metrics (needs the bearer token)',
        response: { 200: textBody('text/plain', 'Prometheus text exposition format 0.0.4') },
      },
    },
    async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
};
