/** `serve`'s listening: an address in use said as such, and where a local client reaches the server. */

import type { FastifyInstance } from 'fastify';
import { createError } from '../errors.ts';

/** Listens, or throws ADDRESS_IN_USE naming the address and how to choose another. */
export async function listen(app: FastifyInstance, host: string, port: number): Promise<void> {
  try {
    await app.listen({ host, port });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw createError(
        'ADDRESS_IN_USE',
        { address: `${host.includes(':') ? `[${host}]` : host}:${port}` },
        { cause: err },
      );
    throw err;
  }
}

/** The address a client on this machine uses: loopback where the server listens on every address. */
export function connectAddress(scheme: string, host: string, port: number): string {
  const local = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' || host === '[::]' ? '::1' : host;
  return `${scheme}://${local.includes(':') ? `[${local}]` : local}:${port}`;
}
