/**
 * Cold start in fresh processes: bundles bench/cold-entry.ts with esbuild (code split, so that
 * importing mapping and validation is timed inside the process), then alternates three kinds
 * of fresh `node` process, N of each: ones that only read and parse the completed example's
 * Bundle (the baseline); ones that read the episode, import, map and validate it; and the same
 * with Node's on-disk compile cache (https://nodejs.org/api/module.html#module-compile-cache),
 * filled by one earlier run, as bin/imh-bridge.js enables it. Reports median and p10–p90 of
 * each phase, in wall time and in main-thread CPU time, and the ratio of the full run to the
 * parse-only run. Fails if a cold run falls back or loads the reference validator.
 * Run: npm run bench (or npm run bench:cold).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { mapEpisode } from '../src/mapping/bundle.ts';
import { completed } from '../test/fixtures/examples.ts';
import { show, spread } from './stats.ts';

const N = Number(process.env.BENCH_COLD_RUNS ?? 15);
const dir = mkdtempSync(join(tmpdir(), 'imh-cold-'));
try {
  await build({
    entryPoints: [resolve(import.meta.dirname, 'cold-entry.ts')],
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    outdir: dir,
    logLevel: 'error',
  });
  // The bundle is ESM, as the project's own files are ("type": "module"). Without this, Node
  // first tries each chunk as CommonJS and only then detects its module syntax, which the
  // product never pays (https://nodejs.org/api/packages.html#syntax-detection).
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  const episodeFile = join(dir, 'episode.json');
  const bundleFile = join(dir, 'bundle.json');
  writeFileSync(episodeFile, JSON.stringify(completed()));
  writeFileSync(bundleFile, JSON.stringify(mapEpisode(completed())));
  const cacheDir = join(dir, 'compile-cache');
  const withoutCache = { ...process.env };
  delete withoutCache.NODE_COMPILE_CACHE;
  const withCache = { ...withoutCache, NODE_COMPILE_CACHE: cacheDir };
  const run = (mode: string, file: string, env: NodeJS.ProcessEnv = withoutCache) => {
    const r = spawnSync(process.execPath, [join(dir, 'cold-entry.js'), mode, file], { encoding: 'utf8', env });
    if (r.status !== 0) throw new Error(`cold run (${mode}) failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
  };
  run('parse', bundleFile);
  run('full', episodeFile); // fill the OS file cache once
  run('full', episodeFile, withCache); // and the compile cache
  const parse: number[] = [];
  const parseCpu: number[] = [];
  const series = () => ({
    full: { boot: [], import: [], map: [], validate: [], total: [] } as Record<string, number[]>,
    cpu: { import: [], map: [], validate: [], total: [] } as Record<string, number[]>,
    ratio: [] as number[],
  });
  const cold = series();
  const cached = series();
  const record = (s: ReturnType<typeof series>, f: Record<string, number> & { cpu: Record<string, number> }, parseTotal: number) => {
    if (!f.valid) throw new Error('the completed example did not validate in the cold run');
    if (!f.fast) throw new Error('the cold run fell back to the reference validator');
    if (f.reference) throw new Error('the cold run loaded the reference validator without needing it');
    for (const k of Object.keys(s.full)) s.full[k]?.push(f[k] as number);
    for (const k of Object.keys(s.cpu)) s.cpu[k]?.push(f.cpu[k] as number);
    s.ratio.push((f.total as number) / parseTotal);
  };
  for (let i = 0; i < N; i++) {
    const p = run('parse', bundleFile);
    parse.push(p.total);
    parseCpu.push(p.cpu.total);
    // Alternate which of the two goes first, so that neither always follows the baseline.
    const order = i % 2 ? ([cached, cold] as const) : ([cold, cached] as const);
    for (const s of order) record(s, run('full', episodeFile, s === cached ? withCache : withoutCache), p.total);
  }
  const line = (label: string, wall: number[], thread: number[] | undefined, digits = 1) =>
    console.log(`${label.padEnd(44)}${show(spread(wall), digits).padEnd(24)}${thread ? show(spread(thread), digits) : ''}`);
  console.log(`Cold, ${N} fresh node processes of each kind (esbuild bundle, alternating); ms, median (p10–p90)`);
  console.log('wall time, and CPU time of the main thread (less disturbed by other processes)\n');
  console.log(`${''.padEnd(44)}${'wall'.padEnd(24)}main-thread CPU`);
  line('node boot before the script', cold.full.boot as number[], undefined);
  line('parse-only process: read + parse', parse, parseCpu, 2);
  for (const [title, s] of [
    ['no compile cache', cold],
    ['Node compile cache, filled by an earlier run', cached],
  ] as const) {
    console.log(title);
    line('  import (CPU: with read)', s.full.import as number[], s.cpu.import);
    line('  first map', s.full.map as number[], s.cpu.map);
    line('  first validate', s.full.validate as number[], s.cpu.validate);
    line('  read → validated', s.full.total as number[], s.cpu.total);
    console.log(`  read → validated is ${show(spread(s.ratio), 0)}× the parse-only process (wall)`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
