#!/usr/bin/env node
// Runs the CLI: the esbuild bundle in dist/cli/ (scripts/build-cli.ts, built by `npm ci`) while
// it is as new as the sources it was built from, else the TypeScript sources directly, whose
// types Node 22.18+ strips itself (https://nodejs.org/api/typescript.html). The CLI and the
// Worker share one source tree. npx and npm scripts put the project's own Node 22
// (node_modules/.bin/node) first on PATH.
import module from 'node:module';
import { fileURLToPath } from 'node:url';
import { freshBundle } from './cli-bundle.js';

if (!process.features.typescript) {
  console.error(
    `imh-bridge needs Node 22.18 or newer to run its TypeScript (this is ${process.version}): run it with npx imh-bridge, which uses the project's own Node 22.`,
  );
  process.exit(1);
}
// Node's on-disk compile cache (https://nodejs.org/api/module.html#module-compile-cache): a run
// takes the bytecode of the modules it loads (the generated validators included) from the
// cache instead of compiling them again. Kept in the project, node_modules/.cache/, where `npm
// ci` fills it (scripts/build-cli.ts) and no reboot empties it, as one under the temporary
// directory would be; NODE_COMPILE_CACHE names another directory, and
// NODE_DISABLE_COMPILE_CACHE=1 turns it off.
module.enableCompileCache?.(
  process.env.NODE_COMPILE_CACHE ? undefined : fileURLToPath(new URL('../node_modules/.cache/imh-bridge-compile-cache', import.meta.url)),
);
await import(freshBundle(new URL('..', import.meta.url)) ?? '../src/cli.ts');
