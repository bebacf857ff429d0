/** Run by bench/server.ts: a server with 200 plugins registered, printing its port. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPluginManager } from '../src/index.ts';
import { buildServer } from '../src/server/app.ts';

const dir = mkdtempSync(join(tmpdir(), 'databridge-bench-server-'));
const manager = await createPluginManager({
  dataDir: join(dir, 'data'),
  pluginDir: join(dir, 'plugins'),
  logLevel: false,
});
for (let i = 0; i < 200; i++) {
  const name = `BenchProc${i}`;
  manager.registry.register({
    id: `bench.plugin-${i}`,
    name: `Bench plugin ${i}`,
    version: '1.0.0',
    type: 'processor',
    source: 'external',
    publisher: 'bench',
    description: 'A plugin registered for the server benchmark, with a description of a realistic length.',
    tags: ['bench', i % 2 ? 'text' : 'binary'],
    processors: {
      [name]: {
        factory: () => ({
          getInfo: () => ({ name, description: '', version: '1.0.0', tags: [], properties: [], relationships: [] }),
          onTrigger() {},
        }),
        info: { name, description: '', version: '1.0.0', tags: [], properties: [], relationships: [] },
      },
    },
  });
}
const { app } = await buildServer({ manager, token: 'bench' });
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${(app.server.address() as { port: number }).port}\n`);
process.on('SIGTERM', async () => {
  await app.close();
  await manager.shutdown();
  process.exit(0);
});
