/** `/api/alerts`, `/api/events` (Server-Sent Events), `/api/audit`, `/api/sandboxes`, `/api/flow` and `/api/cluster`. */

import type { FastifyPluginAsync } from 'fastify';
import { createError } from '../../errors.ts';
import type { FlowController } from '../../flow/controller.ts';
import type { PluginManager } from '../../plugin/manager.ts';
import type { EventHub } from '../events.ts';
import type { ServerLimits } from '../limits.ts';
import {
  alertListSchema,
  auditListSchema,
  clusterSchema,
  errorResponses,
  flowSchema,
  noBody,
  textBody,
} from '../responses.ts';
import { errorSchema, errors, sandboxListSchema } from '../schemas.ts';

export interface ObserveRoutesOptions {
  manager: PluginManager;
  flow?: FlowController;
  hub: EventHub;
  /** Tells when a named token is revoked through this server: its streams end at once. */
  onRevoke: (listener: (name: string) => void) => () => void;
  /** Event streams open at once: in all, and per token. */
  limits: Pick<ServerLimits, 'maxEventStreams' | 'maxEventStreamsPerToken'>;
}

const KEEPALIVE_MS = 15_000;
/** A stream asks again whether its token still names someone at most this often (a revoke made elsewhere). */
const RECHECK_MS = 1000;

export const observeRoutes: FastifyPluginAsync<ObserveRoutesOptions> = async (
  app,
  { manager, flow, hub, onRevoke, limits },
) => {
  // each open event stream, by the token that opened it; ended when the server closes, so a stop never waits on them
  const streams = new Map<import('node:http').ServerResponse, { token: string; close: () => void }>();
  const perToken = new Map<string, number>();
  const offRevoke = onRevoke((name) => {
    for (const [, s] of streams) if (s.token === name) s.close();
  });
  app.addHook('onClose', async () => {
    offRevoke();
    for (const [, s] of streams) s.close();
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
            'Events: hello, plugin.registered, plugin.enabled, plugin.disabled, plugin.status, plugin.unregistered, alert; each data line is JSON with `at`. The stream ends when its token is revoked',
          ),
          429: {
            ...errorSchema,
            description: 'This token has as many event streams open as it may (TOO_MANY_EVENT_STREAMS)',
          },
          503: {
            ...errorSchema,
            description:
              'The server has as many event streams open as it takes (EVENT_STREAMS_FULL), or the state store does not answer (STORE_UNAVAILABLE)',
          },
        },
      },
    },
    (request, reply) => {
      // HEAD (which Fastify routes here too) gets the stream's headers and no stream: it would never end, and hold a subscriber
      if (request.method === 'HEAD')
        return reply.type('text/event-stream; charset=utf-8').header('cache-control', 'no-cache, no-transform').send();
      const token = request.principal?.name ?? '';
      if (streams.size >= limits.maxEventStreams)
        throw createError('EVENT_STREAMS_FULL', { max: limits.maxEventStreams });
      if ((perToken.get(token) ?? 0) >= limits.maxEventStreamsPerToken)
        throw createError('TOO_MANY_EVENT_STREAMS', { max: limits.maxEventStreamsPerToken });
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store, no-transform',
        'x-content-type-options': 'nosniff',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(`retry: 3000\nevent: hello\ndata: ${JSON.stringify({ at: new Date().toISOString() })}\n\n`);
      // a token revoked elsewhere (the CLI, another node) is seen here when the stream next writes
      let checked = Date.now();
      const stillValid = () => {
        if (Date.now() - checked < RECHECK_MS) return;
        checked = Date.now();
        request.server.confirmPrincipal(request).catch(close);
      };
      const off = hub.subscribe((e) => {
        stillValid();
        res.write(
          `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify({ at: e.at, ...((e.data as object) ?? {}) })}\n\n`,
        );
      });
      const keepalive = setInterval(() => {
        stillValid();
        res.write(': keepalive\n\n');
      }, KEEPALIVE_MS);
      let closed = false;
      function close() {
        if (closed) return;
        closed = true;
        clearInterval(keepalive);
        off();
        streams.delete(res);
        const left = (perToken.get(token) ?? 1) - 1;
        if (left > 0) perToken.set(token, left);
        else perToken.delete(token);
        res.end();
      }
      streams.set(res, { token, close });
      perToken.set(token, (perToken.get(token) ?? 0) + 1);
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
        // cluster.ts's node id syntax: a NODE_NOT_FOUND names only an id of that syntax
        params: {
          type: 'object',
          properties: { id: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,100}$' } },
          required: ['id'],
        },
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
