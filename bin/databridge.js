#!/usr/bin/env node
// Plain JavaScript on purpose: it must run on an old Node to say it is too old.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `databridge needs Node.js 24 or newer, but this is ${process.version}. ` +
      'Run it through npm (npm start, npx databridge), which uses the Node 24 that npm install brought, or install Node 24.\n',
  );
  process.exit(1);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
