import { describe, expect, it } from 'vitest';
import { quantile, spread } from '../../bench/stats.ts';

describe('benchmark statistics', () => {
  it('interpolates quantiles between closest ranks, whatever the input order', () => {
    const xs = [9, 1, 5, 3, 7];
    expect(quantile(xs, 0.5)).toBe(5);
    expect(quantile(xs, 0)).toBe(1);
    expect(quantile(xs, 1)).toBe(9);
    expect(quantile(xs, 0.1)).toBeCloseTo(1.8);
    expect(quantile([1, 2], 0.5)).toBe(1.5);
    expect(xs).toEqual([9, 1, 5, 3, 7]);
  });

  it('gives median and p10–p90 of a sample, NaN for none', () => {
    expect(spread([4, 2, 3, 1])).toEqual({ median: 2.5, p10: 1.3, p90: expect.closeTo(3.7), n: 4 });
    expect(Number.isNaN(quantile([], 0.5))).toBe(true);
  });
});
