/** `databridge plugin sign` and `plugin pack`: what a plugin author ships. */

import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { writePackageJson } from '../catalog/package-json.ts';
import { createError } from '../errors.ts';
import { packPlugin } from '../plugin/bundle.ts';
import { readManifest } from '../plugin/manifest.ts';
import { pluginFolder } from '../plugin/project.ts';
import { signForPack, signPluginDir } from '../plugin/release.ts';
import { loadKey } from '../plugin/signing.ts';
import { print } from './common.ts';

function readKey(file: string | undefined) {
  if (!file) return undefined;
  try {
    return loadKey(readFileSync(file, 'utf8'), 'private');
  } catch (err) {
    throw createError('KEY_INVALID', { file, reason: (err as Error).message });
  }
}

async function sign(dir: string, keyFile: string | undefined, pack = false) {
  const result = pack ? await signForPack(dir, readKey(keyFile)) : await signPluginDir(dir, readKey(keyFile));
  if (!result.statement) {
    throw createError(
      'INSTALL_REFUSED',
      { codes: [...new Set(result.findings.map((f) => f.code))] },
      { details: { findings: result.findings } },
    );
  }
  return result;
}

export function registerPluginAuthoring(plugin: Command): void {
  plugin
    .command('sign')
    .description('hash every file and write signature.dsse.json, signed with --key (without it: checksums only)')
    .argument('<dir>', 'the plugin folder (a built project: its dist/)')
    .option('--key <file.key>', 'the private key (databridge keygen)')
    .option('--json', 'machine-readable output')
    .action(async (dir: string, opts: { key?: string; json?: boolean }) => {
      const { statement, keyId } = await sign(await pluginFolder(resolve(dir), false), opts.key);
      print(opts.json, { id: statement!.id, version: statement!.version, files: statement!.files.length, keyId }, () =>
        keyId
          ? `signed ${statement!.id}@${statement!.version}: ${statement!.files.length} files, key ${keyId}`
          : `wrote checksums of ${statement!.files.length} files for ${statement!.id}@${statement!.version} (unsigned: no --key)`,
      );
    });

  plugin
    .command('pack')
    .description(
      'write the plugin folder as a .tgz bundle: a signature that still covers its files is kept; else it is signed with --key (without one: checksums only, and a signed folder whose files changed is refused). A project is built first, and its dist/ packed',
    )
    .argument('<dir>', 'the plugin folder, or a plugin project')
    .option('--key <file.key>', 'sign with this private key')
    .option('-o, --out <file.tgz>', 'the bundle to write (default <id>-<version>.tgz)')
    .option(
      '--npm',
      'make it an npm package for a catalog: write package.json (name from the id, keyword databridge-plugin) before signing, and pack under package/ for npm publish',
    )
    .option('--json', 'machine-readable output')
    .action(async (dir: string, opts: { key?: string; out?: string; npm?: boolean; json?: boolean }) => {
      const folder = await pluginFolder(resolve(dir), true);
      const { manifest, findings: manifestFindings } = readManifest(folder);
      if (opts.npm) {
        if (!manifest)
          throw createError(
            'INSTALL_REFUSED',
            { codes: [...new Set(manifestFindings.map((f) => f.code))] },
            { details: { findings: manifestFindings } },
          );
        await writePackageJson(folder, manifest);
      }
      const signed = await sign(folder, opts.key, true);
      const { statement, keyId } = signed;
      const kept = 'kept' in signed && signed.kept;
      const out = resolve(opts.out ?? `${manifest?.id ?? basename(folder)}-${manifest?.version ?? '0.0.0'}.tgz`);
      const { files, findings } = await packPlugin(folder, out, opts.npm ? { prefix: 'package' } : {});
      if (findings.length)
        throw createError('INSTALL_REFUSED', { codes: findings.map((f) => f.code) }, { details: { findings } });
      print(
        opts.json,
        {
          bundle: out,
          id: statement!.id,
          version: statement!.version,
          files: files.length,
          keyId,
          signatureKept: kept,
        },
        () =>
          `packed ${statement!.id}@${statement!.version} (${files.length} files${keyId ? `, ${kept ? 'its signature kept: ' : ''}signed by ${keyId.slice(0, 16)}…` : ', unsigned'}) into ${out}`,
      );
    });
}
