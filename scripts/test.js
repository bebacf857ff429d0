// Runs the whole suite with node:test: the spec reporter for people, then the
// summary line for CI. Extra arguments narrow it: `npm run test:only -- test/flow`.
import { spawnSync } from 'node:child_process';

const selected = process.argv.slice(2);
const patterns = selected.length
  ? selected.map((p) => (p.endsWith('.ts') ? p : `${p.replace(/\/$/, '')}/**/*.test.ts`))
  : ['test/**/*.test.ts'];
const args = [
  '--test',
  '--test-concurrency=3',
  '--test-timeout=120000',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/summary-reporter.js',
  '--test-reporter-destination=stdout',
  ...patterns,
];
const result = spawnSync(process.execPath, args, {
  stdio: 'inherit',
  env: { ...process.env, DATABRIDGE_TEST: '1', DATABRIDGE_STORE: '' },
});
process.exit(result.status ?? 1);
