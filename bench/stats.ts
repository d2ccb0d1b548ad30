/**
 * Small statistics for the benchmarks: they run on shared, noisy machines, so every figure is
 * a median with its spread (10th–90th percentile), never a single run.
 */

/** The q-quantile (0..1) of `xs` by linear interpolation between closest ranks. */
export function quantile(xs: readonly number[], q: number): number {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo);
}

export interface Spread {
  median: number;
  p10: number;
  p90: number;
  n: number;
}

export function spread(xs: readonly number[]): Spread {
  return { median: quantile(xs, 0.5), p10: quantile(xs, 0.1), p90: quantile(xs, 0.9), n: xs.length };
}

/** "12.3 (11.9–13.0)": median and p10–p90 with `digits` decimals. */
export function show(s: Spread, digits = 2, unit = ''): string {
  return `${s.median.toFixed(digits)}${unit} (${s.p10.toFixed(digits)}–${s.p90.toFixed(digits)})`;
}
