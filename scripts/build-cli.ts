#!/usr/bin/env node
/**
 * Builds the command line into an esbuild bundle in dist/cli/, so that `imh-bridge` starts from
 * plain JavaScript. Run from the sources, every start first strips the types of some hundred
 * TypeScript files (Node's type stripping runs SWC compiled to WebAssembly), which took about
 * 150 ms of a 200 ms `imh-bridge map`; and Node's compile cache then keeps what it compiled.
 *
 * The bundle is split as the CLI's own dynamic imports are: a command loads only its chunks, and
 * the reference validator (@medplum/core and the definitions) only when a value needs it.
 * dist/cli/inputs.json records the size and modification time of every file the bundle was
 * built from; bin/cli-bundle.js runs the bundle only while all of them are unchanged, and the
 * sources otherwise. `npm ci` and `npm install` build it (the `prepare` script); after editing,
 * `npm run build:cli`.
 *
 *   node scripts/build-cli.ts                   # dist/cli/
 *   node scripts/build-cli.ts --outdir DIR      # elsewhere (the tests)
 */
import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
const outdir = resolve(values.outdir ?? join(root, 'dist', 'cli'));
// Built beside the target and renamed into place, so that a CLI starting meanwhile sees the
// old bundle or the new one, never half of one.
const temp = `${outdir}.building-${process.pid}`;
rmSync(temp, { recursive: true, force: true });
mkdirSync(temp, { recursive: true });
try {
  const result = await build({
    absWorkingDir: root,
    entryPoints: { cli: join(root, 'src', 'cli.ts') },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    outdir: temp,
    // .mjs: ES modules wherever the folder is, with or without a package.json above it.
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    metafile: true,
    logLevel: 'warning',
  });
  const inputs: Record<string, [number, number]> = {};
  for (const file of Object.keys(result.metafile.inputs).sort()) {
    const s = statSync(join(root, file));
    inputs[relative(root, join(root, file)).split('\\').join('/')] = [s.size, s.mtimeMs];
  }
  writeFileSync(join(temp, 'inputs.json'), `${JSON.stringify({ inputs })}\n`);
  rmSync(outdir, { recursive: true, force: true });
  renameSync(temp, outdir);
  console.log(`built ${relative(root, outdir) || outdir}/cli.mjs from ${Object.keys(inputs).length} files`);
} catch (e) {
  rmSync(temp, { recursive: true, force: true });
  throw e;
}
