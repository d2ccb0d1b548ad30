/**
 * Warm cost of mapping and validating an episode, as ratios to a JSON round-trip
 * (`JSON.parse(JSON.stringify(bundle))`) of the Bundle it gives. The baseline is measured
 * interleaved with each timing (baseline, measure, baseline, measure, … in this process), so
 * that a machine that slows down or speeds up during the run moves both; each ratio is taken
 * against the baseline rounds on either side of it, and the report gives the median and the
 * 10th–90th percentile of the ratios. Then cold start (bench/cold.ts, fresh processes) and, with
 * `--load`, the load run in workerd (bench/load.ts).
 *
 *   npm run bench             # warm + cold
 *   npm run bench -- --load   # and the load run (also: npm run bench:load)
 */
import type { Bundle } from '@medplum/fhirtypes';
import { fastPathStats, resetFastPathStats, validateFast } from '../src/fhir/validate-fast.ts';
import { validateFhir } from '../src/fhir/validate.ts';
import { mapEpisode } from '../src/mapping/bundle.ts';
import { completed } from '../test/fixtures/examples.ts';
import { longEpisode } from '../test/fixtures/generate.ts';
import { show, spread } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);

/** Milliseconds per call of `fn`, over a batch of `n` calls; a promise is awaited before the next call. */
async function batch(fn: () => unknown, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const r = fn();
    if (r instanceof Promise) await r;
  }
  return (performance.now() - t0) / n;
}

/**
 * Ratios of `fn` to `base`, interleaved: base, fn, base, fn, …, base. Each fn round is divided by
 * the mean of the base rounds before and after it. Returns the per-call times and the ratios.
 */
async function interleaved(base: () => unknown, fn: () => unknown, nBase: number, nFn: number, rounds = ROUNDS): Promise<{ ms: number[]; ratio: number[]; baseMs: number[] }> {
  await batch(base, nBase);
  await batch(fn, nFn); // warm-up
  const baseMs = [await batch(base, nBase)];
  const ms: number[] = [];
  const ratio: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const m = await batch(fn, nFn);
    const b = await batch(base, nBase);
    ms.push(m);
    ratio.push(m / ((b + (baseMs.at(-1) as number)) / 2));
    baseMs.push(b);
  }
  return { ms, ratio, baseMs };
}

/** Batch size that makes a batch of `fn` take about `targetMs`. */
async function calls(fn: () => unknown, targetMs: number): Promise<number> {
  const one = await batch(fn, 1);
  return Math.max(1, Math.min(2000, Math.round(targetMs / Math.max(one, 0.001))));
}

const cases: [string, unknown][] = [
  ['completed example', completed()],
  ['50-session episode', longEpisode(50)],
  ['100-session episode', longEpisode(100)],
];

validateFhir(mapEpisode(completed())); // load and index definitions outside the timings
resetFastPathStats();

console.log(`Warm, interleaved with a JSON round-trip of the same Bundle; ${ROUNDS} rounds; median (p10–p90)\n`);
console.log('validate = validateFast (generated validators, falling back to the reference); reference = validateFhir alone\n');
console.log('case                 | entries | round-trip ms       | map ×rt             | validate ×rt         | map+validate ×rt     | map+validate ms        | reference validate ×rt');
for (const [name, input] of cases) {
  const bundle: Bundle = mapEpisode(input);
  const rt = () => JSON.parse(JSON.stringify(bundle));
  const map = () => mapEpisode(input);
  const val = () => validateFast(bundle);
  const both = () => validateFast(mapEpisode(input));
  const ref = () => validateFhir(bundle);
  const nRt = await calls(rt, 20);
  const m = await interleaved(rt, map, nRt, await calls(map, 20));
  const v = await interleaved(rt, val, nRt, await calls(val, 20));
  const b = await interleaved(rt, both, nRt, await calls(both, 20));
  const r = await interleaved(rt, ref, nRt, await calls(ref, 20), Math.min(ROUNDS, 7));
  console.log(
    [
      name.padEnd(20),
      String(bundle.entry?.length).padStart(7),
      show(spread(b.baseMs), 3).padEnd(19),
      `${show(spread(m.ratio), 1)}×`.padEnd(19),
      `${show(spread(v.ratio), 1)}×`.padEnd(20),
      `${show(spread(b.ratio), 1)}×`.padEnd(20),
      show(spread(b.ms), 2).padEnd(22),
      `${show(spread(r.ratio), 1)}×`,
    ].join(' | '),
  );
}
const reasons = [...fastPathStats.reasons].map(([why, n]) => `${n}× ${why}`).join('; ');
console.log(`\nfast path: ${fastPathStats.fast} decided by the generated validators, ${fastPathStats.fallback} handed to the reference${reasons ? ` (${reasons})` : ''}`);

if (!process.argv.includes('--no-cold')) {
  console.log('');
  await import('./cold.ts');
}
if (process.argv.includes('--load')) {
  console.log('');
  await import('./load.ts');
}
