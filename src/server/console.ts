/**
 * The web console's static files (`console/` in the package): read once at
 * start, served from memory with an ETag, no token needed (the page asks
 * for one). Only the files that are there are routes, so no request path
 * ever reaches the file system.
 */

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { PACKAGE_ROOT } from '../version.ts';

const CONSOLE_DIR = join(PACKAGE_ROOT, 'console');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

// the console loads nothing from elsewhere, and nothing may frame it
const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

function load(name: string): StaticFile {
  const body = readFileSync(join(CONSOLE_DIR, name));
  return {
    body,
    type: TYPES[extname(name)] ?? 'application/octet-stream',
    etag: `"${createHash('sha1').update(body).digest('base64url')}"`,
  };
}

export const consoleRoutes: FastifyPluginAsync = async (app) => {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(CONSOLE_DIR)) if (TYPES[extname(name)]) files.set(name, load(name));
  const serve = (file: StaticFile) => ({
    schema: { hide: true },
    config: { access: 'open' as const },
    handler: async (request: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
      reply
        .header('etag', file.etag)
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer');
      if (file.type.startsWith('text/html')) reply.header('content-security-policy', CSP);
      if (request.headers['if-none-match'] === file.etag) return reply.status(304).send();
      return reply.type(file.type).send(file.body);
    },
  });
  const index = files.get('index.html');
  if (index) app.get('/', serve(index));
  for (const [name, file] of files) app.get(`/console/${name}`, serve(file));
};
