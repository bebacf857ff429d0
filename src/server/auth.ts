/**
 * Authentication on the route the router matched, deny by default.
 *
 * Each route declares who may call it in `config.access`: `open` (no token),
 * or the least role it needs (`viewer` < `operator` < `admin`). A route that
 * declares nothing needs `viewer` for GET and HEAD and `admin` for anything
 * else; the not-found handler and the framework's own errors need a token
 * too, so a request without one learns nothing but 401. The decision reads
 * the matched route's declaration, never the raw URL: a prefix test of the
 * URL was skipped by `/%61pi/…` and by absolute-form request targets, which
 * the router decodes and strips while a string test does not.
 */

import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { createError } from '../errors.ts';
import { tokenMatches } from './token.ts';

/** What a token may do: each role may do all that the ones before it may. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export type Access = 'open' | Role;

/** Who a request's token names. */
export interface Principal {
  /** The token's name, as the audit log records it (`admin` for the admin token). */
  name: string;
  role: Role;
  /** The local CLI's per-run credential (src/server/local-cli.ts), not a token of the store. */
  local?: boolean;
}

/** Finds who a bearer secret belongs to; null when it names nobody. */
export type Authenticate = (secret: string) => Principal | null | Promise<Principal | null>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (see src/server/auth.ts); absent: viewer for reads, admin otherwise. */
    access?: Access;
  }
  interface FastifyRequest {
    /** Who the request's token names; null on an open route called without one. */
    principal: Principal | null;
  }
  interface FastifyInstance {
    /**
     * Asks again who the request's token names, for a route that reads its
     * body itself (a multipart install): 401 if it was revoked meanwhile.
     */
    confirmPrincipal(request: FastifyRequest): Promise<void>;
  }
}

/** Whether `role` may do what `needed` allows. */
export function allows(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** The admin token (`DATABRIDGE_TOKEN` or `<data dir>/admin.token`) as an authenticator. */
export function adminToken(token: string): Authenticate {
  return (secret) => (tokenMatches(secret, token) ? { name: 'admin', role: 'admin' } : null);
}

/** The bearer secret of a request's headers, or null. */
export function bearerOf(headers: { authorization?: string | undefined }): string | null {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(headers.authorization ?? '');
  return m ? m[1]! : null;
}

/** Who the request's bearer token names, or null. */
export async function principalOf(request: FastifyRequest, authenticate: Authenticate): Promise<Principal | null> {
  const secret = bearerOf(request.headers);
  return secret ? await authenticate(secret) : null;
}

function accessOf(request: FastifyRequest): Access {
  const declared = request.routeOptions.config?.access;
  if (declared) return declared;
  // the not-found handler: any valid token learns that a route does not exist (an operator's PUT to no route got 403 'needs admin')
  if (request.is404) return 'viewer';
  return request.method === 'GET' || request.method === 'HEAD' ? 'viewer' : 'admin';
}

/**
 * Installs the check: every route gets its access filled in where it
 * declared none (so the OpenAPI document can say it), and an `onRequest`
 * hook, which runs after routing, decides from it.
 */
export function installAuth(app: FastifyInstance, authenticate: Authenticate): void {
  app.decorateRequest('principal', null);
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = [route.method].flat();
    const reads = methods.every((m) => m === 'GET' || m === 'HEAD');
    const access = route.config?.access ?? (reads ? 'viewer' : 'admin');
    route.config = { ...route.config, access };
    // the OpenAPI document says who may call each route
    const schema = route.schema as { hide?: boolean; security?: unknown; description?: string } | undefined;
    if (schema && !schema.hide) {
      schema.security = access === 'open' ? [] : [{ bearer: [] }];
      const who = access === 'open' ? 'No token needed.' : `Needs a token with the \`${access}\` role or higher.`;
      schema.description = schema.description ? `${schema.description}\n\n${who}` : who;
    }
  });
  // what the first check decided: a route that hands over to the not-found handler (a static file that is missing)
  // keeps its access, where the not-found handler's own would ask an open route for a token
  const decided = new WeakMap<FastifyRequest, Access>();
  const check = async (request: FastifyRequest) => {
    const access = decided.get(request) ?? accessOf(request);
    decided.set(request, access);
    if (access === 'open') {
      request.principal = await principalOf(request, authenticate);
      return;
    }
    const principal = await principalOf(request, authenticate);
    if (!principal) throw createError('UNAUTHORIZED', {});
    if (!allows(principal.role, access)) throw createError('FORBIDDEN_ROLE', { role: principal.role, needed: access });
    request.principal = principal;
  };
  // before the body is read: a request without a token is refused before it can send one
  app.addHook('onRequest', check);
  // and again once it is read, right before the handler: a body may arrive long after its headers,
  // and a token revoked meanwhile must not act (a revoked admin token made a new admin token 60 s later)
  // (a request without a body reaches its handler in the same turn as its first check: asked again, it would only cost time)
  app.addHook('preHandler', async (request) => {
    const headers = request.raw.headers;
    if (headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) return;
    await check(request);
  });
  app.decorate('confirmPrincipal', check);
}
