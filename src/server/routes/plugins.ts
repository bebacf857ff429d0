/**
 * `/api/plugins`: list, search, read, enable, disable, install, reload,
 * uninstall, statistics, live status and validation findings.
 */

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createError, DataBridgeError } from '../../errors.ts';
import type { FlowController } from '../../flow/controller.ts';
import type { PluginManager } from '../../plugin/manager.ts';
import { PLUGIN_SOURCES, PLUGIN_STATUSES, PLUGIN_TYPES } from '../../plugin/types.ts';
import {
  errorResponses,
  installSchema,
  noBody,
  pluginListSchema,
  pluginSchema,
  pluginStatusSchema,
  registryStatsSchema,
  validationSchema,
} from '../responses.ts';
import { forceQuery, idParams } from '../schemas.ts';
import { bodyReadByRoute } from '../validation.ts';

const bundleBytes = { type: 'string', format: 'binary', description: 'the plugin’s .tgz bundle' } as const;

export interface PluginRoutesOptions {
  manager: PluginManager;
  flow?: FlowController;
  /** The actor name for the audit log. */
  actor: (request: FastifyRequest) => string;
}

export const pluginRoutes: FastifyPluginAsync<PluginRoutesOptions> = async (app, { manager, flow, actor }) => {
  // the list is what the console polls: serialized, hashed and compressed once per change, not per
  // request; sent gzipped to clients that accept it (browsers, fetch): 200 plugins are 160 KB of
  // JSON, and copying those bytes, not making them, is what a list request costs
  let listCache: { body: Buffer; etag: string; gzip?: Buffer } | null = null;
  const off = manager.on(() => {
    listCache = null;
  });
  app.addHook('onClose', async () => off());

  app.get(
    '/',
    {
      schema: {
        tags: ['plugins'],
        summary:
          'Every registered plugin (with an ETag: a poll that changed nothing gets 304; gzip where Accept-Encoding allows)',
        response: {
          200: { ...pluginListSchema, description: 'Every registered plugin, with an ETag header' },
          304: noBody('Nothing changed since the ETag given in If-None-Match'),
        },
      },
    },
    async (request, reply) => {
      if (!listCache) {
        const body = Buffer.from(JSON.stringify(manager.list()));
        listCache = { body, etag: createHash('sha1').update(body).digest('base64url') };
      }
      const gzip = acceptsGzip(request.headers['accept-encoding']);
      // each coding is its own representation, with its own strong ETag
      const etag = gzip ? `"${listCache.etag}-gz"` : `"${listCache.etag}"`;
      reply.header('etag', etag).header('vary', 'accept-encoding');
      const inm = request.headers['if-none-match'];
      if (inm && (inm.trim() === '*' || inm.split(',').some((t) => t.trim() === etag))) return reply.status(304).send();
      reply.type('application/json; charset=utf-8');
      if (!gzip) return reply.send(listCache.body);
      listCache.gzip ??= gzipSync(listCache.body);
      return reply.header('content-encoding', 'gzip').send(listCache.gzip);
    },
  );

  app.get<{
    Querystring: {
      q?: string;
      type?: string;
      tag?: string | string[];
      status?: string;
      enabled?: boolean;
      source?: string;
    };
  }>(
    '/search',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Search by free text, type, tags, status, enabled, source',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            q: { type: 'string', maxLength: 200 },
            type: { enum: [...PLUGIN_TYPES] },
            tag: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
            status: { enum: [...PLUGIN_STATUSES] },
            enabled: { type: 'boolean' },
            source: { enum: [...PLUGIN_SOURCES] },
          },
        },
        response: { 200: { ...pluginListSchema, description: 'The plugins that match every filter given' } },
      },
    },
    async (request) => {
      const q = request.query;
      return manager.search({
        text: q.q,
        type: q.type as never,
        tags: q.tag === undefined ? undefined : Array.isArray(q.tag) ? q.tag : [q.tag],
        status: q.status as never,
        enabled: q.enabled,
        source: q.source as never,
      });
    },
  );

  app.get(
    '/stats',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Counts by type, status and source',
        response: { 200: { ...registryStatsSchema, description: 'Counts' } },
      },
    },
    async () => manager.stats(),
  );

  app.post<{ Querystring: { force: boolean } }>(
    '/install',
    {
      bodyLimit: manager.config.bundleLimits.maxBytes,
      // the route reads the bundle itself: the body schema documents what it takes
      validatorCompiler: bodyReadByRoute,
      schema: {
        tags: ['plugins'],
        summary: 'Install a .tgz bundle (body as application/gzip, or multipart with one file)',
        querystring: forceQuery,
        body: {
          content: {
            'application/gzip': { schema: bundleBytes },
            'application/x-gzip': { schema: bundleBytes },
            'application/octet-stream': { schema: bundleBytes },
            'multipart/form-data': {
              schema: {
                type: 'object',
                properties: { bundle: { ...bundleBytes, description: 'the .tgz (one file; any field name)' } },
              },
            },
          },
        },
        response: {
          201: { ...installSchema, description: 'Installed: the plugin as registered and what the install did' },
          ...errorResponses(409, 413, 415, 422, 503),
        },
      },
    },
    async (request, reply) => {
      let bundle: Buffer;
      if (request.isMultipart()) {
        bundle = await multipartBundle(request);
        // the upload was read here, after the preHandler check: its token may have been revoked meanwhile
        await request.server.confirmPrincipal(request);
      } else if (Buffer.isBuffer(request.body)) bundle = request.body;
      else
        throw createError(
          'UNSUPPORTED_MEDIA_TYPE',
          {},
          { details: { accepted: ['application/gzip', 'multipart/form-data'] } },
        );
      if (bundle.length === 0) throw createError('USAGE', { message: 'the bundle is empty' });
      const { plugin, outcome } = await manager.install(bundle, { force: request.query.force, actor: actor(request) });
      return reply.status(201).send({ plugin, outcome });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/:id',
    {
      schema: {
        tags: ['plugins'],
        summary: 'One plugin',
        params: idParams,
        response: { 200: { ...pluginSchema, description: 'The plugin' }, ...errorResponses(404) },
      },
    },
    async (request) => manager.get(request.params.id),
  );

  app.put<{ Params: { id: string } }>(
    '/:id/enable',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Enable a plugin',
        params: idParams,
        response: { 200: { ...pluginSchema, description: 'The plugin, enabled' }, ...errorResponses(404, 503) },
      },
      config: { access: 'operator' },
    },
    async (request) => manager.enable(request.params.id, { actor: actor(request) }),
  );

  app.put<{ Params: { id: string }; Querystring: { force: boolean } }>(
    '/:id/disable',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Disable a plugin (409 while enabled plugins depend on it, unless force)',
        params: idParams,
        querystring: forceQuery,
        response: { 200: { ...pluginSchema, description: 'The plugin, disabled' }, ...errorResponses(404, 409, 503) },
      },
      config: { access: 'operator' },
    },
    async (request) => manager.disable(request.params.id, { actor: actor(request), force: request.query.force }),
  );

  app.post<{ Params: { id: string } }>(
    '/:id/reload',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Validate and load the plugin’s files again; on failure the loaded version keeps serving',
        params: idParams,
        response: {
          200: { ...pluginSchema, description: 'The plugin, loaded again' },
          ...errorResponses(404, 409, 422, 503),
        },
      },
      config: { access: 'operator' },
    },
    async (request) => manager.reload(request.params.id, { actor: actor(request) }),
  );

  app.delete<{ Params: { id: string }; Querystring: { force: boolean } }>(
    '/:id',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Uninstall a plugin (409 while enabled plugins depend on it, unless force)',
        params: idParams,
        querystring: forceQuery,
        response: { 204: noBody('Uninstalled'), ...errorResponses(404, 409, 503) },
      },
    },
    async (request, reply) => {
      await manager.uninstall(request.params.id, { actor: actor(request), force: request.query.force });
      return reply.status(204).send();
    },
  );

  app.get<{ Params: { id: string } }>(
    '/:id/status',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Live status and resource use',
        params: idParams,
        response: { 200: { ...pluginStatusSchema, description: 'Live status' }, ...errorResponses(404) },
      },
    },
    async (request) => {
      const plugin = manager.get(request.params.id);
      const processors = Object.values(flow?.stats().processors ?? {}).filter((p) => p.pluginId === plugin.id);
      const sum = (k: 'in' | 'out' | 'bytesIn' | 'bytesOut' | 'tasks' | 'errors') =>
        processors.reduce((n, p) => n + p[k], 0);
      return {
        id: plugin.id,
        status: plugin.status,
        statusReason: plugin.statusReason,
        enabled: plugin.enabled,
        isolation: plugin.isolation,
        registry: plugin.stats,
        flow: {
          processors: processors.map((p) => ({ id: p.id, type: p.type, state: p.state, activeTasks: p.activeTasks })),
          in: sum('in'),
          out: sum('out'),
          bytesIn: sum('bytesIn'),
          bytesOut: sum('bytesOut'),
          tasks: sum('tasks'),
          errors: sum('errors'),
        },
        ...manager.statsOf(plugin.id),
        at: new Date().toISOString(),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/:id/validation',
    {
      schema: {
        tags: ['plugins'],
        summary: 'The findings of the plugin’s last validation',
        params: idParams,
        response: { 200: { ...validationSchema, description: 'The last validation' }, ...errorResponses(404) },
      },
    },
    async (request) => {
      const record = manager.validation(request.params.id);
      return {
        id: record.id,
        valid: !record.findings.some((f) => f.severity === 'error'),
        findings: record.findings,
        digest: record.digest,
        signer: record.signer,
        signature: manager.signatureOf(record.id),
        manifest: record.dir ? await readManifest(record.dir) : null,
        dependents: manager.registry.dependentsOf(record.id).filter((d) => d !== record.id),
        history: await manager.store.installHistory(record.id),
      };
    },
  );
};

