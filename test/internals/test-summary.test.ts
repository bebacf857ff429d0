/**
 * The test runner's summary (scripts/test.js with scripts/summary-reporter.js):
 * on a machine without chromium the browser tests are skipped, and the
 * summary says which and how to install it, above the `N passed, N failed`
 * line CI reads.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers.ts';

function runTests(
  files: string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'test.js'), ...files], {
      cwd: ROOT,
      // without node:test's own context variable, the inner runner reports as a top-level run does
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout }));
  });
}

test('without chromium, the summary names the skipped browser tests and how to install it', async () => {
  const { code, stdout } = await runTests(['test/e2e/console.test.ts'], {
    DATABRIDGE_CHROMIUM: '/nonexistent/chromium',
  });
  assert.equal(code, 0, stdout);
  const lines = stdout.trimEnd().split('\n');
  assert.match(lines.at(-1)!, /^\d+ passed, 0 failed, \d+ skipped$/, 'the last line is the one CI reads');
  const summary = stdout.slice(stdout.lastIndexOf('Skipped, not run:'));
  assert.match(
    summary,
    /suite the web console \(test\/e2e\/console\.test\.ts\): \/nonexistent\/chromium is not installed, so the browser tests did not run; install it with: sudo apt-get install chromium/,
  );
});
