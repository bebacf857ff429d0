/**
 * Every error DataBridge throws on purpose is made here, by code: a stable
 * `code`, a message for people, `details` for programs and, where it reaches
 * HTTP, a status. docs/errors.md lists every code; a test keeps them in step.
 */

interface ErrorSpec<P> {
  status: number;
  message: (params: P) => string;
}

function spec<P = Record<string, never>>(status: number, message: (params: P) => string): ErrorSpec<P> {
  return { status, message };
}

/** The catalogue of error codes. */
export const ERRORS = {
  CONFIG_INVALID: spec<{ summary: string }>(400, (p) => `Invalid configuration: ${p.summary}`),
  USAGE: spec<{ message: string }>(400, (p) => p.message),
  BUILD_FAILED: spec<{ dir: string; message: string }>(422, (p) => `Building ${p.dir} failed: ${p.message}`),
  SCAFFOLD_REFUSED: spec<{ dir: string; reason: string }>(
    409,
    (p) => `Not writing a plugin into ${p.dir}: ${p.reason}`,
  ),
  REGISTRATION_INVALID: spec<{ id: string; reason: string }>(
    400,
    (p) => `Plugin "${p.id}" cannot be registered: ${p.reason}`,
  ),
  PLUGIN_NOT_FOUND: spec<{ id: string }>(404, (p) => `No plugin with id "${p.id}"`),
  PLUGIN_DUPLICATE: spec<{ id: string }>(409, (p) => `A plugin with id "${p.id}" is already registered`),
  COMPONENT_DUPLICATE: spec<{ component: string; id: string; owner: string }>(
    409,
    (p) => `Plugin "${p.id}" provides "${p.component}", which plugin "${p.owner}" already provides`,
  ),
  PLUGIN_HAS_DEPENDENTS: spec<{ id: string; action: string; dependents: readonly string[] }>(
    409,
    (p) =>
      `Cannot ${p.action} "${p.id}": enabled plugins depend on it (${p.dependents.join(', ')}); --force (force=true in the API) does it anyway`,
  ),
  PLUGIN_DISABLED: spec<{ id: string; component: string }>(
    409,
    (p) => `"${p.component}" belongs to plugin "${p.id}", which is disabled`,
  ),
  PLUGIN_FAILED: spec<{ id: string; component: string; reason: string }>(
    409,
    (p) => `"${p.component}" belongs to plugin "${p.id}", which is in error: ${p.reason}`,
  ),
  PLUGIN_BUILTIN: spec<{ id: string; action: string }>(409, (p) => `Cannot ${p.action} "${p.id}": it is built in`),
  COMPONENT_UNKNOWN: spec<{ kind: string; component: string }>(
    404,
    (p) => `No ${p.kind} of type "${p.component}" is registered`,
  ),
  DATA_DIR_LOCKED: spec<{ dataDir: string; holder: string }>(
    409,
    (p) =>
      `The data directory ${p.dataDir} is in use by ${p.holder}: one process writes a data directory at a time; stop it first, or give another --data-dir`,
  ),
  ADDRESS_IN_USE: spec<{ address: string }>(
    409,
    (p) =>
      `${p.address} is already in use by another program; choose another port with --port <n>, DATABRIDGE_PORT or serve.port in databridge.json (0 picks a free one)`,
  ),
  SERVER_UNREACHABLE: spec<{ address: string; pid: number; reason: string }>(
    503,
    (p) =>
      `The server (pid ${p.pid}) that holds this data directory does not answer at ${p.address}: ${p.reason}; try again once it has started, or stop it`,
  ),
  STORE_CORRUPT: spec<{ file: string; reason: string }>(
    500,
    (p) => `The state database ${p.file} is damaged (${p.reason}); restore it from a backup or move it aside`,
  ),
  STORE_FOREIGN: spec<{ file: string }>(
    500,
    (p) => `${p.file} is a SQLite database of another program; point --data-dir at a DataBridge data directory`,
  ),
  STORE_TOO_NEW: spec<{ file: string; version: number; known: number }>(
    500,
    (p) =>
      `The state database ${p.file} has schema version ${p.version}, newer than this DataBridge knows (${p.known}); upgrade DataBridge`,
  ),
  NODE_NOT_FOUND: spec<{ id: string }>(404, (p) => `No cluster node "${p.id}"`),
  NODE_ALIVE: spec<{ id: string }>(
    409,
    (p) => `Cluster node "${p.id}" is alive (its heartbeat is recent); only a silent node can be forgotten`,
  ),
  STORE_UNAVAILABLE: spec<{ location: string; reason: string }>(
    503,
    (p) => `The state store at ${p.location} is unavailable: ${p.reason}`,
  ),
  STORE_LOCKED: spec<{ file: string }>(
    409,
    (p) => `The state database ${p.file} is busy: another DataBridge holds it; try again`,
  ),
  NAMESPACE_EXISTS: spec<{ name: string }>(409, (p) => `A namespace named "${p.name}" already exists`),
  NAMESPACE_NOT_FOUND: spec<{ name: string }>(404, (p) => `No namespace named "${p.name}"`),
  SESSION_MISUSE: spec<{ message: string }>(400, (p) => `Session misuse: ${p.message}`),
  SESSION_UNKNOWN_RELATIONSHIP: spec<{ relationship: string; known: readonly string[] }>(
    400,
    (p) =>
      `Relationship "${p.relationship}" is not declared by the processor (declared: ${p.known.join(', ') || 'none'})`,
  ),
  SESSION_UNTRANSFERRED: spec<{ count: number; ids: readonly string[] }>(
    400,
    (p) =>
      `Commit refused: ${p.count} FlowFile(s) were neither transferred nor removed (${p.ids.join(', ')}); the session was rolled back`,
  ),
  SESSION_COMMIT_FAILED: spec<{ reason: string }>(
    500,
    (p) => `The session could not be committed (${p.reason}); it was rolled back`,
  ),
  EXPRESSION_INVALID: spec<{ expression: string; reason: string }>(
    400,
    (p) => `Invalid expression "${p.expression}": ${p.reason}`,
  ),
  FLOW_INVALID: spec<{ count: number; first: string }>(
    400,
    (p) => `The flow has ${p.count} problem(s); the first: ${p.first}`,
  ),
  FLOW_DUPLICATE_PROCESSOR: spec<{ id: string; kind?: string }>(
    409,
    (p) => `The flow already has a ${p.kind ?? 'processor'} "${p.id}"`,
  ),
  FLOW_DUPLICATE_CONNECTION: spec<{ id: string }>(409, (p) => `The flow already has a connection "${p.id}"`),
  FLOW_UNKNOWN_PROCESSOR: spec<{ id: string }>(404, (p) => `The flow has no processor "${p.id}"`),
  FLOW_UNKNOWN_RELATIONSHIP: spec<{ processor: string; relationship: string; known: readonly string[] }>(
    400,
    (p) =>
      `Processor "${p.processor}" has no relationship "${p.relationship}" (it has: ${p.known.join(', ') || 'none'})`,
  ),
  FLOW_CLOSED: spec(409, () => 'The flow controller has been closed'),
  PROCESSOR_INVALID: spec<{ id: string; findings: readonly { property?: string; message: string }[] }>(
    400,
    (p) =>
      `Processor ${p.id} cannot start: ${p.findings.map((f) => (f.property ? `${f.property} ${f.message}` : f.message)).join('; ')}`,
  ),
  PROCESSOR_START_FAILED: spec<{ id: string; reason: string }>(
    500,
    (p) => `Processor "${p.id}" failed to initialize: ${p.reason}`,
  ),
  INSTALL_REFUSED: spec<{ codes: readonly string[] }>(422, (p) => `The plugin was refused: ${p.codes.join(', ')}`),
  INSTALL_CONFLICT: spec<{ codes: readonly string[] }>(409, (p) =>
    p.codes.includes('ALREADY_INSTALLED')
      ? 'That release is already installed; --force (force=true in the API) reinstalls it'
      : `The install conflicts with what was installed before: ${p.codes.join(', ')}`,
  ),
  RELOAD_FAILED: spec<{ id: string; codes: readonly string[] }>(
    422,
    (p) => `Reloading "${p.id}" failed (${p.codes.join(', ')}); the loaded version keeps serving`,
  ),
  BUNDLE_INVALID: spec<{ codes: readonly string[] }>(422, (p) => `The bundle was refused: ${p.codes.join(', ')}`),
  KEY_INVALID: spec<{ file: string; reason: string }>(400, (p) => `${p.file}: ${p.reason}`),
  PRIVATE_KEY_SENT: spec(
    400,
    () =>
      'That is a private key: send the public key only. A private key must never leave its owner; treat this one as exposed and make a new pair',
  ),
  KEY_NOT_PUBLIC: spec<{ file: string }>(
    400,
    (p) =>
      `${p.file} holds a private key: trust takes the public key only (the .pub file databridge keygen wrote beside it); keep the private key with its owner`,
  ),
  KEY_NOT_FOUND: spec<{ keyId: string }>(404, (p) => `No key ${p.keyId} in the trust store`),
  KEY_EXISTS: spec<{ keyId: string; publisher: string }>(
    409,
    (p) =>
      `Key ${p.keyId} is already trusted for publisher ${p.publisher}; moving it to another publisher needs an explicit replace`,
  ),
  LIMIT_EXCEEDED: spec<{ limit: string; value: number; max: number }>(429, (p) =>
    p.limit === 'aborted' ? 'The task was aborted' : `${p.limit} exceeded: ${p.value}, the most is ${p.max}`,
  ),
  SANDBOX_CRASHED: spec<{ namespace: string; reason: string }>(
    503,
    (p) => `The sandbox of ${p.namespace} stopped (${p.reason}); its sessions were rolled back`,
  ),
  SANDBOX_FAILED: spec<{ namespace: string; reason: string }>(
    503,
    (p) => `The sandbox of ${p.namespace} was given up: ${p.reason}`,
  ),
  ISOLATION_UNAVAILABLE: spec<{ id: string; level: string; missing: readonly string[] }>(
    503,
    (p) =>
      `Plugin "${p.id}" runs in a process sandbox, and this host cannot confine one fully (level ${p.level}); missing: ${p.missing.join('; ') || 'unknown'}. Install what is missing, list the plugin as trusted for a worker (--worker-plugin), or start with --allow-weak-isolation to run it with what holds`,
  ),
  UNAUTHORIZED: spec(401, () => 'A valid bearer token is required: Authorization: Bearer <token>'),
  FORBIDDEN_ROLE: spec<{ role: string; needed: string }>(
    403,
    (p) => `This token's role is ${p.role}; this needs the ${p.needed} role`,
  ),
  TOKEN_EXISTS: spec<{ name: string }>(409, (p) => `A token named "${p.name}" already exists`),
  TOKEN_NOT_FOUND: spec<{ name: string }>(404, (p) => `No token named "${p.name}"`),
  METHOD_NOT_ALLOWED: spec<{ method: string; allow: readonly string[] }>(405, (p) =>
    p.allow.length
      ? `${p.method} is not allowed here; allowed: ${p.allow.join(', ')}`
      : `${p.method} is not served by this server`,
  ),
  BAD_REQUEST: spec<{ reason: string }>(400, (p) => `Bad request: ${p.reason}`),
  URI_TOO_LONG: spec(414, () => 'The request target is too long'),
  HEADERS_TOO_LARGE: spec(431, () => 'The request’s headers are over the cap (16 KiB)'),
  REQUEST_TIMEOUT: spec(408, () => 'The request did not arrive in time'),
  BODY_TOO_LARGE: spec(413, () => 'The request body is over the upload cap'),
  UNSUPPORTED_MEDIA_TYPE: spec(415, () => 'That content type is not accepted here'),
  EVENT_STREAMS_FULL: spec<{ max: number }>(
    503,
    (p) => `The server has ${p.max} event streams open, its most; try again later`,
  ),
  TOO_MANY_EVENT_STREAMS: spec<{ max: number }>(
    429,
    (p) => `This token has ${p.max} event streams open, its most; close one first`,
  ),
  CATALOG_UNAVAILABLE: spec<{ catalog: string; reason: string }>(
    502,
    (p) => `The catalog ${p.catalog} did not answer: ${p.reason}; nothing was changed`,
  ),
  CATALOG_PLUGIN_NOT_FOUND: spec<{ id: string; catalogs: readonly string[] }>(
    404,
    (p) => `No plugin release of "${p.id}" in the catalogs (${p.catalogs.join(', ')})`,
  ),
  CATALOG_UNRESOLVED: spec<{ id: string; ranges: readonly string[] }>(
    409,
    (p) => `No release of "${p.id}" in the catalogs satisfies every range on it: ${p.ranges.join(', ')}`,
  ),
  INTERNAL: spec(500, () => 'Internal error; the server log has the details'),
  ROUTE_NOT_FOUND: spec(404, () => 'No route for this method and path'),
  MANAGER_SHUT_DOWN: spec(409, () => 'The plugin manager has been shut down'),
} as const;