// clients send the same header on every poll: the last answer is kept
let lastAcceptEncoding: { header: string; gzip: boolean } | null = null;

/** Whether an Accept-Encoding header takes gzip: named with a q-value above 0, or not named and `*` is. */
function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  if (lastAcceptEncoding?.header !== header) lastAcceptEncoding = { header, gzip: parseAcceptsGzip(header) };
  return lastAcceptEncoding.gzip;
}

function parseAcceptsGzip(header: string): boolean {
  const q: Record<string, number> = {};
  for (const part of header.split(',')) {
    const [name = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const given = params.find((p) => p.startsWith('q='));
    q[name] = given ? Number(given.slice(2)) || 0 : 1;
  }
  return (q.gzip ?? q['*'] ?? 0) > 0;
}

/**
 * The one file of a multipart upload. A body the parser cannot read (no
 * boundary, cut short) is the client's fault: 400, never 500.
 */
async function multipartBundle(request: FastifyRequest): Promise<Buffer> {
  try {
    const file = await request.file();
    if (!file) throw createError('USAGE', { message: 'the multipart body holds no file' });
    return await file.toBuffer();
  } catch (err) {
    if (err instanceof DataBridgeError) throw err;
    const code = (err as { code?: string }).code;
    // more parts than an install takes (one file, ten fields) is a malformed upload, not a large one
    if (code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT')
      throw createError('BAD_REQUEST', {
        reason: 'the multipart body has too many parts (one file, at most ten fields)',
      });
    if ((err as { statusCode?: number }).statusCode === 413) throw createError('BODY_TOO_LARGE', {});
    throw createError('BAD_REQUEST', { reason: 'the multipart body is malformed' });
  }
}

/** The plugin's manifest as on disk, for display; null when it cannot be read. */
async function readManifest(dir: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  } catch {
    return null;
  }
}
