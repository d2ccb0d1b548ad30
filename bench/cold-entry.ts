/**
 * One cold start, run by bench/cold.ts in a fresh `node` process from an esbuild bundle (as a
 * Worker ships it). Mode `parse`: read the Bundle's JSON and parse it (the baseline). Mode
 * `full`: read the episode's JSON, import mapping and validation, map, validate. Prints the
 * phases in milliseconds as one JSON line: wall time, and (`cpu`) this thread's CPU time, which
 * other processes on a shared machine disturb less.
 */
import { readFileSync } from 'node:fs';

const [mode, file] = process.argv.slice(2) as [string, string];
const cpu = (): number => {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
};
const c0 = cpu();
const t0 = performance.now();
const input = JSON.parse(readFileSync(file, 'utf8'));
const tRead = performance.now();
if (mode === 'parse') {
  process.stdout.write(`${JSON.stringify({ boot: t0, total: tRead - t0, cpu: { total: cpu() - c0 }, entries: input.entry?.length })}\n`);
} else {
  const { mapEpisode } = await import('../src/mapping/bundle.ts');
  const { validateFast, fastPathStats, referenceRequested } = await import('../src/fhir/validate-fast.ts');
  const tImport = performance.now();
  const cImport = cpu();
  const bundle = mapEpisode(input);
  const tMap = performance.now();
  const cMap = cpu();
  const result = await validateFast(bundle);
  const tValidate = performance.now();
  const cValidate = cpu();
  const valid = !result.issue?.some((i) => i.severity === 'error' || i.severity === 'fatal');
  process.stdout.write(
    `${JSON.stringify({ boot: t0, read: tRead - t0, import: tImport - tRead, map: tMap - tImport, validate: tValidate - tMap, total: tValidate - t0, cpu: { import: cImport - c0, map: cMap - cImport, validate: cValidate - cMap, total: cValidate - c0 }, valid, fast: fastPathStats.fast === 1, reference: referenceRequested() })}\n`,
  );
}
