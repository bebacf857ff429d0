/** `/api/tokens` (named tokens, admin only) and `/api/whoami` (who the request's token names). */

import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { ROLES } from '../auth.ts';
import { errorResponses, noBody } from '../responses.ts';
import { errorSchema } from '../schemas.ts';
import { type ApiTokens, TOKEN_NAME_PATTERN } from '../tokens.ts';

export interface TokenRoutesOptions {
  tokens: ApiTokens;
  actor: (request: FastifyRequest) => string;
}

const role = { type: 'string', enum: [...ROLES] } as const;
const name = { type: 'string', pattern: TOKEN_NAME_PATTERN } as const;

const tokenSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'A named token; its secret is never shown again after it is made',
  properties: {
    name,
    role,
    createdAt: { type: 'string', format: 'date-time' },
    createdBy: { type: 'string', description: 'who made it, as the audit log names actors' },
    lastUsedAt: {
      type: ['string', 'null'],
      format: 'date-time',
      description: 'when a request last used it (recorded at most about once a minute)',
    },
  },
  required: ['name', 'role', 'createdAt', 'createdBy', 'lastUsedAt'],
} as const;

const createdSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'The token just made, with its secret: shown this once',
  properties: {
    name,
    role,
    token: { type: 'string', description: 'the secret (`dbt_…`): send it as `Authorization: Bearer <token>`' },
  },
  required: ['name', 'role', 'token'],
} as const;

const principalSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { name: { type: 'string' }, role },
  required: ['name', 'role'],
} as const;

export const tokenRoutes: FastifyPluginAsync<TokenRoutesOptions> = async (app, { tokens, actor }) => {
  app.get(
    '/whoami',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Who the request’s token names: its name (`admin` for the admin token) and role',
        response: { 200: principalSchema },
      },
      config: { access: 'viewer' },
    },
    async (request) => request.principal,
  );
  app.get(
    '/tokens',
    {
      schema: {
        tags: ['tokens'],
        summary: 'The named tokens (never their secrets)',
        response: { 200: { type: 'array', items: tokenSchema }, ...errorResponses(503) },
      },
      config: { access: 'admin' },
    },
    async () => tokens.list(),
  );
  app.post<{ Body: { name: string; role: string } }>(
    '/tokens',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Make a named token with a role; its secret is in this answer only',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'role'],
          properties: { name, role },
        },
        response: {
          201: createdSchema,
          409: { ...errorSchema, description: 'A token with that name exists, or the name is `admin` (TOKEN_EXISTS)' },
          ...errorResponses(503),
        },
      },
      config: { access: 'admin' },
    },
    async (request, reply) =>
      reply.status(201).send(await tokens.create(request.body.name, request.body.role, actor(request))),
  );
  app.delete<{ Params: { name: string } }>(
    '/tokens/:name',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Revoke a named token: it is refused from now on',
        params: { type: 'object', properties: { name }, required: ['name'] },
        response: {
          204: noBody('Revoked'),
          404: { ...errorSchema, description: 'No token with that name (TOKEN_NOT_FOUND)' },
          ...errorResponses(503),
        },
      },
      config: { access: 'admin' },
    },
    async (request, reply) => {
      await tokens.revoke(request.params.name, actor(request));
      return reply.status(204).send();
    },
  );
};
