/**
 * The Fastify application: authentication on `/api`, JSON errors of one
 * shape, and the routes. A thin layer over the host API.
 */

import Fastify, { type FastifyInstance } from 'fastify';
import { createError, DataBridgeError } from '../errors.ts';
import type { PluginManager } from '../plugin/manager.ts';
import { VERSION } from '../version.ts';
import { registerPluginRoutes } from './routes/plugins.ts';
import { tokenMatches } from './token.ts';

export interface ServerOptions {
  manager: PluginManager;
  token: string;
  /** Fastify's request log; off by default (the manager logs what matters). */
  logRequests?: boolean;
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logRequests ? { level: 'info' } : false, bodyLimit: 1024 * 1024 });

  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/api/') && request.url !== '/api') return;
    const header = request.headers.authorization ?? '';
    const m = /^Bearer (.+)$/i.exec(header);
    if (!m || !tokenMatches(m[1]!.trim(), options.token)) throw createError('UNAUTHORIZED', {});
  });

  app.setErrorHandler((err, _request, reply) => {
    if (err instanceof DataBridgeError) return reply.status(err.status).send({ error: err.toJSON() });
    const e = err as { validation?: unknown; statusCode?: number; message: string; code?: string };
    if (e.validation) {
      return reply.status(400).send({ error: { code: 'USAGE', message: e.message, details: e.validation } });
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      return reply.status(e.statusCode).send({ error: { code: 'USAGE', message: e.message, details: null } });
    }
    options.manager.log.error({ err }, 'request failed');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'Internal error', details: null } });
  });

  app.setNotFoundHandler((request, reply) => {
    const err = createError('ROUTE_NOT_FOUND', { method: request.method, url: request.url.split('?')[0]! });
    return reply.status(err.status).send({ error: err.toJSON() });
  });

  app.get('/healthz', async () => ({ status: 'ok', version: VERSION }));
  await app.register(registerPluginRoutes, { prefix: '/api/plugins', manager: options.manager });
  return app;
}
