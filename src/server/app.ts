/**
 * The Fastify application: authentication on the matched route, deny by
 * default (src/server/auth.ts), one JSON error shape for ours and the
 * framework's errors, the routes, an OpenAPI document made
 * from the route schemas, a page that renders it, and the web console at
 * `/`. A thin layer over the host API.
 */

import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { type CatalogSettings, createCatalog } from '../catalog/catalog.ts';
import { UpdateWatcher } from '../catalog/updates.ts';
import { createError, DataBridgeError } from '../errors.ts';
import type { FlowController } from '../flow/controller.ts';
import type { PluginManager } from '../plugin/manager.ts';
import { VERSION } from '../version.ts';
import { type Authenticate, bearerOf, installAuth, principalOf } from './auth.ts';
import { consoleRoutes } from './console.ts';
import { EventHub } from './events.ts';
import { installJsonParser } from './json-body.ts';
import { type ServerLimits, serverLimits } from './limits.ts';
import { actorOf, withLocalCli } from './local-cli.ts';
import { metricsRoutes } from './metrics.ts';
import { documentResponses, healthSchema } from './responses.ts';
import { routeTable } from './route-table.ts';
import { namespaceRoutes, trustRoutes } from './routes/admin.ts';
import { catalogRoutes } from './routes/catalog.ts';
import { observeRoutes } from './routes/observe.ts';
import { pluginRoutes } from './routes/plugins.ts';
import { tokenRoutes } from './routes/tokens.ts';
import type { TlsFiles } from './tls.ts';
import { ApiTokens, tokenAuthenticator } from './tokens.ts';
import { validatorCompiler } from './validation.ts';

export interface ServerOptions {
  manager: PluginManager;
  /** The admin token (`DATABRIDGE_TOKEN` or `<data dir>/admin.token`). */
  token: string;
  /** Who a bearer secret names; default: the admin token (named `admin`) or a named token in the state store. */
  authenticate?: Authenticate;
  /** The flow the server runs, if any (`--flow`). */
  flow?: FlowController;
  /** Serve HTTPS with this certificate and key (`--tls-cert`, `--tls-key`); default plain HTTP. */
  https?: TlsFiles;
  /** The local CLI's credential for this run (src/server/local-cli.ts); none: the CLI cannot act through this server. */
  localCliToken?: string;
  /** Fastify's request log; off by default (the manager logs what matters). */
  logRequests?: boolean;
  /** Timeouts and caps on connections and event streams (src/server/limits.ts); defaults there. */
  limits?: Partial<ServerLimits>;
  /** The catalogs (`--catalog`, `DATABRIDGE_CATALOG`) and how often to look for updates (0: never). */
  catalog?: CatalogSettings;
}

/** The server and its event hub (which `serve` also feeds). */
export interface Server {
  app: FastifyInstance;
  hub: EventHub;
}

/** Fastify's own 4xx answers, in our shape (never its message: some echo the request). */
const FRAMEWORK_ERRORS: Record<number, () => DataBridgeError> = {
  400: () => createError('BAD_REQUEST', { reason: 'the request could not be read' }),
  413: () => createError('BODY_TOO_LARGE', {}),
  414: () => createError('URI_TOO_LONG', {}),
  415: () => createError('UNSUPPORTED_MEDIA_TYPE', {}),
};

/** Errors of reading a body, by the framework's code: 400 BAD_REQUEST with what was wrong, never the body. */
const BODY_ERRORS: Record<string, () => DataBridgeError> = {
  FST_ERR_CTP_INVALID_JSON_BODY: () => createError('BAD_REQUEST', { reason: 'the body is not valid JSON' }),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => createError('BAD_REQUEST', { reason: 'the JSON body is empty' }),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () =>
    createError('BAD_REQUEST', { reason: 'the body’s length does not match Content-Length' }),
};

/**
 * Requests Node's HTTP parser refuses (headers over the cap, a request
 * that took too long, a malformed request line): no route, no token to
 * check, so the answer says only what was wrong, in the one shape.
 */
function clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // an answer already begun on this connection (an event stream) cannot take another
  if ((socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent)
    return void socket.destroy();
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? createError('HEADERS_TOO_LARGE', {})
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? createError('REQUEST_TIMEOUT', {})
        : createError('BAD_REQUEST', { reason: 'the request could not be parsed' });
  writeError(socket, e);
}

/** Writes an answer in our shape straight to a socket no request object owns, and closes it. */
function writeError(socket: Duplex, e: DataBridgeError, headers = ''): void {
  const body = JSON.stringify({ error: e.toJSON() });
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nConnection: close\r\n${headers}Content-Type: application/json; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  socket.destroy();
}

/**
 * What failed validation, without the request's own text: Ajv's params
 * name an unknown key (`additionalProperty`, `propertyName`) as sent, and a
 * pointer into a map holds the sender's keys. The schema's words stay.
 */
