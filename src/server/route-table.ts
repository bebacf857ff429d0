/**
 * The methods each path takes, for 405 answers with `Allow`: the router
 * answers an unknown method on a known path as not found, so the
 * not-found handler asks here whether some other method would match.
 */

import type { FastifyInstance, RouteOptions } from 'fastify';

export interface RouteTable {
  /** The methods registered for a concrete path (empty when no route has it). */
  allowed(path: string): string[];
}

// exact, as the router matches: `/api/whoami/` is not `/api/whoami` (it answered 405 listing GET while GET was refused)
function patternOf(url: string): RegExp {
  const parts = url.split('/').map((seg) => {
    if (seg === '*') return '.*';
    if (seg.startsWith(':')) return '[^/]+';
    return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('/')}$`);
}

/** Records every route registered after this call. */
export function routeTable(app: FastifyInstance): RouteTable {
  const routes: { pattern: RegExp; methods: string[] }[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    routes.push({ pattern: patternOf(route.url), methods: [route.method].flat() });
  });
  return {
    allowed(path) {
      let decoded: string;
      try {
        decoded = decodeURI(path);
      } catch {
        return [];
      }
      const methods = new Set<string>();
      for (const r of routes) if (r.pattern.test(decoded)) for (const m of r.methods) methods.add(m);
      return [...methods].sort();
    },
  };
}
