/** `/api/alerts`, `/api/events` (Server-Sent Events), `/api/audit`, `/api/sandboxes`, `/api/flow` and `/api/cluster`. */

import type { FastifyPluginAsync } from 'fastify';
import { createError } from '../../errors.ts';
import type { FlowController } from '../../flow/controller.ts';
import type { PluginManager } from '../../plugin/manager.ts';
import type { EventHub } from '../events.ts';
import {
  alertListSchema,
  auditListSchema,
  clusterSchema,
  errorResponses,
  flowSchema,
  noBody,
  textBody,
} from '../responses.ts';
import { errors, sandboxListSchema } from '../schemas.ts';

export interface ObserveRoutesOptions {
  manager: PluginManager;
  flow?: FlowController;
  hub: EventHub;
}

const KEEPALIVE_MS = 15_000;

export const observeRoutes: FastifyPluginAsync<ObserveRoutesOptions> = async (app, { manager, flow, hub }) => {
  // event streams are ended when the server closes, so a stop never waits on them
  const streams = new Set<import('node:http').ServerResponse>();
  app.addHook('onClose', async () => {
    for (const res of streams) res.end();
  });
  app.get<{ Querystring: { limit?: number } }>(
    '/alerts',
    {
      schema: {
        tags: ['observe'],
        summary: 'Recent alerts, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: 500 } },
        },
        response: { 200: { ...alertListSchema, description: 'Recent alerts, newest first' } },
      },
    },
    async (request) => hub.alerts(request.query.limit ?? 100),
  );

  app.get(
    '/events',
    {
      schema: {
        tags: ['observe'],
        summary:
          'A Server-Sent Events stream: plugin status changes, installs, reloads, alerts (send the bearer token; browsers read it with fetch)',
        response: {
          200: textBody(
            'text/event-stream',
            'Events: hello, plugin.registered, plugin.enabled, plugin.disabled, plugin.status, plugin.unregistered, alert; each data line is JSON with `at`',
          ),
        },
      },
    },
    (request, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(`retry: 3000\nevent: hello\ndata: ${JSON.stringify({ at: new Date().toISOString() })}\n\n`);
      const off = hub.subscribe((e) => {
        res.write(
          `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify({ at: e.at, ...((e.data as object) ?? {}) })}\n\n`,
        );
      });
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
      streams.add(res);
      const close = () => {
        clearInterval(keepalive);
        off();
        streams.delete(res);
      };
      request.raw.on('close', close);
      res.on('error', close);
    },
  );

  app.get<{ Querystring: { target?: string; action?: string; before?: number; limit?: number } }>(
    '/audit',
    {
      schema: {
        tags: ['observe'],
        summary: 'The audit log, newest first (page with before=<seq>)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            target: { type: 'string', maxLength: 200 },
            action: { type: 'string', maxLength: 100 },
            before: { type: 'integer', minimum: 1 },
            limit: { type: 'integer', minimum: 1, maximum: 1000 },
          },
        },
        response: { 200: { ...auditListSchema, description: 'Audit entries, newest first' } },
      },
    },
    async (request) => manager.store.listAudit(request.query),
  );

  app.get(
    '/sandboxes',
    {
      schema: {
        tags: ['observe'],
        summary:
          'Running sandboxes: namespace, plugins, mode, state, limits, latest usage, and isolation: its level, what holds (bwrap, cgroup, prlimit, network) and what is missing',
        response: { 200: sandboxListSchema, ...errors(401) },
      },
    },
    async () => {
      const defined = new Set((await manager.namespaces.list()).map((n) => n.name));
      return manager.registry.list().flatMap((p) => {
        const s = manager.sandboxOf(p.id);
        if (!s) return [];
        return [
          {
            namespace: s.namespace,
            defined: defined.has(s.namespace),
            plugins: s.plugins,
            mode: s.mode,
            state: s.state,
            limits: s.limits,
            inFlight: s.inFlight,
            restarts: s.stats.restarts,
            crashes: s.stats.crashes,
            usage: manager.monitor?.latest(s.namespace) ?? null,
            isolation: manager.sandboxIsolation(s),
          },
        ];
      });
    },
  );

  app.get(
    '/flow',
    {
      schema: {
        tags: ['observe'],
        summary: 'The running flow: processors, queues, counts',
        response: { 200: { ...flowSchema, description: 'The flow’s statistics (empty without a flow)' } },
      },
    },
    async () => (flow ? flow.stats() : { processors: {}, connections: [], orphaned: 0 }),
  );

  app.get(
    '/cluster',
    {
      schema: {
        tags: ['observe'],
        summary:
          'The cluster: each node with its address, version and, per plugin, the version and status it runs; drift is where a node differs from the database',
        response: { 200: { ...clusterSchema, description: 'The cluster (enabled: false for a node on its own)' } },
      },
    },
    async () => {
      const cluster = manager.cluster;
      const store = await manager.storeStatus();
      if (!cluster) return { enabled: false, self: null, store, nodes: [], plugins: {} };
      try {
        return { enabled: true, ...(await cluster.view()), store };
      } catch {
        // the database is away: this node knows only itself
        return { enabled: true, self: cluster.id, store, nodes: [], plugins: {} };
      }
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/cluster/nodes/:id',
    {
      schema: {
        tags: ['observe'],
        summary: 'Forget a node that no longer beats (a stopped or lost machine); a live node is refused',
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } },
        response: { 204: noBody('Forgotten'), ...errorResponses(404, 409, 503) },
      },
    },
    async (request, reply) => {
      if (!manager.cluster) throw createError('NODE_NOT_FOUND', { id: request.params.id });
      await manager.cluster.forget(request.params.id);
      await manager.store.appendAudit({
        actor: request.principal ? `token:${request.principal.name}` : `api:${request.ip}`,
        action: 'forget-node',
        target: request.params.id,
        result: 'ok',
        details: null,
      });
      return reply.code(204).send();
    },
  );
};