function validationDetails(validation: unknown): unknown {
  if (!Array.isArray(validation)) return null;
  return validation.map((v: { instancePath?: string; keyword?: string; message?: string; params?: object }) => {
    const { additionalProperty: _a, propertyName: _p, ...params } = (v.params ?? {}) as Record<string, unknown>;
    const path = v.instancePath ?? '';
    return {
      instancePath: path.length > 100 ? `${path.slice(0, 100)}…` : path,
      keyword: v.keyword,
      message: v.message,
      params,
    };
  });
}

/** Longest path segment the router takes: the manifest's id limit (128) with room to spare. */
const MAX_PARAM_LENGTH = 256;

export async function buildServer(options: ServerOptions): Promise<Server> {
  const { manager, flow } = options;
  const tokens = new ApiTokens(() => manager.store);
  const base = options.authenticate ?? tokenAuthenticator(options.token, tokens);
  const authenticate = options.localCliToken ? withLocalCli(base, options.localCliToken) : base;
  const limits = serverLimits(options.limits);
  // Node looks for requests over their time every connectionsCheckingInterval (30 s by default): often enough for the limit
  const checkEvery = Math.max(50, Math.min(1000, Math.floor(limits.requestTimeoutMs / 4)));
  const app = Fastify({
    logger: options.logRequests ? { level: 'info' } : false,
    bodyLimit: 1024 * 1024,
    https: options.https ?? null,
    // a request's headers and body must arrive in time: a trickled body no longer holds a connection (and its token) forever
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // a stop closes idle keep-alive connections instead of waiting on them
    forceCloseConnections: true,
    // what Node's HTTP parser refuses before Fastify sees a request (431, 408, 400): our shape where it can still be written
    clientErrorHandler: clientError,
    // errors the router raises before any hook (a path it cannot decode): 401 first, then our shape
    frameworkErrors: (err, request, reply) => {
      // a store that fails to answer for a named token must not leave the request hanging
      void principalOf(request, authenticate)
        .catch(() => null)
        .then((principal) => {
          const e = principal
            ? (FRAMEWORK_ERRORS[err.statusCode ?? 400] ?? FRAMEWORK_ERRORS[400]!)()
            : createError('UNAUTHORIZED', {});
          if (e.status === 401 || !request.raw.complete) reply.raw.setHeader('connection', 'close');
          // the reply is a framework error reply, untyped by any route
          (reply as unknown as { status(n: number): { send(b: unknown): void } })
            .status(e.status)
            .send({ error: e.toJSON() });
        });
    },
  });
  // JSON bodies are not coerced; query strings and path parameters are (src/server/validation.ts)
  app.setValidatorCompiler(validatorCompiler);
  // Node refuses it past requestTimeout; the headers get no more time than the whole request
  const server: import('node:http').Server & { connectionsCheckingInterval?: number } = app.server;
  server.headersTimeout = Math.min(server.headersTimeout, limits.requestTimeoutMs);
  // read when the server starts listening
  server.connectionsCheckingInterval = checkEvery;
  // more connections are closed as they arrive: the process keeps file descriptors for its own work and /healthz
  server.maxConnections = limits.maxConnections;
  // Expect: 100-continue: Node would send 100 before any check, inviting a body the server will refuse. 100 goes
  // only to a request whose token names someone; one without gets its 401 (and the connection closed) instead
  server.on('checkContinue', (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    const secret = bearerOf(req.headers);
    void Promise.resolve(secret ? authenticate(secret) : null)
      .catch(() => null)
      .then((principal) => {
        if (principal) res.writeContinue();
        server.emit('request', req, res);
      });
  });
  // CONNECT is no route's method: Node hands it to a 'connect' listener as a tunnel, and with none it dropped the
  // connection unanswered. 401 without a valid token, as everywhere; else 405.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const secret = bearerOf(req.headers);
    void Promise.resolve(secret ? authenticate(secret) : null)
      .catch(() => null)
      .then((principal) =>
        writeError(
          socket,
          principal
            ? createError('METHOD_NOT_ALLOWED', { method: 'CONNECT', allow: [] })
            : createError('UNAUTHORIZED', {}),
        ),
      );
  });
  // an error answered before the body was read closes the connection: Node would otherwise read (drain) a body of any length
  // to keep the connection alive, and a 401 or 403 gives its sender no reason to keep one
  app.addHook('onSend', async (request, reply, payload) => {
    const status = reply.statusCode;
    if (status === 401 || status === 403 || (status >= 400 && !request.raw.complete))
      reply.header('connection', 'close');
    // a browser must not guess a type for an answer (a JSON error read as HTML), nor keep an API answer in a cache
    reply.header('x-content-type-options', 'nosniff');
    const url = request.routeOptions.url;
    if (!url || url.startsWith('/api/') || url === '/metrics') reply.header('cache-control', 'no-store');
    return payload;
  });
  const hub = new EventHub(manager);
  app.addHook('onClose', async () => hub.close());
  installAuth(app, authenticate);
  // after installAuth: the error answers a route documents follow from the access it sets
  documentResponses(app);
  const routes = routeTable(app);

  // a path no route has: 405 with Allow where another method has it, else 404; never the path itself
  const notFound = (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]!;
    // a route that exists for this method and called for not-found itself (a missing static file) is a 404
    const allow = routes.allowed(path);
    const err =
      allow.length && !allow.includes(request.method)
        ? createError('METHOD_NOT_ALLOWED', { method: request.method, allow })
        : createError('ROUTE_NOT_FOUND', {});
    if (err.code === 'METHOD_NOT_ALLOWED') reply.header('allow', allow.join(', '));
    return reply.status(err.status).send({ error: err.toJSON() });
  };

  app.setErrorHandler((err, request, reply) => {
    if (err instanceof DataBridgeError) return reply.status(err.status).send({ error: err.toJSON() });
    const e = err as { validation?: unknown; statusCode?: number; message: string; code?: string };
    // a body the framework refused on the way to no route at all (QUERY without a type, a type no parser takes): the route is what is wrong
    if (request.is404 && e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return notFound(request, reply);
    if (e.validation)
      return reply
        .status(400)
        .send({ error: { code: 'USAGE', message: e.message, details: validationDetails(e.validation) } });
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      // never the framework's message or code: a JSON parse error's message quotes the body
      const known = (BODY_ERRORS[e.code ?? ''] ?? FRAMEWORK_ERRORS[e.statusCode] ?? FRAMEWORK_ERRORS[400]!)();
      return reply.status(known.status).send({ error: known.toJSON() });
    }
    manager.log.error({ err: e.message, url: request.url }, 'request failed');
    return reply.status(500).send({ error: createError('INTERNAL', {}).toJSON() });
  });

  app.setNotFoundHandler(notFound);
  // Fastify parses text/plain by default: a JSON route sent text got 400 'body must be object' instead of 415
  app.removeContentTypeParser('text/plain');
  installJsonParser(app);

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
        description:
          'The plugin host’s REST API. Every /api route needs `Authorization: Bearer <token>`; a request without a valid one gets 401 before any other answer. Every error is `{ "error": { "code", "message", "details" } }` (codes in docs/errors.md). Besides each operation’s own answers: 404 ROUTE_NOT_FOUND for a path no route has, 405 METHOD_NOT_ALLOWED with `Allow` for a known path and another method, 414 URI_TOO_LONG for a path segment over 256 characters, and, before any route is matched, 431 HEADERS_TOO_LARGE, 408 REQUEST_TIMEOUT and 400 BAD_REQUEST for requests Node’s HTTP parser refuses.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  // the API's description is open, like the console's files: it holds no data (/api/openapi.json is the same, behind the token)
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      route.config = { ...route.config, access: 'open' };
    });
    await docs.register(swaggerUi, { routePrefix: '/docs/api', uiConfig: { persistAuthorization: true } });
  });

  // the audit log names the token that acted (for the local CLI, its user)
  const actor = actorOf;
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['observe'],
        summary:
          'Liveness (no token needed); `degraded` while the state store is away; `isolation`: what this host can confine a process sandbox with (level, what is missing) and whether weaker isolation was accepted',
        security: [],
        response: { 200: healthSchema },
      },
      config: { access: 'open' },
    },
    async () => {
      const store = await manager.storeStatus();
      return {
        status: store.up ? 'ok' : 'degraded',
        version: VERSION,
        store: { kind: store.kind, up: store.up },
        isolation: manager.isolationStatus(),
        ...(manager.cluster ? { node: manager.cluster.id } : {}),
      };
    },
  );
  await app.register(pluginRoutes, { prefix: '/api/plugins', manager, flow, actor });
  await app.register(namespaceRoutes, { prefix: '/api/namespaces', manager, actor });
  await app.register(trustRoutes, { prefix: '/api/trust', manager, actor });
  await app.register(observeRoutes, {
    prefix: '/api',
    manager,
    flow,
    hub,
    onRevoke: (listener) => tokens.onRevoke(listener),
    limits,
  });
  await app.register(tokenRoutes, { prefix: '/api', tokens, actor });
  const catalog = createCatalog(manager, { catalogs: options.catalog?.catalogs ?? [] });
  const updates = new UpdateWatcher(catalog, {
    // the public registry is asked on request only: a server looks on its own where it was told to look
    intervalMs: options.catalog?.catalogs.length ? (options.catalog.checkIntervalMinutes ?? 0) * 60_000 : 0,
    onChange: (state) => hub.publish('catalog.updates', state),
  });
  app.addHook('onReady', async () => updates.start());
  app.addHook('onClose', async () => updates.stop());
  await app.register(catalogRoutes, { prefix: '/api/catalog', manager, catalog, updates, actor });
  await app.register(metricsRoutes, { manager, flow, updatesAvailable: () => updates.state.updates.length });
  await app.register(consoleRoutes);
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return { app, hub };
}
