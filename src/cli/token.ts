/** `databridge token create|list|revoke`: named API tokens with roles, in the state store. */

import type { Command } from 'commander';
import { ROLES } from '../server/auth.ts';
import { ApiTokens, type CreatedToken, checkToken } from '../server/tokens.ts';
import type { ApiTokenRecord } from '../store/types.ts';
import { cliActor, print, type StateOptions, table, withManager, withStateOptions } from './common.ts';
import { changeState, readState } from './remote.ts';

const withTokens = <T>(opts: StateOptions, fn: (tokens: ApiTokens) => Promise<T>, readOnly = false): Promise<T> =>
  withManager(opts, (m) => fn(new ApiTokens(() => m.store)), { autoLoad: false, readOnly });

type TokenListing = Pick<ApiTokenRecord, 'name' | 'role' | 'createdAt' | 'createdBy' | 'lastUsedAt'>;

export function registerToken(program: Command): void {
  const token = program
    .command('token')
    .description(`manage named API tokens and their roles (${ROLES.join(', ')}); the admin token stays the admin's`);

  withStateOptions(
    token
      .command('create')
      .description('make a token; its secret is printed this once and never again')
      .argument('<name>', 'the token’s name, as the audit log will show it (lower-case letters, digits, . _ -)')
      .requiredOption(
        '--role <role>',
        `what it may do: viewer (reads, events, metrics), operator (+ enable, disable, reload), admin (+ install, uninstall, trust, namespaces, tokens)`,
      ),
  ).action(async (name: string, opts: StateOptions & { role: string }) => {
    checkToken(name, opts.role);
    const made = await changeState(opts, 'token create', {
      server: async (client) =>
        (await client.call<CreatedToken>('POST', '/api/tokens', { json: { name, role: opts.role } })).body,
      local: () => withTokens(opts, (t) => t.create(name, opts.role, cliActor())),
    });
    print(opts.json, { name: made.name, role: made.role, token: made.token }, () =>
      [
        `made token ${made.name} (${made.role}):`,
        '',
        `  ${made.token}`,
        '',
        'Copy it now: it will not be shown again (the store keeps only its hash).',
        'Send it as: Authorization: Bearer <token>',
      ].join('\n'),
    );
  });

  withStateOptions(token.command('list').description('list the named tokens (never their secrets)')).action(
    async (opts: StateOptions) => {
      const tokens: TokenListing[] = await readState(opts, {
        server: async (client) => (await client.call<TokenListing[]>('GET', '/api/tokens')).body,
        local: () => withTokens(opts, (t) => t.list(), true),
      });
      print(opts.json, tokens, () =>
        tokens.length
          ? table(
              ['NAME', 'ROLE', 'CREATED', 'CREATED BY', 'LAST USED'],
              tokens.map((k) => [k.name, k.role, k.createdAt, k.createdBy, k.lastUsedAt ?? 'never']),
            )
          : 'No named tokens (the admin token is in the data directory’s admin.token or DATABRIDGE_TOKEN).',
      );
    },
  );

  withStateOptions(
    token
      .command('revoke')
      .description(
        'revoke a token: refused from now on (through the server that holds the data directory, where one runs: at once)',
      )
      .argument('<name>', 'the token’s name'),
  ).action(async (name: string, opts: StateOptions) => {
    await changeState(opts, 'token revoke', {
      server: async (client) => {
        await client.call('DELETE', `/api/tokens/${encodeURIComponent(name)}`);
      },
      local: () => withTokens(opts, (t) => t.revoke(name, cliActor())),
    });
    print(opts.json, { name, revoked: true }, () => `revoked token ${name}`);
  });
}
