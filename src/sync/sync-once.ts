/**
 * Delivers one episode straight to a FHIR base URL, for integrators trying a server by
 * hand: the same mapping, conditional writes and retry policy as the queue, without the
 * ledger (every run writes the whole episode).
 */
import { OperationOutcomeError } from '../fhir/outcome.ts';
import type { IdentityOptions } from '../mapping/identity.ts';
import { FhirTargetClient } from './client.ts';
import { attemptJob, CLINIC_TARGET } from './deliver.ts';
import { MemoryStore } from './memory-store.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.ts';
import { submitEpisode } from './deliver.ts';
import type { Job } from './types.ts';

export interface SyncOptions {
  baseUrl: string;
  bearer?: string;
  allowSyntheticIds?: boolean;
  /** The deployment's identifier namespace and pseudonym secret (identity.ts). */
  identity?: IdentityOptions;
  policy?: RetryPolicy;
  fetch?: typeof fetch;
  /** Progress lines (never carrying personal data or the token). */
  log?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
}

export interface SyncResult {
  delivered: boolean;
  report: { episode: string; status: Job['status']; attempts: number; target: string; result: Job['targets'][string] };
}

/** Throws OperationOutcomeError for a bad episode (nothing is sent). */
export async function syncOnce(input: unknown, opts: SyncOptions): Promise<SyncResult> {
  const store = new MemoryStore();
  const fetchImpl = opts.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  const client = new FhirTargetClient(opts.baseUrl, {
    fetch: fetchImpl,
    authorization: async () => (opts.bearer ? `Bearer ${opts.bearer}` : undefined),
  });
  const deps = {
    store,
    clientFor: () => client,
    now: Date.now,
    random: Math.random,
    newId: () => crypto.randomUUID(),
    policy: opts.policy ?? DEFAULT_RETRY_POLICY,
  };
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const job = await submitEpisode(input, deps, { allowSyntheticIds: opts.allowSyntheticIds, identity: opts.identity });
  for (;;) {
    const r = await attemptJob(job.id, deps);
    if (!r) throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: [{ severity: 'fatal', code: 'exception', details: { text: 'job vanished' } }] }, 500);
    const result = r.job.targets[CLINIC_TARGET] as Job['targets'][string];
    if (r.done) {
      return {
        delivered: r.job.status === 'delivered',
        report: { episode: r.job.episodeKey, status: r.job.status, attempts: r.job.attempts, target: client.baseUrl, result },
      };
    }
    opts.log?.(`attempt ${r.job.attempts} failed (${result.error ?? 'error'}); retrying in ${Math.round(r.delayMs / 100) / 10} s`);
    await sleep(r.delayMs);
  }
}
