/** `/api/namespaces` and `/api/trust`: limits and the trust store. */

import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { PluginManager } from '../../plugin/manager.ts';
import { LIMIT_KEYS } from '../../sandbox/limits.ts';
import { errors } from '../schemas.ts';

export interface AdminRoutesOptions {
  manager: PluginManager;
  actor: (request: FastifyRequest) => string;
}

const limitsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(LIMIT_KEYS.map((k) => [k, { type: 'integer', minimum: 1 }])),
};
const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9.-]{0,127}$' } },
  required: ['name'],
} as const;

export const namespaceRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (app, { manager, actor }) => {
  app.get(
    '/',
    { schema: { tags: ['namespaces'], summary: 'Namespaces with their limits', response: errors(401) } },
    async () => manager.namespaces.list(),
  );
  app.post<{ Body: { name: string; displayName?: string; limits?: Record<string, number> } }>(
    '/',
    {
      schema: {
        tags: ['namespaces'],
        summary: 'Create a namespace',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: nameParams.properties.name,
            displayName: { type: 'string', maxLength: 200 },
            limits: limitsSchema,
          },
        },
        response: errors(400, 401, 409),
      },
    },
    async (request, reply) => {
      const { name, displayName, limits } = request.body;
      return reply.status(201).send(await manager.namespaces.create(name, displayName, limits, actor(request)));
    },
  );
  app.get<{ Params: { name: string } }>(
    '/:name',
    { schema: { tags: ['namespaces'], summary: 'One namespace', params: nameParams, response: errors(401, 404) } },
    async (request) => manager.namespaces.get(request.params.name),
  );
  app.put<{ Params: { name: string }; Body: { displayName?: string; limits?: Record<string, number> } }>(
    '/:name',
    {
      schema: {
        tags: ['namespaces'],
        summary: 'Update a namespace’s limits or display name',
        params: nameParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { displayName: { type: 'string', maxLength: 200 }, limits: limitsSchema },
        },
        response: errors(400, 401, 404),
      },
    },
    async (request) => manager.namespaces.update(request.params.name, request.body, actor(request)),
  );
  app.delete<{ Params: { name: string } }>(
    '/:name',
    { schema: { tags: ['namespaces'], summary: 'Delete a namespace', params: nameParams, response: errors(401, 404) } },
    async (request, reply) => {
      await manager.namespaces.delete(request.params.name, actor(request));
      return reply.status(204).send();
    },
  );
};

export const trustRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (app, { manager, actor }) => {
  app.get(
    '/',
    { schema: { tags: ['trust'], summary: 'Trusted keys and revoked releases', response: errors(401) } },
    async () => ({
      keys: await manager.trust.list(),
      revokedReleases: await manager.trust.listRevokedReleases(),
    }),
  );
  app.post<{ Body: { publisher: string; publicKey: string; namespaces?: string[] } }>(
    '/keys',
    {
      schema: {
        tags: ['trust'],
        summary: 'Trust a publisher’s Ed25519 public key (SPKI PEM) for some plugin id namespaces',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['publisher', 'publicKey'],
          properties: {
            publisher: { type: 'string', maxLength: 64 },
            publicKey: { type: 'string', maxLength: 4096 },
            namespaces: { type: 'array', maxItems: 50, items: { type: 'string', maxLength: 128 } },
          },
        },
        response: errors(400, 401),
      },
    },
    async (request, reply) => {
      const { publisher, publicKey, namespaces } = request.body;
      return reply
        .status(201)
        .send(
          await manager.trust.addKey(
            { publisher, publicKeyPem: publicKey, namespaces: namespaces ?? [] },
            actor(request),
          ),
        );
    },
  );
  app.post<{ Params: { keyId: string }; Body: { reason?: string } }>(
    '/keys/:keyId/revoke',
    {
      schema: {
        tags: ['trust'],
        summary: 'Revoke a key',
        params: {
          type: 'object',
          properties: { keyId: { type: 'string', pattern: '^[0-9a-f]{8,64}$' } },
          required: ['keyId'],
        },
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { reason: { type: 'string', maxLength: 500 } },
        },
        response: errors(400, 401, 404),
      },
    },
    async (request) =>
      manager.trust.revokeKey(request.params.keyId, request.body?.reason ?? 'revoked by the operator', actor(request)),
  );
  app.post<{ Body: { pluginId: string; version: string; reason?: string } }>(
    '/revoked-releases',
    {
      schema: {
        tags: ['trust'],
        summary: 'Revoke one release of a plugin',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['pluginId', 'version'],
          properties: {
            pluginId: { type: 'string', maxLength: 128 },
            version: { type: 'string', maxLength: 64 },
            reason: { type: 'string', maxLength: 500 },
          },
        },
        response: errors(400, 401),
      },
    },
    async (request, reply) => {
      const { pluginId, version, reason } = request.body;
      return reply
        .status(201)
        .send(
          await manager.trust.revokeRelease(pluginId, version, reason ?? 'revoked by the operator', actor(request)),
        );
    },
  );
};
