/**
 * Cold start in fresh processes: bundles bench/cold-entry.ts with esbuild (code split, so that
 * importing mapping and validation is timed inside the process), then alternates N fresh `node`
 * processes that only read and parse the completed example's Bundle with N that read the
 * episode, import, map and validate it. Reports median and p10–p90 of each phase and the ratio
 * of the full run to the parse-only run. Run: npm run bench (or node --import tsx bench/cold.ts).
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
  const full: Record<string, number[]> = { boot: [], import: [], map: [], validate: [], total: [] };
  const ratio: number[] = [];
  for (let i = 0; i < N; i++) {
    const p = run('parse', bundleFile).total as number;
    const f = run('full', episodeFile);
    if (!f.valid) throw new Error('the completed example did not validate in the cold run');
    if (!f.fast) throw new Error('the cold run fell back to the reference validator');
    if (f.reference) throw new Error('the cold run loaded the reference validator without needing it');
    parse.push(p);
    for (const k of Object.keys(full)) full[k]?.push(f[k]);
    ratio.push(f.total / p);
  }
  console.log(`Cold, ${N} fresh node processes each (esbuild bundle, alternating); ms, median (p10–p90)\n`);
  console.log(`node boot before the script          ${show(spread(full.boot as number[]), 1)}`);
  console.log(`parse-only process: read + parse      ${show(spread(parse), 2)}`);
  console.log(`full process: import                  ${show(spread(full.import as number[]), 1)}`);
  console.log(`              first map               ${show(spread(full.map as number[]), 1)}`);
  console.log(`              first validate          ${show(spread(full.validate as number[]), 1)}`);
  console.log(`              read → validated        ${show(spread(full.total as number[]), 1)}   (${show(spread(ratio), 0)}× the parse-only process)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
