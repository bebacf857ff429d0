/**
 * One GET to an npm registry, made as npm makes it, over Node's own `http`
 * and `https`: the credentials npm would send (npm-registry-fetch's
 * `getAuth`, reading `.npmrc` exactly as npm does), npm's own agent
 * (`@npmcli/agent`: keep-alive, `proxy` / `https-proxy` / `noproxy` and the
 * proxy variables of the environment, `ca` / `cafile` / `cert` / `key` /
 * `strict-ssl`), redirects (credentials only to the catalog's own origin),
 * gzip, a deadline, a size cap and the integrity check (SRI, as
 * npm's `ssri` checks it).
 *
 * Why not npm-registry-fetch's whole stack (make-fetch-happen, minipass-fetch,
 * retries and a cache layer the catalog turns off): on a loopback registry it
 * took 2 ms a packument where this takes 1, and an install by name asks for a
 * packument and a tarball, so that layering was most of what an install by
 * name added over installing the same bundle from disk (docs/design.md).
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import { getAgent } from '@npmcli/agent';
import getAuth, { type Auth } from 'npm-registry-fetch/lib/auth.js';
import { VERSION } from '../version.ts';

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

/** A registry's answer that is not a body: `code` as npm names it (`E404`, `ECONNREFUSED`, `EINTEGRITY`, …). */
export class RegistryError extends Error {
  readonly code: string;
  readonly statusCode: number | null;
  constructor(code: string, message: string, statusCode: number | null = null) {
    super(message);
    this.name = 'RegistryError';
    this.code = code;
    this.statusCode = statusCode;
  }
}

export interface RegistryGet {
  url: string;
  /** The catalog asked: the registry whose `.npmrc` credentials a request to its host carries. */
  registry: string;
  npmrc: Readonly<Record<string, string>>;
  /** `json` asks for a document (gzip welcome); `tarball` for bytes that are already compressed. */
  kind: 'json' | 'tarball';
  timeoutMs: number;
  /** The most bytes read (after decompression); more is `ETOOLARGE`. */
  maxBytes: number;
  /** An SRI string the bytes must match (`EINTEGRITY` otherwise). */
  integrity?: string | null;
  /** Aborts when the whole question (all its requests) has run out of time. */
  signal?: AbortSignal;
}

const MAX_REDIRECTS = 10;
const USER_AGENT = `databridge/${VERSION} node/${process.version} ${process.platform} ${process.arch}`;

/** Whether `.npmrc` holds credentials for some registry (`//host/…:_authToken` and the like). */
function hasCredentials(npmrc: Readonly<Record<string, string>>): boolean {
  for (const key in npmrc) if (key.startsWith('//')) return true;
  return false;
}

/**
 * A registry on this machine: its documents are asked for uncompressed.
 * Compression trades CPU at both ends for bandwidth, and on loopback there
 * is none to save (it cost a third of a packument's time from a local
 * Verdaccio). Tarballs are compressed already and asked for as they are.
 */