export type ErrorCode = keyof typeof ERRORS;
type ParamsOf<C extends ErrorCode> = Parameters<(typeof ERRORS)[C]['message']>[0];

/** An error with a stable code; `details` carries what a program needs (findings, fields). */
export class DataBridgeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: { status: number; details?: unknown; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DataBridgeError';
    this.code = code;
    this.status = options.status;
    this.details = options.details;
  }

  /** Plain data, for JSON output and for crossing a sandbox boundary. */
  toJSON(): { code: ErrorCode; message: string; details: unknown } {
    return { code: this.code, message: this.message, details: this.details ?? null };
  }
}

/**
 * Makes the error for a code.
 *
 * @example
 * throw createError('PLUGIN_NOT_FOUND', { id: 'acme.upper' });
 */
export function createError<C extends ErrorCode>(
  code: C,
  params: ParamsOf<C>,
  options: { details?: unknown; cause?: unknown } = {},
): DataBridgeError {
  const entry = ERRORS[code] as ErrorSpec<ParamsOf<C>>;
  return new DataBridgeError(code, entry.message(params), { status: entry.status, ...options });
}

/** True for an error made by `createError`, optionally of one code. */
export function isDataBridgeError(err: unknown, code?: ErrorCode): err is DataBridgeError {
  return err instanceof DataBridgeError && (code === undefined || err.code === code);
}

/**
 * Whatever was thrown, as an Error whose message can be read: the Error
 * itself when its message is a string, else a new one saying what was
 * thrown. Never throws, whatever the value (a Proxy, getters or a toString
 * that throw).
 *
 * @example
 * catch (err) { failure = asError(err); }
 */
export function asError(value: unknown): Error {
  try {
    if (value instanceof Error && typeof value.message === 'string') return value;
    return new Error(String(value));
  } catch {
    return new Error('a value that cannot be read as an error was thrown');
  }
}
