/**
 * Release signing: a DSSE envelope (signature.dsse.json) whose payload is
 * the release statement (id, version, publisher, engine range, issued-at,
 * every file with sha256 and size), signed with Ed25519 over DSSE's
 * pre-authentication encoding. A key's id is the sha256 of its SPKI bytes.
 */

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import type { FileEntry } from './files.ts';
import { type Finding, finding } from './findings.ts';

export const SIGNATURE_FILE = 'signature.dsse.json';
export const PAYLOAD_TYPE = 'application/vnd.databridge.release+json';
export const STATEMENT_TYPE = 'https://databridge.dev/release/v1';
const MAX_ENVELOPE_BYTES = 4 * 1024 * 1024;

export interface ReleaseStatement {
  _type: typeof STATEMENT_TYPE;
  id: string;
  version: string;
  publisher: string;
  engines: string | null;
  issuedAt: string;
  files: FileEntry[];
}

export interface DsseSignature {
  keyid: string;
  sig: string;
}

export interface DsseEnvelope {
  payloadType: string;
  /** base64 of the statement's JSON */
  payload: string;
  /** Empty for an unsigned release: the file list still gives checksums. */
  signatures: DsseSignature[];
}

/** DSSE's pre-authentication encoding: what is actually signed. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** sha256 (hex) of the public key's SPKI DER bytes. */
export function keyIdOf(key: KeyObject | string): string {
  const pub = typeof key === 'string' ? createPublicKey(key) : key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(pub.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

export interface KeyPair {
  privateKeyPem: string;
  publicKeyPem: string;
  keyId: string;
}

export function generateSigningKey(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

/** Parses a PEM key and checks it is Ed25519; throws a plain Error saying why not. */
export function loadKey(pem: string, kind: 'private' | 'public'): KeyObject {
  let key: KeyObject;
  try {
    key = kind === 'private' ? createPrivateKey(pem) : createPublicKey(pem);
  } catch (err) {
    throw new Error(`not a ${kind} key in PEM form: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`an Ed25519 key is needed, not ${key.asymmetricKeyType}`);
  return key;
}

/** Whether a PEM text holds a private key (of any kind): trust takes public keys only. */
export function isPrivateKey(pem: string): boolean {
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) return true;
  try {
    createPrivateKey(pem);
    return true;
  } catch {
    return false;
  }
}

/** Makes the envelope; with no key, an unsigned one (checksums only). */
export function createEnvelope(statement: ReleaseStatement, privateKey?: KeyObject): DsseEnvelope {
  const payload = Buffer.from(JSON.stringify(statement));
  const signatures = privateKey
    ? [{ keyid: keyIdOf(privateKey), sig: sign(null, pae(PAYLOAD_TYPE, payload), privateKey).toString('base64') }]
    : [];
  return { payloadType: PAYLOAD_TYPE, payload: payload.toString('base64'), signatures };
}

/** True when `signature` is a valid Ed25519 signature of the envelope by `publicKey`. */
export function verifyEnvelopeSignature(
  envelope: DsseEnvelope,
  signature: DsseSignature,
  publicKey: KeyObject,
): boolean {
  try {
    const payload = Buffer.from(envelope.payload, 'base64');
    return verify(null, pae(envelope.payloadType, payload), publicKey, Buffer.from(signature.sig, 'base64'));
  } catch {
    return false;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Parses signature.dsse.json text into its envelope and statement, or findings. */
export function parseEnvelope(
  text: string,
): { envelope: DsseEnvelope; statement: ReleaseStatement } | { findings: Finding[] } {
  const bad = (message: string) => ({ findings: [finding('SIGNATURE_INVALID', message, { path: SIGNATURE_FILE })] });
  if (text.length > MAX_ENVELOPE_BYTES) return bad('the signature file is too large');
  let envelope: DsseEnvelope;
  try {
    envelope = JSON.parse(text) as DsseEnvelope;
  } catch (err) {
    return bad(`not valid JSON: ${(err as Error).message}`);
  }
  if (
    envelope === null ||
    typeof envelope !== 'object' ||
    typeof envelope.payload !== 'string' ||
    typeof envelope.payloadType !== 'string' ||
    !Array.isArray(envelope.signatures) ||
    !envelope.signatures.every((s) => s && typeof s.keyid === 'string' && typeof s.sig === 'string')
  ) {
    return bad('not a DSSE envelope {payloadType, payload, signatures[{keyid, sig}]}');
  }
  if (envelope.payloadType !== PAYLOAD_TYPE) return bad(`payloadType must be ${PAYLOAD_TYPE}`);
  let statement: ReleaseStatement;
  try {
    statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as ReleaseStatement;
  } catch {
    return bad('the payload is not a JSON release statement');
  }
  const ok =
    statement !== null &&
    typeof statement === 'object' &&
    statement._type === STATEMENT_TYPE &&
    typeof statement.id === 'string' &&
    typeof statement.version === 'string' &&
    typeof statement.publisher === 'string' &&
    typeof statement.issuedAt === 'string' &&
    Array.isArray(statement.files) &&
    statement.files.every(
      (f) =>
        f &&
        typeof f.path === 'string' &&
        typeof f.sha256 === 'string' &&
        HEX64.test(f.sha256) &&
        Number.isSafeInteger(f.size) &&
        f.size >= 0,
    );
  if (!ok) return bad('the release statement is malformed');
  const unsafe = statement.files.find((f) => !isPortablePath(f.path));
  if (unsafe) return bad(`the statement lists an unsafe path "${unsafe.path}"`);
  return { envelope, statement };
}

/** NFC, `/`-separated, relative, no empty, `.` or `..` segment. */
export function isPortablePath(path: string): boolean {
  if (path === '' || path.startsWith('/') || path.includes('\\') || path.includes('\0')) return false;
  if (path.normalize('NFC') !== path) return false;
  return path.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

/** Whether a namespace pattern (`acme.*`, `acme.upper`, `*`) covers a plugin id. */
export function namespaceAllows(pattern: string, id: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return id.startsWith(pattern.slice(0, -1));
  return pattern === id;
}
