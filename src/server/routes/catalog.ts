/**
 * `/api/catalog`: search the catalogs, a plugin's releases and the verdict on
 * the one an install would take, install by name with dependencies, the
 * installed plugins that have a newer release, and updates. Installs need
 * the role a local install needs (admin); reads, viewer.
 */

import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Catalog } from '../../catalog/catalog.ts';
import { MAX_SEARCH_SIZE } from '../../catalog/client.ts';
import { parseSpec } from '../../catalog/names.ts';
import type { UpdateState, UpdateWatcher } from '../../catalog/updates.ts';
import type { PluginManager } from '../../plugin/manager.ts';
import { errorResponses, findingSchema } from '../responses.ts';
import { forceQuery, idParams } from '../schemas.ts';

const str = { type: 'string' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const signer = {
  anyOf: [
    { type: 'object', properties: { keyId: str, publisher: str }, required: ['keyId', 'publisher'] },
    { type: 'null' },
  ],
} as const;

const hitSchema = {
  type: 'object',
  properties: { id: str, package: str, catalog: str, version: str, description: str, publisher: nullableStr },
  required: ['id', 'package', 'catalog', 'version', 'description', 'publisher'],
} as const;

const infoSchema = {
  type: 'object',
  properties: {
    id: str,
    package: str,
    catalog: str,
    description: str,
    latestTag: nullableStr,
    installed: nullableStr,
    releases: {
      type: 'array',
      items: {
        type: 'object',
        properties: { version: str, publisher: nullableStr, deprecated: nullableStr },
        required: ['version', 'publisher', 'deprecated'],
      },
    },
    check: {
      type: 'object',
      description:
        'the release an install would take, downloaded and verified here as an install would; nothing installed',
      properties: {
        version: str,
        valid: { type: 'boolean' },
        signer,
        findings: { type: 'array', items: findingSchema },
      },
      required: ['version', 'valid', 'signer', 'findings'],
    },
  },
  required: ['id', 'package', 'catalog', 'description', 'latestTag', 'installed', 'releases', 'check'],
} as const;

const installResultSchema = {
  type: 'object',
  properties: {
    installed: {
      type: 'array',
      description: 'what moved in, dependencies first',
      items: {
        type: 'object',
        properties: {
          id: str,
          version: str,
          action: { enum: ['install', 'upgrade', 'downgrade', 'reinstall'] },
          previous: nullableStr,
          catalog: str,
          signer,
        },
        required: ['id', 'version', 'action', 'previous', 'catalog', 'signer'],
      },
    },
    kept: {
      type: 'array',
      description: 'members of the set already installed at a fitting version',
      items: { type: 'object', properties: { id: str, version: str }, required: ['id', 'version'] },
    },
  },
  required: ['installed', 'kept'],
} as const;

const outdatedSchema = {
  type: 'array',
  items: {
    type: 'object',
    properties: { id: str, installed: str, latest: str, catalog: str },
    required: ['id', 'installed', 'latest', 'catalog'],
  },
} as const;

const updatesSchema = {
  type: 'object',
  properties: {
    checkedAt: nullableStr,
    intervalMinutes: { type: 'number', description: '0: the server does not look for updates on its own' },
    updates: outdatedSchema,
    error: {
      anyOf: [
        { type: 'object', properties: { code: str, message: str }, required: ['code', 'message'] },
        { type: 'null' },
      ],
    },
  },
  required: ['checkedAt', 'intervalMinutes', 'updates', 'error'],
} as const;

const specList = {
  type: 'array',
  minItems: 1,
  maxItems: 100,
  items: { type: 'string', maxLength: 300, description: 'ID or ID@RANGE' },
} as const;

export interface CatalogRoutesOptions {
  manager: PluginManager;
  catalog: Catalog;
  updates: UpdateWatcher;
  actor: (request: FastifyRequest) => string;
}

export const catalogRoutes: FastifyPluginAsync<CatalogRoutesOptions> = async (
  app,
  { manager, catalog, updates, actor },
) => {
  const settled = () => updates.settle(new Map(manager.list().map((p) => [p.id, p.version])));

  app.get<{ Querystring: { q: string; size: number } }>(
    '/search',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Search the catalogs for plugins (packages with the keyword databridge-plugin)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            q: { type: 'string', maxLength: 200, default: '' },
            size: { type: 'integer', minimum: 1, maximum: MAX_SEARCH_SIZE, default: 20 },
          },
        },
        response: {
          200: {
            type: 'object',
            description: 'The catalogs asked, in order, and the plugins found (the first catalog to have one wins)',
            properties: { catalogs: { type: 'array', items: str }, results: { type: 'array', items: hitSchema } },
            required: ['catalogs', 'results'],
          },
          ...errorResponses(502),
        },
      },
    },
    async (request) => ({
      catalogs: catalog.catalogs,
      results: await catalog.search(request.query.q, request.query.size),
    }),
  );

  app.get<{ Params: { id: string }; Querystring: { range: string } }>(
    '/plugins/:id',
    {
      schema: {
        tags: ['catalog'],
        summary:
          'A plugin’s releases in the catalogs, and the release an install would take, verified here (nothing is installed)',
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { range: { type: 'string', maxLength: 200, default: '*' } },
        },
        response: { 200: { ...infoSchema, description: 'Releases and the verdict' }, ...errorResponses(404, 409, 502) },
      },
    },
    async (request) => {
      const { id, range } = parseSpec(`${request.params.id}@${request.query.range}`);
      return catalog.info(id, range);
    },
  );

  app.post<{ Body: { plugins: string[] }; Querystring: { force: boolean } }>(
    '/install',
    {
      schema: {
        tags: ['catalog'],
        summary:
          'Install plugins by id and range with their dependencies: every release verified as a local bundle, the whole set or nothing',
        querystring: forceQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { plugins: specList },
          required: ['plugins'],
        },
        response: {
          201: { ...installResultSchema, description: 'Installed: each member and what it did' },
          ...errorResponses(404, 409, 422, 502, 503),
        },
      },
    },
    async (request, reply) => {
      const specs = request.body.plugins.map(parseSpec);
      const result = await catalog.install(specs, { force: request.query.force, actor: actor(request) });
      settled();
      return reply.status(201).send(result);
    },
  );

  app.get(
    '/outdated',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Installed plugins with a newer release in the catalogs, asked now',
        response: {
          200: { ...outdatedSchema, description: 'One entry per plugin with a newer release' },
          ...errorResponses(502),
        },
      },
    },
    async () => catalog.outdated(),
  );

  app.get(
    '/updates',
    {
      schema: {
        tags: ['catalog'],
        summary: 'The updates the server found at its last scheduled look (no catalog is asked by this request)',
        response: { 200: { ...updatesSchema, description: 'The last look' } },
      },
    },
    async (): Promise<UpdateState> => updates.state,
  );

  app.post(
    '/updates/check',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Look for updates now (as the schedule does); raises catalog.updates when the list changed',
        response: { 200: { ...updatesSchema, description: 'The look just made' } },
      },
      config: { access: 'operator' },
    },
    async () => updates.check(),
  );

  app.post<{ Body: { plugins?: string[] }; Querystring: { force: boolean } }>(
    '/update',
    {
      schema: {
        tags: ['catalog'],
        summary:
          'Update plugins to their newest release with what those need (all outdated ones when none is named); 409 DEPENDENT_BROKEN when an installed plugin’s range would break, unless force',
        querystring: forceQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { plugins: { ...specList, minItems: 0, items: idParams.properties.id } },
        },
        response: {
          200: { ...installResultSchema, description: 'Updated: each member and what it did' },
          ...errorResponses(404, 409, 422, 502, 503),
        },
      },
    },
    async (request) => {
      const result = await catalog.update(request.body?.plugins ?? [], {
        force: request.query.force,
        actor: actor(request),
      });
      settled();
      return result;
    },
  );
};
