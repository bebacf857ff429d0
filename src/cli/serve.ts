/** `databridge serve`: the plugin manager behind the REST API, until stopped. */

import type { Command } from 'commander';
import { createError } from '../errors.ts';
import { createPluginManager } from '../plugin/manager.ts';
import { buildServer } from '../server/app.ts';
import { resolveToken } from '../server/token.ts';
import { managerOptions, type StateOptions, withStateOptions } from './common.ts';

interface ServeOptions extends StateOptions {
  host: string;
  port: string;
}

export function registerServe(program: Command): void {
  withStateOptions(
    program
      .command('serve')
      .description('run the plugin host and its REST API (and, later, the console)')
      .option('--host <host>', 'address to listen on (env DATABRIDGE_HOST)', process.env.DATABRIDGE_HOST ?? '127.0.0.1')
      .option('--port <port>', 'port; 0 picks a free one (env DATABRIDGE_PORT)', process.env.DATABRIDGE_PORT ?? '8080'),
  ).action(async (opts: ServeOptions) => {
    const port = Number(opts.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw createError('USAGE', { message: `--port must be a number from 0 to 65535, not "${opts.port}"` });
    }
    const manager = await createPluginManager(managerOptions(opts, { logLevel: 'info' }));
    const token = resolveToken(manager.config.dataDir);
    const app = await buildServer({ manager, token });
    try {
      await app.listen({ host: opts.host, port });
    } catch (err) {
      await manager.shutdown();
      throw err;
    }
    const address = app.server.address();
    const actualPort = typeof address === 'object' && address ? address.port : port;
    const shownHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    const stats = manager.stats();
    process.stdout.write(
      `DataBridge serving ${stats.total} plugins ` +
        `(${stats.bySource.builtin} built-in, ${stats.bySource.external} external; ${stats.byStatus.error} in error)\n` +
        `  data:    ${manager.config.dataDir}\n  plugins: ${manager.config.pluginDir}\n` +
        `  open:    http://${shownHost}:${actualPort}/?token=${token}\n`,
    );
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        process.stdout.write(`\n${signal}: stopping…\n`);
        resolve();
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    await app.close();
    await manager.shutdown();
  });
}
