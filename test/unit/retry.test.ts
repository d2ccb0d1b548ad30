import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_RETRY_POLICY, decide, parseRetryAfter } from '../../src/sync/retry.ts';

const now = Date.parse('2026-11-25T12:00:00Z');
const policy = DEFAULT_RETRY_POLICY;

describe('Retry-After', () => {
  it('reads delta-seconds', () => expect(parseRetryAfter('7', now, 300_000)).toBe(7_000));
  it('reads an HTTP date', () => expect(parseRetryAfter('Wed, 25 Nov 2026 12:00:30 GMT', now, 300_000)).toBe(30_000));
  it('caps long waits', () => expect(parseRetryAfter('86400', now, 300_000)).toBe(300_000));
  it('treats a date in the past as now', () => expect(parseRetryAfter('Wed, 25 Nov 2026 11:00:00 GMT', now, 300_000)).toBe(0));
  it('ignores garbage', () => expect(parseRetryAfter('soon', now, 300_000)).toBeUndefined());
});

describe('retry decisions', () => {
  const r = () => 0.5;
  it('honours Retry-After on 429 and 503', () => {
    expect(decide({ kind: 'http', status: 429, retryAfter: '3' }, 1, policy, now, r)).toEqual({ retry: true, delayMs: 3000 });
    expect(decide({ kind: 'http', status: 503, retryAfter: 'Wed, 25 Nov 2026 12:01:00 GMT' }, 1, policy, now, r)).toEqual({ retry: true, delayMs: 60_000 });
  });
  it('backs off exponentially for 5xx, timeouts and dropped connections', () => {
    const d = (attempt: number, kind: 'http' | 'timeout' | 'network') => decide({ kind, status: kind === 'http' ? 500 : undefined }, attempt, policy, now, r);
    expect(d(1, 'http')).toEqual({ retry: true, delayMs: 750 });
    expect(d(2, 'timeout')).toEqual({ retry: true, delayMs: 1500 });
    expect(d(3, 'network')).toEqual({ retry: true, delayMs: 3000 });
  });
  it('does not retry 412 or other 4xx', () => {
    for (const status of [400, 401, 403, 404, 409, 412, 422]) expect(decide({ kind: 'http', status }, 1, policy, now, r)).toEqual({ retry: false });
  });
  it('stops after the last attempt', () => {
    expect(decide({ kind: 'http', status: 500 }, policy.maxAttempts, policy, now, r)).toEqual({ retry: false });
  });
  it('jitter stays within half to all of the exponential ceiling, and the ceiling is capped', () => {
    for (const x of [0, 0.3, 0.999]) {
      const d = backoffDelay(4, policy, () => x);
      expect(d).toBeGreaterThanOrEqual(4_000);
      expect(d).toBeLessThanOrEqual(8_000);
    }
    expect(backoffDelay(40, policy, () => 1)).toBe(policy.maxDelayMs);
  });
});
