/**
 * The credential a CLI command on this machine uses to act through the
 * server that holds its data directory: made fresh at each start, kept only
 * in the server's memory and in `<data dir>/lock.json` (mode 0600, the data
 * directory 0700), so only the data directory's owner (who could edit its
 * state directly anyway) can read it, and it is worth nothing once the server
 * stops. It acts as admin; the audit log names the CLI's user, as a command
 * run with no server does (`cli:<user>`).
 */

import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Authenticate } from './auth.ts';

/** Carries the CLI's actor (`cli:<user>`) for the audit log; read only with the local credential. */
export const ACTOR_HEADER = 'x-databridge-actor';
const ACTOR_PATTERN = /^cli:[A-Za-z0-9._@-]{1,64}$/;

/** A fresh credential, 256 random bits. */
export function newLocalCliToken(): string {
  return `dbl_${randomBytes(32).toString('base64url')}`;
}

/** `authenticate`, and besides it the local CLI credential (named `cli`, role admin, marked local). */
export function withLocalCli(authenticate: Authenticate, token: string): Authenticate {
  const expected = hash('sha256', token, 'buffer');
  return (secret) =>
    timingSafeEqual(hash('sha256', secret, 'buffer'), expected)
      ? { name: 'cli', role: 'admin', local: true }
      : authenticate(secret);
}

/** The audit log's actor for a request: the token's name, or for the local CLI the user it says it is. */
export function actorOf(request: FastifyRequest): string {
  const principal = request.principal;
  if (!principal) return `api:${request.ip}`;
  if (principal.local) {
    const said = request.headers[ACTOR_HEADER];
    return typeof said === 'string' && ACTOR_PATTERN.test(said) ? said : 'cli';
  }
  return `token:${principal.name}`;
}
