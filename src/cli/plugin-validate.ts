/** `databridge plugin validate` and `plugin verify`: every finding, as install would see it. */

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createError } from '../errors.ts';
import { pluginFolder } from '../plugin/project.ts';
import { EXIT_REFUSED, formatFindings, print, type StateOptions, withManager, withStateOptions } from './common.ts';

export function registerPluginValidate(plugin: Command): void {
  for (const [name, signatureOnly, description] of [
    [
      'validate',
      false,
      'check a plugin folder or .tgz: manifest, structure, checksums, signature, trust, versions, permissions',
    ],
    ['verify', true, 'check only the checksums, the signature and the signer’s trust'],
  ] as const) {
    withStateOptions(
      plugin.command(name).description(description).argument('<target>', 'a plugin folder or a .tgz bundle'),
    ).action(async (target: string, opts: StateOptions) => {
      const given = resolve(target);
      if (!existsSync(given)) throw createError('USAGE', { message: `${target} does not exist` });
      // a plugin project is validated as built: its dist/
      const path = await pluginFolder(given, false);
      // a check makes nothing where it is run (no ./data, no ./plugins)
      const report = await withManager(opts, (manager) => manager.validate(path, { signatureOnly }), {
        readOnly: true,
      });
      const body = {
        valid: report.valid,
        findings: report.findings,
        id: report.manifest?.id ?? null,
        version: report.manifest?.version ?? null,
        digest: report.digest,
        signer: report.signer,
      };
      print(opts.json, body, () => {
        const head = report.valid
          ? `valid: ${body.id}@${body.version}${report.signer ? `, signed by ${report.signer.publisher} (${report.signer.keyId.slice(0, 16)}…)` : ', not signed by a trusted key'}`
          : `invalid${body.id ? `: ${body.id}@${body.version}` : ''}`;
        return `${formatFindings(report.findings)}${head}`;
      });
      if (!report.valid) process.exitCode = EXIT_REFUSED;
    });
  }
}