function isLoopback(url: URL): boolean {
  const host = url.hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** `cafile`s read, by path: read once, as npm reads its configuration once, not on every request. */
const caFiles = new Map<string, string>();

/** The agent options `.npmrc` gives for `url`, as npm maps them. */
function agentOptions(url: URL, npmrc: Readonly<Record<string, string>>, cert: string | null, key: string | null) {
  const cafile = npmrc.cafile;
  let ca: string | undefined = npmrc.ca;
  if (!ca && cafile) {
    ca = caFiles.get(cafile);
    if (ca === undefined) {
      try {
        ca = readFileSync(cafile, 'utf8');
      } catch (err) {
        throw new RegistryError('ECAFILE', `the cafile ${cafile} in .npmrc cannot be read (${(err as Error).message})`);
      }
      caFiles.set(cafile, ca);
    }
  }
  return {
    proxy: (url.protocol === 'https:' ? npmrc['https-proxy'] : undefined) || npmrc.proxy || undefined,
    noProxy: npmrc.noproxy || undefined,
    rejectUnauthorized: npmrc['strict-ssl'] !== 'false',
    ca,
    cert: cert ?? npmrc.cert ?? undefined,
    key: key ?? npmrc.key ?? undefined,
  };
}

const SRI_ALGORITHMS = ['sha512', 'sha384', 'sha256', 'sha1'] as const;

/**
 * Whether `bytes` match an SRI string (`sha512-<base64> …`), as npm's `ssri`
 * decides: the strongest algorithm the string names is checked, and one of
 * its hashes must match. A string naming none of these matches nothing.
 * (ssri itself cost a quarter of a millisecond an install, mostly building
 * strings; this is node:crypto and a compare.)
 */
export function matchesIntegrity(bytes: Buffer, sri: string): boolean {
  const hashes = sri
    .trim()
    .split(/\s+/)
    .map((h) => /^(sha512|sha384|sha256|sha1)-([A-Za-z0-9+/]+={0,2})(?:\?\S*)?$/.exec(h))
    .filter((m): m is RegExpExecArray => m !== null);
  const algorithm = SRI_ALGORITHMS.find((a) => hashes.some((m) => m[1] === a));
  if (!algorithm) return false;
  const digest = createHash(algorithm).update(bytes).digest();
  return hashes.some((m) => {
    if (m[1] !== algorithm) return false;
    const want = Buffer.from(m[2]!, 'base64');
    return want.length === digest.length && timingSafeEqual(want, digest);
  });
}

/** A proxy named in the environment (npm's agent reads these variables as npm does). */
const PROXY_IN_ENV = Object.entries(process.env).some(([k, v]) => v && /^(https?_proxy|proxy)$/i.test(k));
const NPMRC_NETWORK = ['proxy', 'https-proxy', 'ca', 'cafile', 'cert', 'key'];

/**
 * The agent for a request: npm's own (`@npmcli/agent`) when `.npmrc` or the
 * environment names a proxy or TLS setting, else Node's keep-alive global
 * agent. npm's agent is what makes those settings hold; with none of them it
 * only added a third of a millisecond a request (its own timers and DNS cache).
 */
function agentFor(url: URL, req: RegistryGet, auth: Auth | null): http.Agent {
  const npmrc = req.npmrc;
  const npms =
    PROXY_IN_ENV ||
    auth?.cert ||
    npmrc['strict-ssl'] === 'false' ||
    NPMRC_NETWORK.some((k) => npmrc[k] !== undefined && npmrc[k] !== '');
  if (!npms) return url.protocol === 'https:' ? https.globalAgent : http.globalAgent;
  return getAgent(url.href, {
    ...agentOptions(url, npmrc, auth?.cert ?? null, auth?.key ?? null),
    timeout: req.timeoutMs,
  });
}

/** The bytes at `req.url`, following redirects, checked against `req.integrity` when given. */
export async function registryGet(req: RegistryGet): Promise<Buffer> {
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const deadline = req.signal ? AbortSignal.any([timeout, req.signal]) : timeout;
  // the credentials are the catalog's, and go only where it is: its scheme, host and port (a tarball named on
  // another host, or a redirect elsewhere or down to http, is asked for without them)
  const credentialed = new URL(req.registry).origin;
  let url = new URL(req.url);
  for (let hops = 0; ; hops++) {
    const answer = await getOne(url, req, url.origin === credentialed, deadline);
    if (answer.redirect === null) {
      if (req.integrity && !matchesIntegrity(answer.body, req.integrity))
        throw new RegistryError('EINTEGRITY', `it served ${req.url} with bytes that do not match ${req.integrity}`);
      return answer.body;
    }
    if (hops === MAX_REDIRECTS)
      throw new RegistryError('EREDIRECT', `it redirected ${req.url} more than ${MAX_REDIRECTS} times`);
    url = new URL(answer.redirect, url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new RegistryError(
        'EREDIRECT',
        `it redirected ${req.url} to a ${url.protocol} address (http or https only)`,
      );
  }
}

/** TLS failures: the registry's certificate, not the registry, is what is wrong. */
const CERTIFICATE =
  /^(CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_|ERR_TLS_CERT|HOSTNAME_MISMATCH)/;

/** The failure of a request to `url` as a RegistryError. */
function registryError(
  url: URL,
  err: Error & { code?: string },
  req: RegistryGet,
  deadline: AbortSignal,
): RegistryError {
  if (err instanceof RegistryError) return err;
  if (deadline.aborted) {
    return new RegistryError(
      'ETIMEDOUT',
      req.signal?.aborted
        ? `it had not answered ${url.href} when the time for the whole question ran out`
        : `it did not answer ${url.href} within ${req.timeoutMs} ms`,
    );
  }
  const code = err.code ?? 'FETCH_ERROR';
  if (CERTIFICATE.test(code))
    return new RegistryError(
      'ECERT',
      `its TLS certificate is not trusted (${code}); ca, cafile and strict-ssl in .npmrc say which are`,
    );
  return new RegistryError(code, `${url.href}: ${err.message}`);
}

type Answer = { body: Buffer; redirect: null } | { body: null; redirect: string };

/**
 * One request: the body, or where it redirects. It settles exactly once, and
 * by the deadline whatever the other end does: an answer Node drops without
 * an event (a `101 Switching Protocols`, a connection closed before an
 * answer) settles it as a failure rather than leaving it pending for ever.
 */
function getOne(url: URL, req: RegistryGet, withCredentials: boolean, deadline: AbortSignal): Promise<Answer> {
  const auth =
    withCredentials && hasCredentials(req.npmrc) ? getAuth(url.href, { ...req.npmrc, registry: req.registry }) : null;
  const headers: Record<string, string> = {
    'user-agent': USER_AGENT,
    accept: req.kind === 'json' ? 'application/json' : '*/*',
    'accept-encoding': req.kind === 'json' && !isLoopback(url) ? 'gzip, deflate' : 'identity',
  };
  if (auth?.token) headers.authorization = `Bearer ${auth.token}`;
  else if (auth?.auth) headers.authorization = `Basic ${auth.auth}`;
  let agent: http.Agent;
  try {
    agent = agentFor(url, req, auth);
  } catch (err) {
    return Promise.reject(
      err instanceof RegistryError
        ? err
        : new RegistryError(
            'EPROXY',
            `the proxy in .npmrc or the environment cannot be used (${(err as Error).message})`,
          ),
    );
  }
  const tooLarge = () => new RegistryError('ETOOLARGE', `it answered ${url.href} with more than ${req.maxBytes} bytes`);
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    let settled = false;
    let answered = false;
    const settle = (result: Answer | Error) => {
      if (settled) return;
      settled = true;
      deadline.removeEventListener('abort', onAbort);
      if (result instanceof Error) {
        request.destroy();
        reject(registryError(url, result, req, deadline));
      } else resolve(result);
    };
    const onAbort = () => settle(new Error('aborted'));
    const request = get(url, { agent, headers }, (res) => {
      answered = true;
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        settle({ body: null, redirect: res.headers.location });
        return;
      }
      if (status !== 200) {
        res.resume();
        settle(new RegistryError(`E${status}`, `it answered ${url.href} with HTTP ${status}`, status));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let ended = false;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > req.maxBytes) settle(tooLarge());
        else chunks.push(chunk);
      });
      res.on('error', settle);
      res.on('close', () => {
        if (!ended) settle(new RegistryError('ECONNRESET', `it closed the connection while answering ${url.href}`));
      });
      res.on('end', () => {
        ended = true;
        const raw = Buffer.concat(chunks, size);
        const encoding = (res.headers['content-encoding'] ?? 'identity').toLowerCase();
        const decoded =
          encoding === 'gzip' || encoding === 'x-gzip'
            ? gunzipAsync(raw, { maxOutputLength: req.maxBytes })
            : encoding === 'deflate'
              ? inflateAsync(raw, { maxOutputLength: req.maxBytes })
              : encoding === 'identity'
                ? Promise.resolve(raw)
                : Promise.reject(
                    new RegistryError(
                      'EENCODING',
                      `it answered ${url.href} in an encoding not asked for (${encoding})`,
                    ),
                  );
        decoded.then(
          (body) => settle({ body, redirect: null }),
          (err: Error & { code?: string }) => settle(err.code === 'ERR_BUFFER_TOO_LARGE' ? tooLarge() : err),
        );
      });
    });
    request.on('error', settle);
    // Node drops a 101 (or any upgrade) without a response when nothing listens for it
    request.on('upgrade', (_res, socket) => {
      socket.destroy();
      settle(
        new RegistryError('EPROTO', `it answered ${url.href} by switching protocols (HTTP 101), not with a document`),
      );
    });
    request.on('close', () => {
      if (!answered) settle(new RegistryError('ECONNRESET', `it closed the connection before answering ${url.href}`));
    });
    if (deadline.aborted) onAbort();
    else deadline.addEventListener('abort', onAbort, { once: true });
  });
}
