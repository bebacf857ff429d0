/** `databridge trust add|list|revoke|revoke-release`: the trust store. */

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { createError } from '../errors.ts';
import { isPrivateKey } from '../plugin/signing.ts';
import type { RevokedRelease, TrustedKey } from '../store/types.ts';
import { cliActor, print, type StateOptions, table, withManager, withStateOptions } from './common.ts';
import { changeState, readState } from './remote.ts';

export function registerTrust(program: Command): void {
  const trust = program.command('trust').description('manage trusted publisher keys and revocations');

  withStateOptions(
    trust
      .command('add')
      .description('trust a publisher’s public key for plugin ids matching --namespace')
      .requiredOption('--publisher <name>', 'the publisher, as plugin manifests name it')
      .requiredOption('--key <file.pub>', 'the public key (databridge keygen)')
      .option(
        '--namespace <pattern>',
        'plugin ids the key may sign: acme.*, acme.upper or * (repeatable; default <publisher>.*)',
        (v: string, p: string[]) => [...p, v],
        [],
      )
      .option('--replace', 'move a key already trusted for another publisher to this one (else refused: KEY_EXISTS)'),
  ).action(async (opts: StateOptions & { publisher: string; key: string; namespace: string[]; replace?: boolean }) => {
    let pem: string;
    try {
      pem = readFileSync(opts.key, 'utf8');
    } catch (err) {
      throw createError('KEY_INVALID', { file: opts.key, reason: (err as Error).message });
    }
    if (isPrivateKey(pem)) throw createError('KEY_NOT_PUBLIC', { file: opts.key });
    const key = await changeState(opts, 'trust add', {
      server: async (client) =>
        (
          await client.call<TrustedKey>('POST', `/api/trust/keys${opts.replace ? '?replace=true' : ''}`, {
            json: {
              publisher: opts.publisher,
              publicKey: pem,
              ...(opts.namespace.length ? { namespaces: opts.namespace } : {}),
            },
          })
        ).body,
      local: () =>
        withManager(
          opts,
          (m) =>
            m.trust.addKey(
              { publisher: opts.publisher, publicKeyPem: pem, namespaces: opts.namespace, replace: opts.replace },
              cliActor(),
            ),
          { autoLoad: false },
        ),
    });
    print(opts.json, key, () => `trusted key ${key.keyId} of ${key.publisher} for ${key.namespaces.join(', ')}`);
  });

  withStateOptions(trust.command('list').description('list trusted keys and revoked releases')).action(
    async (opts: StateOptions) => {
      const { keys, releases } = await readState(opts, {
        server: async (client) => {
          const { body } = await client.call<{ keys: TrustedKey[]; revokedReleases: RevokedRelease[] }>(
            'GET',
            '/api/trust',
          );
          return { keys: body.keys, releases: body.revokedReleases };
        },
        local: () =>
          withManager(
            opts,
            async (m) => ({ keys: await m.trust.list(), releases: await m.trust.listRevokedReleases() }),
            { autoLoad: false, readOnly: true },
          ),
      });
      print(opts.json, { keys, revokedReleases: releases }, () =>
        [
          keys.length
            ? table(
                ['KEY ID', 'PUBLISHER', 'NAMESPACES', 'STATUS'],
                keys.map((k) => [
                  k.keyId.slice(0, 16),
                  k.publisher,
                  k.namespaces.join(','),
                  k.revokedAt ? `revoked: ${k.revokedReason}` : 'trusted',
                ]),
              )
            : 'No trusted keys.',
          ...releases.map((r) => `revoked release ${r.pluginId}@${r.version}: ${r.reason}`),
        ].join('\n'),
      );
    },
  );

  withStateOptions(
    trust
      .command('revoke')
      .description('revoke a key: releases it signed are refused, installed or not')
      .argument('<keyId>', 'the key id (or its first 8+ characters)')
      .option('--reason <text>', 'why', 'revoked by the operator'),
  ).action(async (keyId: string, opts: StateOptions & { reason: string }) => {
    const key = await changeState(opts, 'trust revoke', {
      server: async (client) =>
        (
          await client.call<TrustedKey>('POST', `/api/trust/keys/${encodeURIComponent(keyId)}/revoke`, {
            json: { reason: opts.reason },
          })
        ).body,
      local: () => withManager(opts, (m) => m.trust.revokeKey(keyId, opts.reason, cliActor()), { autoLoad: false }),
    });
    print(opts.json, key, () => `revoked key ${key.keyId} of ${key.publisher}`);
  });

  withStateOptions(
    trust
      .command('revoke-release')
      .description('revoke one release of a plugin, e.g. acme.upper@1.2.0')
      .argument('<release>', '<id>@<version>')
      .option('--reason <text>', 'why', 'revoked by the operator'),
  ).action(async (release: string, opts: StateOptions & { reason: string }) => {
    const m = /^([^@]+)@(.+)$/.exec(release);
    if (!m) throw createError('USAGE', { message: `"${release}" must be <id>@<version>` });
    const r = await changeState(opts, 'trust revoke-release', {
      server: async (client) =>
        (
          await client.call<RevokedRelease>('POST', '/api/trust/revoked-releases', {
            json: { pluginId: m[1]!, version: m[2]!, reason: opts.reason },
          })
        ).body,
      local: () =>
        withManager(opts, (mgr) => mgr.trust.revokeRelease(m[1]!, m[2]!, opts.reason, cliActor()), {
          autoLoad: false,
        }),
    });
    print(opts.json, r, () => `revoked ${r.pluginId}@${r.version}`);
  });
}
