/** `databridge token create|list|revoke`: named API tokens with roles, in the state store. */

import type { Command } from 'commander';
import { ROLES } from '../server/auth.ts';
import { ApiTokens, checkToken, TOKEN_CACHE_MS } from '../server/tokens.ts';
import { cliActor, print, type StateOptions, table, withManager, withStateOptions } from './common.ts';

const withTokens = <T>(opts: StateOptions, fn: (tokens: ApiTokens) => Promise<T>): Promise<T> =>
  withManager(opts, (m) => fn(new ApiTokens(() => m.store)), { autoLoad: false });

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
    const made = await withTokens(opts, (t) => t.create(name, opts.role, cliActor()));
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
      const tokens = await withTokens(opts, (t) => t.list());
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
        `revoke a token: a running server sharing this store refuses it within ${TOKEN_CACHE_MS / 1000} s (a revoke through the API, DELETE /api/tokens/{name}, takes effect there at once)`,
      )
      .argument('<name>', 'the token’s name'),
  ).action(async (name: string, opts: StateOptions) => {
    await withTokens(opts, (t) => t.revoke(name, cliActor()));
    print(opts.json, { name, revoked: true }, () => `revoked token ${name}`);
  });
}
