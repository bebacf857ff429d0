/** `databridge keygen --out <prefix>`: an Ed25519 key pair for signing plugins. */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { createError } from '../errors.ts';
import { generateSigningKey } from '../plugin/signing.ts';
import { print } from './common.ts';

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('make an Ed25519 key pair for signing plugins: <prefix>.key (private, mode 0600) and <prefix>.pub')
    .requiredOption('--out <prefix>', 'where to write, e.g. keys/acme')
    .option('--force', 'overwrite existing files')
    .option('--json', 'machine-readable output')
    .action((opts: { out: string; force?: boolean; json?: boolean }) => {
      const pair = generateSigningKey();
      const flag = opts.force ? 'w' : 'wx';
      try {
        mkdirSync(dirname(resolve(`${opts.out}.key`)), { recursive: true });
        writeFileSync(`${opts.out}.key`, pair.privateKeyPem, { mode: 0o600, flag });
        writeFileSync(`${opts.out}.pub`, pair.publicKeyPem, { mode: 0o644, flag });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw createError('USAGE', {
          message:
            e.code === 'EEXIST'
              ? `${e.path} exists; use --force to overwrite it`
              : `cannot write the key: ${e.message}`,
        });
      }
      print(opts.json, { keyId: pair.keyId, privateKey: `${opts.out}.key`, publicKey: `${opts.out}.pub` }, () =>
        [
          `key id ${pair.keyId}`,
          `  private: ${opts.out}.key (keep it secret)`,
          `  public:  ${opts.out}.pub (give it to operators: databridge trust add --publisher <you> --key ${opts.out}.pub)`,
        ].join('\n'),
      );
    });
}
