/**
 * `databridge serve`: the plugin manager, the REST API and (with --flow) a
 * running flow, until SIGINT or SIGTERM stops them gracefully: the server
 * stops taking requests, sessions finish or roll back, the queues are
 * snapshotted and the store is closed.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { createError } from '../errors.ts';
import { createFlowController, type FlowController } from '../flow/controller.ts';
import { loadFlow, readFlowFile } from '../flow/flow-definition.ts';
import { createPluginManager, type PluginManager } from '../plugin/manager.ts';
import { keyIdOf } from '../plugin/signing.ts';
import { buildServer } from '../server/app.ts';
import { newLocalCliToken } from '../server/local-cli.ts';
import { readTlsFiles } from '../server/tls.ts';
import { resolveToken } from '../server/token.ts';
import { acquireDataDirLock } from '../store/lock.ts';
import { PACKAGE_ROOT } from '../version.ts';
import { managerOptions, type StateOptions, withStateOptions } from './common.ts';
import { applyConfigNamespaces, optionOrigin } from './config-file.ts';
import { hostLogOptions } from './logs.ts';
import { dataDirOf, WAIT_FOR_CLI_MS } from './remote.ts';
import { catalogSettings, withCatalogServeOptions } from './serve-catalog.ts';
import { connectAddress, listen } from './serve-listen.ts';

interface ServeOptions extends StateOptions {
  host: string;
  port: string;
  flow?: string;
  watch?: boolean;
  seedExamples?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  catalog?: string[];
  catalogCheckInterval?: string;
}

const EXAMPLES = join(PACKAGE_ROOT, 'examples');

/**
 * Trusts the example key for acme.* and installs the example plugins that
 * are not installed yet: what `npm start` shows a newcomer. Audited as `seed`.
 */
async function seedExamples(manager: PluginManager): Promise<string[]> {
  const notes: string[] = [];
  const pem = readFileSync(join(EXAMPLES, 'keys', 'acme-example.pub'), 'utf8');
  if (!(await manager.trust.list()).some((k) => k.keyId === keyIdOf(pem))) {
    await manager.trust.addKey({ publisher: 'acme', publicKeyPem: pem, namespaces: ['acme.*'] }, 'seed');
    notes.push('trusted the example key for acme.* (examples/keys; for the examples only)');
  }
  for (const name of readdirSync(join(EXAMPLES, 'plugins'))) {
    if (manager.registry.has(name)) continue;
    try {
      await manager.install(join(EXAMPLES, 'plugins', name), { actor: 'seed' });
      notes.push(`installed the example plugin ${name}`);
    } catch (err) {
      notes.push(`could not install the example plugin ${name}: ${(err as Error).message}`);
    }
  }
  return notes;
}

