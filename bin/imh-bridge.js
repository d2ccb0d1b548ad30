#!/usr/bin/env node
// Runs the TypeScript CLI directly: Node 22.18+ strips the types itself
// (https://nodejs.org/api/typescript.html), so the CLI and the Worker share one source tree.
// npx and npm scripts put the project's own Node 22 (node_modules/.bin/node) first on PATH.
if (!process.features.typescript) {
  console.error(
    `imh-bridge needs Node 22.18 or newer to run its TypeScript (this is ${process.version}): run it with npx imh-bridge, which uses the project's own Node 22.`,
  );
  process.exit(1);
}
await import('../src/cli.ts');
