/**
 * Mapping and validation cost per episode, as ratios to a baseline measured in the same
 * run: JSON.parse(JSON.stringify(bundle)) of the same output. Run: npm run bench
 */
import type { Bundle } from '@medplum/fhirtypes';
import { validateFhir } from '../src/fhir/validate.ts';
import { mapEpisode } from '../src/mapping/bundle.ts';
import { completed } from '../test/fixtures/examples.ts';
import { longEpisode } from '../test/fixtures/generate.ts';

/** Median milliseconds per call over `rounds` rounds of `n` calls, after a warm-up. */
function time(fn: () => unknown, n: number, rounds = 7): number {
  for (let i = 0; i < n; i++) fn();
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    samples.push((performance.now() - t0) / n);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] as number;
}

const cases: [string, unknown][] = [
  ['completed example', completed()],
  ['50-session episode', longEpisode(50)],
];

validateFhir(mapEpisode(completed())); // load and index definitions outside the timings

console.log('case                 | entries | round-trip ms | map ms (×rt) | validate ms (×rt) | map+validate ms (×rt)');
for (const [name, input] of cases) {
  const bundle: Bundle = mapEpisode(input);
  const n = 20;
  const rt = time(() => JSON.parse(JSON.stringify(bundle)), n);
  const map = time(() => mapEpisode(input), n);
  const val = time(() => validateFhir(bundle), Math.max(3, n / 4));
  const both = map + val;
  const f = (ms: number) => `${ms.toFixed(2)} (${(ms / rt).toFixed(1)}×)`;
  console.log(`${name.padEnd(20)} | ${String(bundle.entry?.length).padStart(7)} | ${rt.toFixed(3).padStart(13)} | ${f(map).padStart(12)} | ${f(val).padStart(17)} | ${f(both).padStart(21)}`);
}
