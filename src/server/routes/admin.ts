/** `/api/namespaces` and `/api/trust`: limits and the trust store. */

import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createError, isDataBridgeError } from '../../errors.ts';
import type { PluginManager } from '../../plugin/manager.ts';
import { isPrivateKey } from '../../plugin/signing.ts';
import { limitsJsonSchema } from '../../sandbox/limits.ts';
import {
  errorResponses,
  namespaceSchema,
  noBody,
  revokedReleaseSchema,
  trustedKeySchema,
  trustSchema,
} from '../responses.ts';
import { PLUGIN_ID_PATTERN, pluginIdSchema } from '../schemas.ts';

export interface AdminRoutesOptions {
  manager: PluginManager;
  actor: (request: FastifyRequest) => string;
}

const limitsSchema = {
  ...limitsJsonSchema(),
  description: 'Limits the namespace holds its plugins to; each an integer within its documented maximum',
};
const nameParams = {
  type: 'object',
  properties: {
    name: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9.-]{0,127}$',
      description: 'lower-case letters, digits, "." and "-"; a plugin id names its own namespace',
    },
  },
  required: ['name'],
} as const;
/** Something to read: not only white space, no control or format characters (NUL, a right-to-left override). */
const displayName = {
  type: 'string',
  minLength: 1,
  maxLength: 200,
  pattern: '^[^\\p{Cc}\\p{Cf}]*[^\\s\\p{Cc}\\p{Cf}][^\\p{Cc}\\p{Cf}]*$',
  description: 'shown to people: at least one visible character, no control or format characters',
} as const;

/** A release to revoke: an id in the manifest's syntax, never a built-in (which ships with DataBridge and is not signed). */
const pluginId = {
  ...pluginIdSchema,
  pattern: `^(?!builtin\\.)${PLUGIN_ID_PATTERN.slice(1)}`,
  description: `${pluginIdSchema.description}; not builtin.*`,
} as const;

/** A semantic version (semver.org's own expression). */
const semverVersion = {
  type: 'string',
  maxLength: 64,
  pattern:
    '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$',
  description: 'a semantic version, e.g. 1.2.0',
} as const;

export const namespaceRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (app, { manager, actor }) => {
  app.get(
    '/',
    {
      schema: {
        tags: ['namespaces'],
        summary: 'Namespaces with their limits',
        response: { 200: { type: 'array', items: namespaceSchema, description: 'Every namespace' } },
      },
    },
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
            displayName,
            limits: limitsSchema,
          },
        },
        response: { 201: { ...namespaceSchema, description: 'Created' }, ...errorResponses(409, 503) },
      },
    },
    async (request, reply) => {
      const { name, displayName, limits } = request.body;
      return reply.status(201).send(await manager.namespaces.create(name, displayName, limits, actor(request)));
    },
  );
  app.get<{ Params: { name: string } }>(
    '/:name',
    {
      schema: {
        tags: ['namespaces'],
        summary: 'One namespace',
        params: nameParams,
        response: { 200: { ...namespaceSchema, description: 'The namespace' }, ...errorResponses(404) },
      },
    },
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
          properties: { displayName, limits: limitsSchema },
        },
        response: { 200: { ...namespaceSchema, description: 'Updated' }, ...errorResponses(404, 503) },
      },
    },
    async (request) => manager.namespaces.update(request.params.name, request.body, actor(request)),
  );
  app.delete<{ Params: { name: string } }>(
    '/:name',
    {
      schema: {
        tags: ['namespaces'],
        summary: 'Delete a namespace',
        params: nameParams,
        response: { 204: noBody('Deleted'), ...errorResponses(404, 503) },
      },
    },
    async (request, reply) => {
      await manager.namespaces.delete(request.params.name, actor(request));
      return reply.status(204).send();
    },
  );
};

export const trustRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (app, { manager, actor }) => {
  app.get(
    '/',
    {
      schema: {
        tags: ['trust'],
        summary: 'Trusted keys and revoked releases',
        response: { 200: { ...trustSchema, description: 'The trust store' } },
      },
    },
    async () => ({
      keys: await manager.trust.list(),
      revokedReleases: await manager.trust.listRevokedReleases(),
    }),
  );
  app.post<{
    Body: { publisher: string; publicKey: string; namespaces?: string[] };
    Querystring: { replace: boolean };
  }>(
    '/keys',
    {
      schema: {
        tags: ['trust'],
        summary: 'Trust a publisher’s Ed25519 public key (SPKI PEM) for some plugin id namespaces',
        description:
          'Adding a key already trusted for the same publisher sets its namespaces. A key trusted for another publisher is refused (409 KEY_EXISTS) unless `replace=true` moves it.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            replace: {
              type: 'boolean',
              default: false,
              description: 'move a key already trusted for another publisher to this one',
            },
          },
        },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['publisher', 'publicKey'],
          properties: {
            publisher: {
              type: 'string',
              pattern: '^[a-z0-9][a-z0-9-]{0,63}$',
              description: 'lower-case letters, digits and "-", as plugin manifests name it',
            },
            publicKey: { type: 'string', minLength: 1, maxLength: 4096, description: 'Ed25519, SPKI PEM' },
            namespaces: {
              type: 'array',
              maxItems: 50,
              uniqueItems: true,
              // builtin.* is DataBridge's own: no key signs for it
              items: {
                type: 'string',
                maxLength: 128,
                pattern: '^(\\*|(?!builtin(\\.|$))[a-z0-9][a-z0-9._-]*(\\.\\*)?)$',
              },
              description:
                'plugin ids the key may sign: acme.*, acme.upper or *, each once, never builtin.*; default <publisher>.*',
            },
          },
        },
        response: {
          201: { ...trustedKeySchema, description: 'Trusted' },
          ...errorResponses(409, 503),
        },
      },
    },
    async (request, reply) => {
      const { publisher, publicKey, namespaces } = request.body;
      // a private key sent here has left its owner's machine: refuse it by name, so the sender knows to replace it
      if (isPrivateKey(publicKey)) throw createError('PRIVATE_KEY_SENT', {});
      try {
        return reply
          .status(201)
          .send(
            await manager.trust.addKey(
              { publisher, publicKeyPem: publicKey, namespaces: namespaces ?? [], replace: request.query.replace },
              actor(request),
            ),
          );
      } catch (err) {
        // OpenSSL's text says nothing a client can act on and quotes the library: our own words, the original as cause
        if (isDataBridgeError(err, 'KEY_INVALID'))
          throw createError(
            'KEY_INVALID',
            { file: 'publicKey', reason: 'not an Ed25519 public key in SPKI PEM' },
            { cause: err },
          );
        throw err;
      }
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
        response: { 200: { ...trustedKeySchema, description: 'The key, revoked' }, ...errorResponses(404, 503) },
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
            pluginId,
            version: semverVersion,
            reason: { type: 'string', maxLength: 500 },
          },
        },
        response: {
          201: { ...revokedReleaseSchema, description: 'Revoked' },
          200: { ...revokedReleaseSchema, description: 'Already revoked: the revocation recorded before, unchanged' },
          ...errorResponses(503),
        },
      },
    },
    async (request, reply) => {
      const { pluginId, version, reason } = request.body;
      // idempotent: the same release again answers 200 with the revocation already recorded, and records nothing
      const held = (await manager.trust.listRevokedReleases()).find(
        (r) => r.pluginId === pluginId && r.version === version,
      );
      if (held) return reply.status(200).send(held);
      return reply
        .status(201)
        .send(
          await manager.trust.revokeRelease(pluginId, version, reason ?? 'revoked by the operator', actor(request)),
        );
    },
  );
};
