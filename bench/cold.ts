/**
 * Cold start in fresh processes: bundles bench/cold-entry.ts with esbuild (code split, so that
 * importing mapping and validation is timed inside the process), then alternates N fresh `node`
 * processes that only read and parse the completed example's Bundle with N that read the
 * episode, import, map and validate it. Reports median and p10–p90 of each phase, in wall time
 * and in main-thread CPU time, and the ratio of the full run to the parse-only run. Fails if a
 * cold run falls back or loads the reference validator. Run: npm run bench (or npm run bench:cold).
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
  const episodeFile = join(dir, 'episode.json');
  const bundleFile = join(dir, 'bundle.json');
  writeFileSync(episodeFile, JSON.stringify(completed()));
  writeFileSync(bundleFile, JSON.stringify(mapEpisode(completed())));
  const run = (mode: string, file: string) => {
    const r = spawnSync(process.execPath, [join(dir, 'cold-entry.js'), mode, file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cold run (${mode}) failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
  };
  run('parse', bundleFile);
  run('full', episodeFile); // fill the OS file cache once
  const parse: number[] = [];
  const parseCpu: number[] = [];
  const full: Record<string, number[]> = { boot: [], import: [], map: [], validate: [], total: [] };
  const cpu: Record<string, number[]> = { import: [], map: [], validate: [], total: [] };
  const ratio: number[] = [];
  for (let i = 0; i < N; i++) {
    const p = run('parse', bundleFile);
    const f = run('full', episodeFile);
    if (!f.valid) throw new Error('the completed example did not validate in the cold run');
    if (!f.fast) throw new Error('the cold run fell back to the reference validator');
    if (f.reference) throw new Error('the cold run loaded the reference validator without needing it');
    parse.push(p.total);
    parseCpu.push(p.cpu.total);
    for (const k of Object.keys(full)) full[k]?.push(f[k]);
    for (const k of Object.keys(cpu)) cpu[k]?.push(f.cpu[k]);
    ratio.push(f.total / p.total);
  }
  const line = (label: string, wall: number[], thread: number[] | undefined, digits = 1) =>
    console.log(`${label.padEnd(38)}${show(spread(wall), digits).padEnd(24)}${thread ? show(spread(thread), digits) : ''}`);
  console.log(`Cold, ${N} fresh node processes each (esbuild bundle, alternating); ms, median (p10–p90)`);
  console.log('wall time, and CPU time of the main thread (less disturbed by other processes)\n');
  console.log(`${''.padEnd(38)}${'wall'.padEnd(24)}main-thread CPU`);
  line('node boot before the script', full.boot as number[], undefined);
  line('parse-only process: read + parse', parse, parseCpu, 2);
  line('full process: import (CPU: with read)', full.import as number[], cpu.import);
  line('              first map', full.map as number[], cpu.map);
  line('              first validate', full.validate as number[], cpu.validate);
  line('              read → validated', full.total as number[], cpu.total);
  console.log(`\nread → validated is ${show(spread(ratio), 0)}× the parse-only process (wall)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
