/**
 * One cold start, run by bench/cold.ts in a fresh `node` process from an esbuild bundle (as a
 * Worker ships it). Mode `parse`: read the Bundle's JSON and parse it (the baseline). Mode
 * `full`: read the episode's JSON, import mapping and validation, map, validate. Prints the
 * phases in milliseconds as one JSON line.
 */
import { readFileSync } from 'node:fs';

const [mode, file] = process.argv.slice(2) as [string, string];
const t0 = performance.now();
const input = JSON.parse(readFileSync(file, 'utf8'));
const tRead = performance.now();
if (mode === 'parse') {
  process.stdout.write(`${JSON.stringify({ boot: t0, total: tRead - t0, entries: input.entry?.length })}\n`);
} else {
  const { mapEpisode } = await import('../src/mapping/bundle.ts');
  const { validateFast, fastPathStats, referenceRequested } = await import('../src/fhir/validate-fast.ts');
  const tImport = performance.now();
  const bundle = mapEpisode(input);
  const tMap = performance.now();
  const result = await validateFast(bundle);
  const tValidate = performance.now();
  const valid = !result.issue?.some((i) => i.severity === 'error' || i.severity === 'fatal');
  process.stdout.write(
    `${JSON.stringify({ boot: t0, read: tRead - t0, import: tImport - tRead, map: tMap - tImport, validate: tValidate - tMap, total: tValidate - t0, valid, fast: fastPathStats.fast === 1, reference: referenceRequested() })}\n`,
  );
}
