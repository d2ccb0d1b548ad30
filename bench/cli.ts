/**
 * The CLI as a person runs it, in fresh processes: `imh-bridge map` of the completed example
 * and `imh-bridge validate` of the Bundle it prints, each from the esbuild bundle that npm ci
 * builds (dist/cli/, scripts/build-cli.ts) and from the TypeScript sources
 * (IMH_BRIDGE_FROM_SOURCE=1). Interleaved with the baseline, a `node` process that runs nothing,
 * N rounds; reports wall time as median (p10–p90) and the ratio to the baseline of the same round.
 * Builds the bundle first, so that it is the one the sources give now.
 * Run: npm run bench:cli (BENCH_CLI_RUNS rounds, default 15).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { show, spread } from './stats.ts';

const N = Number(process.env.BENCH_CLI_RUNS ?? 15);
const root = resolve(import.meta.dirname, '..');
const bin = join(root, 'bin', 'imh-bridge.js');
const example = join(root, 'examples', 'completed-mother.episode.json');

const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-cli.ts')], { encoding: 'utf8' });
if (build.status !== 0) throw new Error(`npm run build:cli failed: ${build.stderr}`);

const dir = mkdtempSync(join(tmpdir(), 'imh-bench-cli-'));
try {
  const env = { ...process.env };
  delete env.IMH_BRIDGE_FROM_SOURCE;
  const sourceEnv = { ...env, IMH_BRIDGE_FROM_SOURCE: '1' };
  const timed = (args: string[], e: NodeJS.ProcessEnv = env): { ms: number; out: string } => {
    const t = performance.now();
    const r = spawnSync(process.execPath, args, { env: e, encoding: 'utf8', maxBuffer: 64 << 20 });
    const ms = performance.now() - t;
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return { ms, out: r.stdout };
  };
  const bundleFile = join(dir, 'bundle.json');
  writeFileSync(bundleFile, timed([bin, 'map', example]).out);
  // One run of each first: the OS file cache, and Node's compile cache as the CLI keeps it.
  for (const e of [env, sourceEnv]) {
    timed([bin, 'map', example], e);
    timed([bin, 'validate', bundleFile], e);
  }
  const kinds = {
    'map, bundle': { args: [bin, 'map', example], env },
    'map, sources': { args: [bin, 'map', example], env: sourceEnv },
    'validate, bundle': { args: [bin, 'validate', bundleFile], env },
    'validate, sources': { args: [bin, 'validate', bundleFile], env: sourceEnv },
  };
  const baseline: number[] = [];
  const ms: Record<string, number[]> = {};
  const ratio: Record<string, number[]> = {};
  for (let i = 0; i < N; i++) {
    const base = timed(['-e', '']).ms;
    baseline.push(base);
    // Rotate the order, so that no kind always follows the baseline.
    const names = Object.keys(kinds);
    for (let k = 0; k < names.length; k++) {
      const name = names[(i + k) % names.length] as keyof typeof kinds;
      const { args, env: e } = kinds[name];
      const t = timed(args, e).ms;
      (ms[name] ??= []).push(t);
      (ratio[name] ??= []).push(t / base);
    }
  }
  console.log(`The CLI in fresh processes, ${N} interleaved rounds; wall ms, median (p10–p90)\n`);
  console.log(`${'node -e "" (baseline)'.padEnd(24)}${show(spread(baseline), 1)}`);
  for (const name of Object.keys(kinds)) {
    console.log(`${name.padEnd(24)}${show(spread(ms[name] ?? []), 1).padEnd(24)}${show(spread(ratio[name] ?? []), 1)}× the baseline`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
