/**
 * What each route answers, for the OpenAPI document and for the answer
 * itself: Fastify serializes a JSON body through its response schema
 * (fast-json-stringify), which writes only the fields the schema lists.
 * Objects with fixed fields (a plugin, a key, a namespace) list them all
 * and nothing more, so a client generated from the document catches a
 * misspelt field (test/e2e/openapi.test.ts compares answers with the
 * manager's own values, so a field the schema forgot fails it). The
 * open-ended ones (a plugin's live status, the flow, the cluster, health)
 * list what clients read and say `additionalProperties: true`, so a field
 * added later still reaches the console.
 *
 * `documentResponses` fills in, on every route, the error statuses that
 * follow from its declaration: 401 (and 503, the store away) where a token
 * is needed, 403 where a role above viewer is, 400 where it takes
 * parameters or a body, 500.
 */

import type { FastifyInstance, RouteOptions } from 'fastify';
import { LIMIT_KEYS } from '../sandbox/limits.ts';
import { confinementSchema, errorSchema } from './schemas.ts';

const str = { type: 'string' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const bool = { type: 'boolean' } as const;
const strings = { type: 'array', items: str } as const;
const anyObject = { type: 'object', additionalProperties: true } as const;
const nullableObject = { anyOf: [anyObject, { type: 'null' }] } as const;

/** A finding of validation (`Finding`). */
export const findingSchema = {
  type: 'object',
  properties: {
    code: str,
    severity: { enum: ['error', 'warning'] },
    path: nullableStr,
    pointer: nullableStr,
    message: str,
  },
  required: ['code', 'severity', 'message'],
} as const;

/** How a plugin's loaded release is signed (`SignatureInfo`). */
export const signatureSchema = {
  type: 'object',
  properties: {
    state: { enum: ['trusted', 'unsigned', 'untrusted', 'invalid', 'builtin'] },
    publisher: nullableStr,
    keyId: nullableStr,
    acceptedUnsigned: {
      type: 'object',
      description: 'Who installed this release without a trusted signature (--allow-unsigned), and when',
      properties: { actor: str, at: str },
      required: ['actor', 'at'],
    },
  },
  required: ['state', 'publisher', 'keyId'],
} as const;

/** One registered plugin (`PluginInfo`). */
export const pluginSchema = {
  type: 'object',
  properties: {
    id: str,
    name: str,
    version: str,
    type: { enum: ['processor', 'controller-service', 'reporting-task'] },
    source: { enum: ['builtin', 'external'] },
    publisher: nullableStr,
    author: nullableStr,
    description: str,
    tags: strings,
    status: { enum: ['active', 'inactive', 'error', 'loading'] },
    statusReason: nullableStr,
    enabled: bool,
    dependencies: { type: 'object', additionalProperties: str, description: 'plugin id → semver range' },
    isolation: { enum: ['inline', 'worker', 'process'] },
    components: {
      type: 'object',
      properties: { processors: strings, controllerServices: strings, reportingTasks: strings },
      required: ['processors', 'controllerServices', 'reportingTasks'],
    },
    registeredAt: str,
    stats: {
      type: 'object',
      properties: { instancesCreated: int, errors: int },
      required: ['instancesCreated', 'errors'],
    },
    signature: signatureSchema,
    confinement: confinementSchema,
  },
  required: ['id', 'name', 'version', 'type', 'source', 'status', 'statusReason', 'enabled', 'isolation'],
} as const;

export const pluginListSchema = { type: 'array', items: pluginSchema } as const;

const counts = { type: 'object', additionalProperties: int } as const;

/** `GET /api/plugins/stats` (`RegistryStats`). */
export const registryStatsSchema = {
  type: 'object',
  properties: {
    total: int,
    enabled: int,
    byType: counts,
    byStatus: counts,
    bySource: counts,
    components: counts,
    instancesCreated: int,
    errors: int,
  },
  required: ['total', 'enabled', 'byType', 'byStatus', 'bySource', 'components'],
} as const;

/** `POST /api/plugins/install`: the plugin as registered and what the install did. */
export const installSchema = {
  type: 'object',
  properties: {
    plugin: pluginSchema,
    outcome: {
      type: 'object',
      properties: {
        id: str,
        version: str,
        digest: str,
        action: { enum: ['install', 'upgrade', 'downgrade', 'reinstall'] },
        findings: { type: 'array', items: findingSchema },
      },
      required: ['id', 'version', 'digest', 'action', 'findings'],
    },
  },
  required: ['plugin', 'outcome'],
} as const;

const usageSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    at: num,
    cpuPercent: { type: ['number', 'null'] },
    memoryUsed: { type: ['number', 'null'] },
    handles: { type: ['number', 'null'] },
    inFlight: num,
    restarts: num,
    throttled: bool,
  },
} as const;

