// A node:test reporter that ends the run with the plain line CI reads:
// "N passed, N failed[, N skipped]". Suites are not counted, only tests,
// except a skipped suite (its tests never run, so node:test reports none of
// them): it counts as one skipped. Above that line, every skip is named with
// its file and reason, so a missing browser cannot pass unnoticed.
import { relative } from 'node:path';

export default async function* summary(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const skips = [];
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    const suite = data.details?.type === 'suite';
    if (data.skip || data.todo) {
      skipped++;
      const file = data.file ? ` (${relative(process.cwd(), data.file)})` : '';
      const reason = typeof data.skip === 'string' ? `: ${data.skip}` : '';
      skips.push(`  ${suite ? 'suite ' : ''}${data.name}${file}${reason}`);
    } else if (suite) continue;
    else if (event.type === 'test:pass') passed++;
    else failed++;
  }
  const listed = skips.length ? `\nSkipped, not run:\n${skips.join('\n')}\n` : '';
  yield `${listed}\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`;
}
