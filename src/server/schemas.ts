/** Schemas shared by routes: they validate requests and feed the OpenAPI document. */

export const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string', description: 'a stable code (docs/errors.md)' },
        message: { type: 'string' },
        details: {
          description: 'more about it, by code (findings, dependents, what failed validation); null when none',
        },
      },
      required: ['code', 'message', 'details'],
    },
  },
  required: ['error'],
} as const;

/** The manifest's id syntax (schemas/plugin-manifest.schema.json). */
export const PLUGIN_ID_PATTERN = '^[a-z0-9]+(?:-[a-z0-9]+)*(?:\\.[a-z0-9]+(?:[-_][a-z0-9]+)*)+$';

/** A plugin id as a body field: the manifest's syntax (an operator names plugins that can be installed). */
export const pluginIdSchema = {
  type: 'string',
  maxLength: 128,
  pattern: PLUGIN_ID_PATTERN,
  description: 'a plugin id, in the manifest’s syntax: <publisher namespace>.<name>, lower case',
} as const;

/**
 * A plugin id in a path: the manifest's syntax, or a built-in's (`builtin.LogAttribute`). Nothing else
 * reaches a handler, so a PLUGIN_NOT_FOUND names only an id of that syntax (`..` and `ACME.X` were echoed).
 */
export const idParams = {
  type: 'object',
  properties: {
    id: {
      type: 'string',
      maxLength: 128,
      pattern: `^(?:builtin\\.[A-Za-z][A-Za-z0-9]*|${PLUGIN_ID_PATTERN.slice(1, -1)})$`,
      description: 'a plugin id: <publisher namespace>.<name> in lower case, or builtin.<Name>',
    },
  },
  required: ['id'],
} as const;

export const forceQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { force: { type: 'boolean', default: false } },
} as const;

/** Error responses a route documents. */
export function errors(...statuses: number[]): Record<number, typeof errorSchema> {
  return Object.fromEntries(statuses.map((s) => [s, errorSchema]));
}

const stringList = { type: 'array', items: { type: 'string' } } as const;

/** What holds a plugin or sandbox (`ConfinementInfo`). */
export const confinementSchema = {
  type: 'object',
  properties: {
    level: {
      enum: ['full', 'partial', 'none', 'trusted'],
      description:
        'full, partial or none: the OS confinement of a process sandbox on this host; trusted: a worker, inline or built-in plugin, not a security boundary',
    },
    missing: { ...stringList, description: 'what is missing, each with how to get it' },
    weak: { type: 'boolean', description: 'runs with less than full confinement because the operator accepted it' },
    summary: { type: 'string' },
  },
  required: ['level', 'missing', 'weak', 'summary'],
} as const;

/** `GET /api/sandboxes`: one entry per running sandbox. */
export const sandboxListSchema = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      namespace: { type: 'string' },
      defined: { type: 'boolean', description: 'whether the namespace was made by an operator (else default limits)' },
      plugins: stringList,
      mode: { enum: ['worker', 'process'] },
      state: { type: 'string' },
      limits: { type: 'object', additionalProperties: { type: 'integer' } },
      inFlight: { type: 'integer' },
      restarts: { type: 'integer' },
      crashes: { type: 'integer' },
      usage: { anyOf: [{ type: 'object', additionalProperties: true }, { type: 'null' }] },
      isolation: {
        type: 'object',
        properties: {
          ...confinementSchema.properties,
          mode: { enum: ['worker', 'process'] },
          actual: {
            type: 'boolean',
            description: 'true: what the running sandbox got; false: what it will get when it starts',
          },
          holds: {
            type: 'object',
            properties: {
              bwrap: { type: 'boolean' },
              cgroup: {
                anyOf: [
                  {
                    type: 'object',
                    properties: {
                      version: { anyOf: [{ enum: [1, 2] }, { type: 'null' }] },
                      memory: { type: 'boolean' },
                      cpu: { type: 'boolean' },
                      pids: { type: 'boolean' },
                    },
                  },
                  { type: 'null' },
                ],
              },
              prlimit: { type: 'boolean' },
              network: { enum: ['isolated', 'host'] },
            },
          },
        },
        required: [...confinementSchema.required, 'mode', 'actual', 'holds'],
      },
    },
  },
} as const;