export function registerServe(program: Command): void {
  withCatalogServeOptions(
    withStateOptions(
      program
        .command('serve')
        .description('run the plugin host, its REST API and, with --flow, a flow')
        .option(
          '--host <host>',
          'address to listen on (env DATABRIDGE_HOST)',
          process.env.DATABRIDGE_HOST ?? '127.0.0.1',
        )
        .option(
          '--port <port>',
          'port; 0 picks a free one (env DATABRIDGE_PORT)',
          process.env.DATABRIDGE_PORT ?? '8080',
        )
        .option('--flow <file>', 'run this flow (env DATABRIDGE_FLOW)', process.env.DATABRIDGE_FLOW)
        .option('--watch', 'watch the plugin directory and hot-reload changed plugins')
        .option(
          '--tls-cert <file>',
          'serve HTTPS with this PEM certificate (chain); needs --tls-key (env DATABRIDGE_TLS_CERT)',
          process.env.DATABRIDGE_TLS_CERT || undefined,
        )
        .option(
          '--tls-key <file>',
          'the PEM private key of --tls-cert (env DATABRIDGE_TLS_KEY)',
          process.env.DATABRIDGE_TLS_KEY || undefined,
        )
        .option('--seed-examples', 'trust the example key for acme.* and install the example plugins (npm start does)'),
    ),
  ).action(async (opts: ServeOptions, command: Command) => {
    const catalog = catalogSettings(opts.catalog, opts.catalogCheckInterval);
    const port = Number(opts.port);
    if (!/^\d+$/.test(opts.port.trim()) || port > 65535) {
      const origin = optionOrigin(command, 'port', '--port', 'DATABRIDGE_PORT', 'serve.port');
      throw createError('USAGE', { message: `${origin} must be a number from 0 to 65535, not "${opts.port}"` });
    }
    if (opts.flow && !existsSync(opts.flow)) {
      const origin = optionOrigin(command, 'flow', '--flow', 'DATABRIDGE_FLOW', 'serve.flow');
      throw createError('USAGE', { message: `the flow file ${opts.flow} (${origin}) does not exist` });
    }
    const https = readTlsFiles(opts.tlsCert, opts.tlsKey);
    const scheme = https ? 'https' : 'http';
    // one writer per data directory: refused here, before anything is opened, while another holds it
    const lock = await acquireDataDirLock(dataDirOf(opts), { command: 'serve', waitForCliMs: WAIT_FOR_CLI_MS });
    let manager: PluginManager;
    try {
      manager = await createPluginManager(
        managerOptions(opts, { ...hostLogOptions(), watchChanges: opts.watch ?? false }),
      );
    } catch (err) {
      lock.release();
      throw err;
    }
    let flow: FlowController | undefined;
    let server: Awaited<ReturnType<typeof buildServer>> | undefined;
    try {
      const notes = [
        ...(await applyConfigNamespaces(manager)),
        ...(opts.seedExamples ? await seedExamples(manager) : []),
      ];
      if (opts.flow) {
        flow = await createFlowController({ manager });
        await loadFlow(flow, readFlowFile(opts.flow), { baseDir: dirname(resolve(opts.flow)) });
      }
      const token = resolveToken(manager.config.dataDir);
      const cliToken = newLocalCliToken();
      server = await buildServer({ manager, token, flow, https, catalog, localCliToken: cliToken });
      await listen(server.app, opts.host, port);
      if (flow) await flow.startAll();
      const address = server.app.server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      const shownHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
      manager.cluster?.setAddress(`${scheme}://${shownHost}:${actualPort}`);
      // the CLI finds this server here, and acts through it (src/cli/remote.ts)
      lock.update({
        address: `${scheme}://${shownHost}:${actualPort}`,
        connect: connectAddress(scheme, opts.host, actualPort),
        cliToken,
        tlsCert: opts.tlsCert ? resolve(opts.tlsCert) : null,
      });
      const stats = manager.stats();
      process.stdout.write(
        [
          ...notes.map((n) => `  ${n}`),
          `DataBridge ${manager.registry.get('builtin.GenerateFlowFile').version} serving ${stats.total} plugins (${stats.bySource.builtin} built-in, ${stats.bySource.external} external; ${stats.byStatus.error} in error)${flow ? `, running ${opts.flow}` : ''}`,
          `  data:    ${manager.config.dataDir}`,
          ...(manager.cluster ? [`  cluster: node ${manager.cluster.id}, store ${manager.store.location}`] : []),
          `  plugins: ${manager.config.pluginDir}${opts.watch ? ' (watched)' : ''}`,
          `  sandbox: ${isolationLine(manager)}`,
          `  API:     ${scheme}://${shownHost}:${actualPort}/api (docs: /docs/api)`,
          `  open:    ${scheme}://${shownHost}:${actualPort}/?token=${token}`,
          '',
        ].join('\n'),
      );
    } catch (err) {
      await stopAll(server, flow, manager).catch(() => {});
      lock.release();
      throw err;
    }
    await new Promise<void>((resolveStop) => {
      const stop = (signal: string) => {
        process.stdout.write(`${signal}: stopping…\n`);
        resolveStop();
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    try {
      await stopAll(server, flow, manager);
    } finally {
      lock.release();
    }
  });
}

/**
 * Stops the server, the flow and the manager in turn, each even when one
 * before it failed (a data directory deleted under a running server makes the
 * flow's last snapshot fail; the sandboxes must still stop, or the process
 * would never exit), then reports the first failure.
 */
async function stopAll(
  server: Awaited<ReturnType<typeof buildServer>> | undefined,
  flow: FlowController | undefined,
  manager: PluginManager,
): Promise<void> {
  let first: unknown;
  for (const step of [() => server?.app.close(), () => flow?.close(), () => manager.shutdown()]) {
    try {
      await step();
    } catch (err) {
      first ??= err;
    }
  }
  if (first) throw first;
}

/** What the host holds around a process sandbox, for the start-up lines: never a weaker isolation in silence. */
function isolationLine(manager: PluginManager): string {
  const i = manager.isolationStatus();
  if (i.level === 'full') return 'every untrusted plugin in an OS-confined process (bubblewrap, cgroups)';
  const missing = i.missing.join('; ');
  return i.weakAccepted
    ? `WEAKER ISOLATION ACCEPTED (${i.level}): plugins run with what holds; missing ${missing}`
    : `${i.level} confinement: plugins that need a process sandbox are refused (ISOLATION_UNAVAILABLE); missing ${missing}`;
}