/** `GET /api/plugins/{id}/status`. */
export const pluginStatusSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    id: str,
    status: pluginSchema.properties.status,
    statusReason: nullableStr,
    enabled: bool,
    isolation: pluginSchema.properties.isolation,
    registry: anyObject,
    flow: {
      type: 'object',
      additionalProperties: true,
      properties: {
        processors: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: true,
            properties: { id: str, type: str, state: str, activeTasks: num },
          },
        },
        in: num,
        out: num,
        bytesIn: num,
        bytesOut: num,
        tasks: num,
        errors: num,
      },
    },
    stats: {
      type: 'object',
      additionalProperties: true,
      properties: {
        sessions: num,
        flowFilesIn: num,
        flowFilesOut: num,
        bytesIn: num,
        bytesOut: num,
        errors: num,
        rollbacks: num,
        latencyMs: { type: 'object', additionalProperties: { type: ['number', 'null'] } },
      },
    },
    sandbox: {
      anyOf: [
        {
          type: 'object',
          additionalProperties: true,
          properties: {
            mode: str,
            state: str,
            limits: counts,
            restarts: num,
            crashes: num,
            timeouts: num,
            lastCrash: nullableStr,
            usage: { anyOf: [usageSchema, { type: 'null' }] },
            history: { type: 'array', items: usageSchema },
            isolation: anyObject,
          },
        },
        { type: 'null' },
      ],
    },
    at: str,
  },
  required: ['id', 'status', 'enabled', 'flow', 'at'],
} as const;

/** `GET /api/plugins/{id}/validation`. */
export const validationSchema = {
  type: 'object',
  properties: {
    id: str,
    valid: bool,
    findings: { type: 'array', items: findingSchema },
    digest: nullableStr,
    signer: {
      anyOf: [
        { type: 'object', properties: { keyId: str, publisher: str }, required: ['keyId', 'publisher'] },
        { type: 'null' },
      ],
    },
    signature: signatureSchema,
    manifest: { ...nullableObject, description: 'the manifest as on disk; null when it cannot be read' },
    dependents: strings,
    history: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          seq: int,
          pluginId: str,
          version: str,
          digest: nullableStr,
          action: { enum: ['install', 'upgrade', 'downgrade', 'reinstall', 'uninstall', 'rollback'] },
          actor: str,
          at: str,
        },
      },
    },
  },
  required: ['id', 'valid', 'findings', 'digest', 'signer', 'dependents', 'history'],
} as const;

/** A namespace (`NamespaceRecord`). */
export const namespaceSchema = {
  type: 'object',
  properties: {
    name: str,
    displayName: str,
    limits: { type: 'object', properties: Object.fromEntries(LIMIT_KEYS.map((k) => [k, int])) },
    createdAt: str,
    updatedAt: str,
  },
  required: ['name', 'displayName', 'limits', 'createdAt', 'updatedAt'],
} as const;

/** A key in the trust store (`TrustedKey`). */
export const trustedKeySchema = {
  type: 'object',
  properties: {
    keyId: { ...str, description: 'sha256 (hex) of the key’s SPKI bytes' },
    publisher: str,
    publicKey: { ...str, description: 'SPKI PEM' },
    namespaces: strings,
    addedAt: str,
    revokedAt: nullableStr,
    revokedReason: nullableStr,
  },
  required: ['keyId', 'publisher', 'publicKey', 'namespaces', 'addedAt', 'revokedAt', 'revokedReason'],
} as const;

/** A revoked release (`RevokedRelease`). */
export const revokedReleaseSchema = {
  type: 'object',
  properties: { pluginId: str, version: str, reason: str, at: str },
  required: ['pluginId', 'version', 'reason', 'at'],
} as const;

/** `GET /api/trust`. */
export const trustSchema = {
  type: 'object',
  properties: {
    keys: { type: 'array', items: trustedKeySchema },
    revokedReleases: { type: 'array', items: revokedReleaseSchema },
  },
  required: ['keys', 'revokedReleases'],
} as const;

/** `GET /api/alerts`. */
export const alertListSchema = {
  type: 'array',
  items: {
    type: 'object',
    properties: { seq: int, code: str, plugin: str, processor: nullableStr, message: str, at: str },
    required: ['code', 'plugin', 'processor', 'message', 'at'],
  },
} as const;

