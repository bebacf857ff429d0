/**
 * The server's own TLS: a certificate and its key, read and checked before
 * the server starts, so a wrong file is a clear usage error rather than an
 * OpenSSL message at listen time.
 */

import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { createError } from '../errors.ts';

/** PEM certificate (chain) and private key, as Node's `https` takes them. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads `--tls-cert` and `--tls-key`: both or neither (undefined: plain
 * HTTP). Throws USAGE when only one is given, a file cannot be read, or the
 * key does not belong to the certificate.
 *
 * @example
 * const tls = readTlsFiles('server.crt', 'server.key');
 */
export function readTlsFiles(certFile: string | undefined, keyFile: string | undefined): TlsFiles | undefined {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) {
    throw createError('USAGE', {
      message: `--tls-cert and --tls-key go together (env DATABRIDGE_TLS_CERT, DATABRIDGE_TLS_KEY): ${certFile ? '--tls-key' : '--tls-cert'} is missing`,
    });
  }
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw createError('USAGE', { message: `the TLS ${what} ${file} cannot be read: ${(err as Error).message}` });
    }
  };
  const files = { cert: read(certFile, 'certificate'), key: read(keyFile, 'key') };
  try {
    // checks that both parse and that the key is the certificate's
    createSecureContext(files);
  } catch (err) {
    throw createError('USAGE', {
      message: `the TLS certificate ${certFile} and key ${keyFile} cannot be used together: ${(err as Error).message}`,
    });
  }
  return files;
}
