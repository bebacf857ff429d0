/**
 * The Fastify application: bearer-token authentication on `/api` and
 * `/metrics`, one JSON error shape, the routes, an OpenAPI document made
 * from the route schemas, a page that renders it, and the web console at
 * `/`. A thin layer over the host API.
 */

import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { createError, DataBridgeError } from '../errors.ts';
import type { FlowController } from '../flow/controller.ts';
import type { PluginManager } from '../plugin/manager.ts';
import { VERSION } from '../version.ts';
import { consoleRoutes } from './console.ts';
import { EventHub } from './events.ts';
import { metricsRoutes } from './metrics.ts';
import { namespaceRoutes, trustRoutes } from './routes/admin.ts';
import { observeRoutes } from './routes/observe.ts';
import { pluginRoutes } from './routes/plugins.ts';
import { tokenMatches } from './token.ts';

export interface ServerOptions {
  manager: PluginManager;
  token: string;
  /** The flow the server runs, if any (`--flow`). */
  flow?: FlowController;
  /** Fastify's request log; off by default (the manager logs what matters). */
  logRequests?: boolean;
}

/** The server and its event hub (which `serve` also feeds). */
export interface Server {
  app: FastifyInstance;
  hub: EventHub;
}

const FASTIFY_CODES: Record<number, string> = {
  413: 'BODY_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  404: 'ROUTE_NOT_FOUND',
  405: 'USAGE',
};

function needsToken(url: string): boolean {
  return url === '/api' || url.startsWith('/api/') || url === '/metrics' || url.startsWith('/metrics?');
}

export async function buildServer(options: ServerOptions): Promise<Server> {
  const { manager, flow } = options;
  const app = Fastify({
    logger: options.logRequests ? { level: 'info' } : false,
    bodyLimit: 1024 * 1024,
    // a stop closes idle keep-alive connections instead of waiting on them
    forceCloseConnections: true,
    // query strings like ?tag=a&tag=b and ?enabled=true are coerced by the schemas
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } },
  });
  const hub = new EventHub(manager);
  app.addHook('onClose', async () => hub.close());

  app.addHook('onRequest', async (request) => {
    if (!needsToken(request.url)) return;
    const m = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '');
    if (!m || !tokenMatches(m[1]!.trim(), options.token)) throw createError('UNAUTHORIZED', {});
  });

  app.setErrorHandler((err, request, reply) => {
    if (err instanceof DataBridgeError) return reply.status(err.status).send({ error: err.toJSON() });
    const e = err as { validation?: unknown; statusCode?: number; message: string; code?: string };
    if (e.validation)
      return reply.status(400).send({ error: { code: 'USAGE', message: e.message, details: e.validation } });
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      return reply
        .status(e.statusCode)
        .send({ error: { code: FASTIFY_CODES[e.statusCode] ?? 'USAGE', message: e.message, details: null } });
    }
    manager.log.error({ err: e.message, url: request.url }, 'request failed');
    return reply
      .status(500)
      .send({ error: { code: 'INTERNAL', message: 'Internal error; the server log has the details', details: null } });
  });

  app.setNotFoundHandler((request, reply) => {
    const err = createError('ROUTE_NOT_FOUND', { method: request.method, url: request.url.split('?')[0]! });
    return reply.status(err.status).send({ error: err.toJSON() });
  });

  // bundles arrive as their bytes; anything else is refused with 415
  app.addContentTypeParser(
    ['application/gzip', 'application/x-gzip', 'application/octet-stream'],
    { parseAs: 'buffer', bodyLimit: manager.config.bundleLimits.maxBytes },
    (_req, body, done) => done(null, body),
  );
  await app.register(multipart, { limits: { fileSize: manager.config.bundleLimits.maxBytes, files: 1, fields: 10 } });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'DataBridge',
        version: VERSION,
        description: 'The plugin host’s REST API. Every /api route needs Authorization: Bearer <token>.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs/api', uiConfig: { persistAuthorization: true } });

  const actor = (request: FastifyRequest) => `api:${request.ip}`;
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['observe'],
        summary: 'Liveness (no token needed); `degraded` while the state store is away',
        security: [],
      },
    },
    async () => {
      const store = await manager.storeStatus();
      return {
        status: store.up ? 'ok' : 'degraded',
        version: VERSION,
        store: { kind: store.kind, up: store.up },
        ...(manager.cluster ? { node: manager.cluster.id } : {}),
      };
    },
  );
  await app.register(pluginRoutes, { prefix: '/api/plugins', manager, flow, actor });
  await app.register(namespaceRoutes, { prefix: '/api/namespaces', manager, actor });
  await app.register(trustRoutes, { prefix: '/api/trust', manager, actor });
  await app.register(observeRoutes, { prefix: '/api', manager, flow, hub });
  await app.register(metricsRoutes, { manager, flow });
  await app.register(consoleRoutes);
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return { app, hub };
}
