/** The trust store as operators use it: keys of publishers and revocations, every change audited. */

import { createError } from '../errors.ts';
import type { RevokedRelease, StateStore, TrustedKey } from '../store/types.ts';
import { isPrivateKey, keyIdOf, loadKey } from './signing.ts';

export class TrustStore {
  readonly #store: () => StateStore;
  readonly #changed: () => void;
  readonly #revoked: (actor: string) => Promise<void>;

  /**
   * `changed` is told of every change (a cluster node tells the others);
   * `revoked` is awaited after a revocation is recorded (the manager stops
   * the running plugins it concerns before the revocation returns).
   */
  constructor(
    store: () => StateStore,
    changed: () => void = () => {},
    revoked: (actor: string) => Promise<void> = async () => {},
  ) {
    this.#store = store;
    this.#changed = changed;
    this.#revoked = revoked;
  }

  /**
   * Trusts a publisher's Ed25519 public key (PEM) for plugin ids matching
   * `namespaces`. A key already trusted for another publisher is refused
   * with KEY_EXISTS unless `replace` says to move it (silently moving it
   * would let whoever re-adds a key take over what it signs); for the same
   * publisher, adding it again sets its namespaces.
   */
  async addKey(
    input: { publisher: string; publicKeyPem: string; namespaces: readonly string[]; replace?: boolean },
    actor = 'embed',
  ): Promise<TrustedKey> {
    let keyId: string;
    let publicKey: string;
    // a public key can be derived from a private one, but trusting that way spreads the private key
    if (isPrivateKey(input.publicKeyPem)) throw createError('KEY_NOT_PUBLIC', { file: 'the key given' });
    try {
      const key = loadKey(input.publicKeyPem, 'public');
      keyId = keyIdOf(key);
      publicKey = key.export({ type: 'spki', format: 'pem' }).toString();
    } catch (err) {
      throw createError('KEY_INVALID', { file: 'public key', reason: (err as Error).message });
    }
    if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(input.publisher)) {
      throw createError('USAGE', {
        message: `publisher "${input.publisher}" must be lower-case letters, digits and "-"`,
      });
    }
    const namespaces = input.namespaces.length ? [...input.namespaces] : [`${input.publisher}.*`];
    for (const ns of namespaces) {
      if (!/^(\*|[a-z0-9][a-z0-9._-]*(\.\*)?)$/.test(ns)) {
        throw createError('USAGE', { message: `namespace "${ns}" must look like acme.*, acme.upper or *` });
      }
    }
    const store = this.#store();
    const held = await store.getTrustedKey(keyId);
    if (held && held.publisher !== input.publisher && !input.replace) {
      throw createError(
        'KEY_EXISTS',
        { keyId, publisher: held.publisher },
        { details: { keyId, publisher: held.publisher, namespaces: held.namespaces } },
      );
    }
    const key = await store.addTrustedKey({ keyId, publisher: input.publisher, publicKey, namespaces });
    this.#changed();
    await store.appendAudit({
      actor,
      action: 'trust.add',
      target: keyId,
      result: 'ok',
      details: held
        ? { publisher: input.publisher, namespaces, was: { publisher: held.publisher, namespaces: held.namespaces } }
        : { publisher: input.publisher, namespaces },
    });
    return key;
  }

  list(): Promise<TrustedKey[]> {
    return this.#store().listTrustedKeys();
  }

  /** Revokes a key: releases it signed are refused from now on, installed or not, and stop if they run. */
  async revokeKey(keyId: string, reason: string, actor = 'embed'): Promise<TrustedKey> {
    const store = this.#store();
    const keys = await store.listTrustedKeys();
    const matches = keys.filter((k) => k.keyId === keyId || (keyId.length >= 8 && k.keyId.startsWith(keyId)));
    if (matches.length !== 1) throw createError('KEY_NOT_FOUND', { keyId });
    await store.revokeKey(matches[0]!.keyId, reason);
    this.#changed();
    await store.appendAudit({
      actor,
      action: 'trust.revoke',
      target: matches[0]!.keyId,
      result: 'ok',
      details: { reason },
    });
    await this.#revoked(actor);
    return (await store.getTrustedKey(matches[0]!.keyId))!;
  }

  async revokeRelease(pluginId: string, version: string, reason: string, actor = 'embed'): Promise<RevokedRelease> {
    const store = this.#store();
    const revoked = await store.revokeRelease(pluginId, version, reason);
    this.#changed();
    await store.appendAudit({
      actor,
      action: 'trust.revoke-release',
      target: `${pluginId}@${version}`,
      result: 'ok',
      details: { reason },
    });
    await this.#revoked(actor);
    return revoked;
  }

  listRevokedReleases(): Promise<RevokedRelease[]> {
    return this.#store().listRevokedReleases();
  }
}
