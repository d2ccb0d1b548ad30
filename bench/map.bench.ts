/**
 * Warm cost of mapping and validating an episode, as ratios to a JSON round-trip
 * (`JSON.parse(JSON.stringify(bundle))`) of the Bundle it gives. The baseline is measured
 * interleaved with each timing (baseline, measure, baseline, measure, … in this process), so
 * that a machine that slows down or speeds up during the run moves both; each ratio is taken
 * against the baseline rounds on either side of it, and the report gives the median and the
 * 10th–90th percentile of the ratios, in wall time and in this thread's CPU time (which
 * other processes on a shared machine disturb less). Then cold start (bench/cold.ts, fresh processes) and, with
 * `--load`, the load run in workerd (bench/load.ts).
 *
 *   npm run bench             # warm + cold
 *   npm run bench -- --load   # and the load run (also: npm run bench:load)
 */
import type { Bundle } from '@medplum/fhirtypes';
import { validateFhir } from '../src/fhir/validate.ts';
import { fastPathStats, resetFastPathStats, validateFast } from '../src/fhir/validate-fast.ts';
import { mapEpisode } from '../src/mapping/bundle.ts';
import { completed } from '../test/fixtures/examples.ts';
import { longEpisode } from '../test/fixtures/generate.ts';
import { show, spread } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
/** Target length of one timed batch, in ms. */
const BATCH_MS = Number(process.env.BENCH_BATCH_MS ?? 60);

const threadCpu = (): number => {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
};

interface Timing {
  wall: number;
  cpu: number;
}

/** Milliseconds per call of `fn` (wall and thread CPU), over a batch of `n` calls; a promise is awaited before the next call. */
async function batch(fn: () => unknown, n: number): Promise<Timing> {
  const t0 = performance.now();
  const c0 = threadCpu();
  for (let i = 0; i < n; i++) {
    const r = fn();
    if (r instanceof Promise) await r;
  }
  return { wall: (performance.now() - t0) / n, cpu: (threadCpu() - c0) / n };
}

interface Series {
  ms: number[];
  ratio: number[];
  baseMs: number[];
  cpuRatio: number[];
}

/**
 * Ratios of `fn` to `base`, interleaved: base, fn, base, fn, …, base. Each fn round is divided by
 * the mean of the base rounds before and after it. Returns the per-call times and the ratios.
 */
async function interleaved(base: () => unknown, fn: () => unknown, nBase: number, nFn: number, rounds = ROUNDS): Promise<Series> {
  await batch(base, nBase);
  await batch(fn, nFn); // warm-up
  let prev = await batch(base, nBase);
  const out: Series = { ms: [], ratio: [], baseMs: [prev.wall], cpuRatio: [] };
  for (let r = 0; r < rounds; r++) {
    const m = await batch(fn, nFn);
    const b = await batch(base, nBase);
    out.ms.push(m.wall);
    out.ratio.push(m.wall / ((b.wall + prev.wall) / 2));
    // Thread CPU time may be counted in scheduler ticks (4 ms here): batches are long enough
    // (BATCH_MS) that this stays small, and a round without a tick on the baseline is skipped.
    if (b.cpu + prev.cpu > 0) out.cpuRatio.push(m.cpu / ((b.cpu + prev.cpu) / 2));
    out.baseMs.push(b.wall);
    prev = b;
  }
  return out;
}

/** Batch size that makes a batch of `fn` take about `targetMs`. */
async function calls(fn: () => unknown, targetMs: number): Promise<number> {
  const one = (await batch(fn, 1)).wall;
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
console.log('validate = validateFast (generated validators, falling back to the reference); reference = validateFhir alone');
console.log('×rt: wall time; (CPU) the same ratio in main-thread CPU time\n');
console.log(
  'case                 | entries | round-trip ms       | map ×rt             | validate ×rt         | map+validate ×rt     | map+validate ×rt (CPU) | map+validate ms        | reference validate ×rt',
);
for (const [name, input] of cases) {
  const bundle: Bundle = mapEpisode(input);
  const rt = () => JSON.parse(JSON.stringify(bundle));
  const map = () => mapEpisode(input);
  const val = () => validateFast(bundle);
  const both = () => validateFast(mapEpisode(input));
  const ref = () => validateFhir(bundle);
  const nRt = await calls(rt, BATCH_MS);
  const m = await interleaved(rt, map, nRt, await calls(map, BATCH_MS));
  const v = await interleaved(rt, val, nRt, await calls(val, BATCH_MS));
  const b = await interleaved(rt, both, nRt, await calls(both, BATCH_MS));
  const r = await interleaved(rt, ref, nRt, await calls(ref, BATCH_MS), Math.min(ROUNDS, 7));
  console.log(
    [
      name.padEnd(20),
      String(bundle.entry?.length).padStart(7),
      show(spread(b.baseMs), 3).padEnd(19),
      `${show(spread(m.ratio), 1)}×`.padEnd(19),
      `${show(spread(v.ratio), 1)}×`.padEnd(20),
      `${show(spread(b.ratio), 1)}×`.padEnd(20),
      `${show(spread(b.cpuRatio), 1)}×`.padEnd(22),
      show(spread(b.ms), 2).padEnd(22),
      `${show(spread(r.ratio), 1)}×`,
    ].join(' | '),
  );
}
const reasons = [...fastPathStats.reasons].map(([why, n]) => `${n}× ${why}`).join('; ');
console.log(
  `\nfast path: ${fastPathStats.fast} decided by the generated validators, ${fastPathStats.fallback} handed to the reference${reasons ? ` (${reasons})` : ''}`,
);

if (!process.argv.includes('--no-cold')) {
  console.log('');
  await import('./cold.ts');
}
if (process.argv.includes('--load')) {
  console.log('');
  await import('./load.ts');
}
