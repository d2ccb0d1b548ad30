/**
 * Retry policy for writes to FHIR servers.
 * - 429 and 503 honour Retry-After (delta-seconds or HTTP-date, RFC 9110 §10.2.3), capped.
 * - Other 5xx, timeouts and dropped connections back off exponentially with full jitter.
 * - 412 and other 4xx are not retried: the server refused, and only a person can tell why.
 */

export interface RetryPolicy {
  /** Attempts before a job is dead. */
  maxAttempts: number;
  /** First backoff step in milliseconds. */
  baseDelayMs: number;
  /** Longest backoff in milliseconds. */
  maxDelayMs: number;
  /** Longest wait a Retry-After header may ask for, in milliseconds. */
  retryAfterCapMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 8,
  baseDelayMs: 1_000,
  maxDelayMs: 5 * 60_000,
  retryAfterCapMs: 5 * 60_000,
};

/**
 * Milliseconds a Retry-After header asks to wait, or undefined when absent or unreadable.
 * Never negative; capped by the policy.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number, capMs: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  let ms: number | undefined;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (!Number.isNaN(at)) ms = at - nowMs;
  }
  if (ms === undefined) return undefined;
  return Math.min(Math.max(0, ms), capMs);
}

/** Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"). */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export type FailureKind = 'http' | 'timeout' | 'network';

/** What to do after a failed attempt. */
export type RetryDecision = { retry: true; delayMs: number } | { retry: false };

export function decide(
  failure: { kind: FailureKind; status?: number; retryAfter?: string | null },
  attempt: number,
  policy: RetryPolicy,
  nowMs: number,
  random: () => number,
): RetryDecision {
  const retryable = failure.kind !== 'http' || failure.status === 429 || (failure.status !== undefined && failure.status >= 500);
  if (!retryable) return { retry: false };
  if (attempt >= policy.maxAttempts) return { retry: false };
  if (failure.kind === 'http' && (failure.status === 429 || failure.status === 503)) {
    const asked = parseRetryAfter(failure.retryAfter, nowMs, policy.retryAfterCapMs);
    if (asked !== undefined) return { retry: true, delayMs: asked };
  }
  return { retry: true, delayMs: backoffDelay(attempt, policy, random) };
}