/** `GET /api/audit`. */
export const auditListSchema = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      seq: int,
      at: str,
      actor: { ...str, description: 'token:<name> for the API, cli:<user>, seed, embed, cluster:<node>' },
      action: str,
      target: str,
      result: { enum: ['ok', 'refused', 'error'] },
      details: {},
    },
    required: ['seq', 'at', 'actor', 'action', 'target', 'result'],
  },
} as const;

/** `GET /api/flow` (`FlowStats`). */
export const flowSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    processors: { type: 'object', additionalProperties: anyObject, description: 'processor id → its summary' },
    connections: { type: 'array', items: anyObject },
    controllerServices: { type: 'array', items: anyObject },
    reportingTasks: { type: 'array', items: anyObject },
    orphaned: int,
  },
  required: ['processors', 'connections', 'orphaned'],
} as const;

/** `GET /api/cluster`. */
export const clusterSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    enabled: bool,
    self: nullableStr,
    store: {
      type: 'object',
      additionalProperties: true,
      properties: { kind: { enum: ['sqlite', 'postgres'] }, location: str, up: bool, error: nullableStr },
    },
    nodes: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: true,
        properties: {
          id: str,
          address: nullableStr,
          version: str,
          startedAt: str,
          heartbeatAt: str,
          alive: bool,
          self: bool,
          plugins: { type: 'object', additionalProperties: anyObject },
        },
      },
    },
    plugins: { type: 'object', additionalProperties: anyObject },
  },
  required: ['enabled', 'self', 'store', 'nodes', 'plugins'],
} as const;

/** `GET /healthz`. */
export const healthSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    status: { enum: ['ok', 'degraded'] },
    version: str,
    store: { type: 'object', properties: { kind: str, up: bool }, required: ['kind', 'up'] },
    isolation: anyObject,
    node: str,
  },
  required: ['status', 'version', 'store'],
} as const;

/** A body the route writes itself, of another media type than JSON (never serialized by a schema). */
export function textBody(mediaType: string, description: string) {
  return { description, content: { [mediaType]: { schema: { type: 'string' } } } };
}

/** An answer without a body. */
export function noBody(description: string) {
  return { description, type: 'null' } as const;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Bad input: a parameter or body that does not match the schema (USAGE), or a body that cannot be read (BAD_REQUEST)',
  401: 'No valid bearer token (UNAUTHORIZED); comes before any other answer',
  403: 'The token’s role may not do this (FORBIDDEN_ROLE)',
  404: 'No such plugin, namespace, key or node',
  409: 'A conflict with the current state (the code says which)',
  413: 'The body is over the cap (BODY_TOO_LARGE: 1 MiB for JSON, bundleLimits.maxBytes for a bundle)',
  415: 'A body of a content type this route does not take (UNSUPPORTED_MEDIA_TYPE)',
  422: 'The bundle or the plugin’s files fail validation; every finding in details.findings',
  500: 'A bug (INTERNAL); the server log has the details',
  503: 'The state store does not answer (STORE_UNAVAILABLE): a change, a read of stored state, or the lookup of a named token',
};

/** Error responses a route documents, each with what it means. */
export function errorResponses(...statuses: number[]): Record<number, typeof errorSchema & { description: string }> {
  return Object.fromEntries(
    statuses.map((s) => [s, { ...errorSchema, description: ERROR_DESCRIPTIONS[s] ?? 'An error' }]),
  );
}

function operationId(method: string, url: string): string {
  const words = url
    .split('/')
    .filter(Boolean)
    .flatMap((seg) => (seg.startsWith(':') ? ['by', seg.slice(1)] : seg.split(/[^A-Za-z0-9]+/)))
    .filter(Boolean);
  return method.toLowerCase() + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

/**
 * Fills in, on each route registered after it, the error answers its
 * declaration implies (see the header). Must be installed after the
 * authentication hook, which sets every route's access.
 */
export function documentResponses(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as
      | {
          hide?: boolean;
          response?: Record<string, unknown>;
          params?: unknown;
          querystring?: unknown;
          body?: unknown;
          operationId?: string;
        }
      | undefined;
    if (!schema || schema.hide) return;
    // a stable name per operation, for generated clients: GET /api/plugins/:id/status → getApiPluginsByIdStatus
    schema.operationId ??= operationId([route.method].flat()[0]!, route.url);
    const access = route.config?.access ?? 'open';
    const implied = [500];
    // a named token is looked up in the state store, so any route that needs one can find it away
    if (access !== 'open') implied.push(401, 503);
    if (access === 'operator' || access === 'admin') implied.push(403);
    if (schema.params || schema.querystring || schema.body) implied.push(400);
    // a body can be over the cap or of a type the route does not take
    if (schema.body) implied.push(413, 415);
    schema.response = { ...errorResponses(...implied), ...schema.response };
  });
}
