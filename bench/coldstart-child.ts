/** Run by bench/trust.ts in a fresh process: prints how long a manager takes to start over a plugin directory. */
import { createPluginManager } from '../src/index.ts';

const [dataDir, pluginDir] = process.argv.slice(2);
const t0 = performance.now();
const manager = await createPluginManager({ dataDir, pluginDir, logLevel: false });
const ms = performance.now() - t0;
const active = manager.search({ source: 'external', status: 'active' }).length;
await manager.shutdown();
process.stdout.write(JSON.stringify({ ms, active }));
