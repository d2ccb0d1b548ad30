/**
 * One delivery attempt of a job to its targets, and submission of new jobs. Everything
 * with side effects (store, HTTP, clock, randomness) comes in through `DeliveryDeps`, so
 * the same code runs in a queue consumer in workerd and in Node.
 */
import type { Bundle } from '@medplum/fhirtypes';
import { parseEpisode } from '../domain/parse.ts';
import { MAPPING_VERSION, type MapOptions, mapParsedEpisode } from '../mapping/bundle.ts';
import { DEV_IDENTITY, pseudonym } from '../mapping/identity.ts';
import { MASTER_DATA_TYPES } from '../mapping/write-semantics.ts';
import { RETRACTABLE_TYPES, applyOrdered, applyTransaction, capabilities, countWrites, retract, supplementMasterData } from './apply.ts';
import { type FhirTargetClient, TargetError } from './client.ts';
import { redactOutcome } from './redact.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, decide } from './retry.ts';
import type { DeliveryStore, Job, LedgerRecord, TargetResult } from './types.ts';

/** The target that receives every episode: the clinic's own FHIR server. */
export const CLINIC_TARGET = 'clinic';

export interface DeliveryDeps {
  store: DeliveryStore;
  clientFor(target: string): FhirTargetClient;
  now(): number;
  random(): number;
  newId(): string;
  policy?: RetryPolicy;
}

/** Lowercase hex SHA-256 of a string (WebCrypto: same in workerd and Node). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export interface Submission {
  job: Job;
}

/**
 * Validates and maps an episode, then records a job for it. Throws the OperationOutcomeError
 * of a bad episode before anything is stored.
 */
export async function submitEpisode(input: unknown, deps: Pick<DeliveryDeps, 'store' | 'now' | 'newId'>, options: MapOptions = {}): Promise<Job> {
  const episode = parseEpisode(input, options);
  const identity = options.identity ?? DEV_IDENTITY;
  const bundle = mapParsedEpisode(episode, identity);
  const at = new Date(deps.now()).toISOString();
  return deps.store.createJob({
    id: deps.newId(),
    episodeKey: `${episode.clinic.orgNumber}/${episode.episodeId}`,
    // Keyed, so that the key in queues, Durable Object names and storage reveals no national id.
    parentKey: pseudonym(identity, `parent|${episode.clinic.orgNumber}|${episode.parent.nationalId}`),
    contentHash: await sha256Hex(JSON.stringify(bundle)),
    mappingVersion: MAPPING_VERSION,
    status: 'queued',
    attempts: 0,
    createdAt: at,
    updatedAt: at,
    targets: { [CLINIC_TARGET]: { status: 'pending' } },
    bundle,
  });
}

export type AttemptResult = { done: true; job: Job } | { done: false; job: Job; delayMs: number };

const FINAL = new Set(['delivered', 'failed', 'dead']);

/**
 * Runs one attempt of a job. Idempotent: a job already finished is left alone (a queue may
 * deliver a message twice). Returns whether to try again, and when.
 */
export async function attemptJob(jobId: string, deps: DeliveryDeps): Promise<AttemptResult | undefined> {
  const policy = deps.policy ?? DEFAULT_RETRY_POLICY;
  const job = await deps.store.getJob(jobId);
  if (!job) return undefined;
  if (FINAL.has(job.status)) return { done: true, job };
  const bundle = await deps.store.getBundle(jobId);
  if (!bundle) throw new Error('job has no bundle');

  job.attempts += 1;
  let retryIn: number | undefined;
  for (const [target, result] of Object.entries(job.targets)) {
    if (FINAL.has(result.status)) continue;
    try {
      job.targets[target] = await deliverToTarget(job, bundle, target, deps);
    } catch (e) {
      const failure = e instanceof TargetError ? e : undefined;
      const decision = decide(
        failure ? { kind: failure.kind, status: failure.status, retryAfter: failure.retryAfter } : { kind: 'network' },
        job.attempts,
        policy,
        deps.now(),
        deps.random,
      );
      const base: TargetResult = {
        status: decision.retry ? 'retrying' : failure?.kind === 'http' && failure.status !== undefined && failure.status < 500 && failure.status !== 429 ? 'failed' : 'dead',
        error: failure ? failure.message : 'internal error while delivering',
        ...(failure?.status !== undefined ? { httpStatus: failure.status } : {}),
        // Kept capped and without the national ids, names and phone numbers a server may quote.
        ...(failure?.outcome ? { outcome: redactOutcome(failure.outcome, bundle) } : {}),
      };
      job.targets[target] = base;
      if (decision.retry) retryIn = Math.max(retryIn ?? 0, decision.delayMs);
      if (!failure) console.error('delivery attempt failed', (e as Error)?.name ?? 'error');
    }
  }
  const statuses = Object.values(job.targets).map((t) => t.status);
  job.status = statuses.includes('retrying') ? 'retrying' : statuses.includes('dead') ? 'dead' : statuses.includes('failed') ? 'failed' : 'delivered';
  job.updatedAt = new Date(deps.now()).toISOString();
  if (retryIn !== undefined && job.status === 'retrying') job.nextAttemptAt = new Date(deps.now() + retryIn).toISOString();
  else delete job.nextAttemptAt;
  await deps.store.saveJob(job);
  return job.status === 'retrying' ? { done: false, job, delayMs: retryIn ?? 0 } : { done: true, job };
}

async function deliverToTarget(job: Job, bundle: Bundle, target: string, deps: DeliveryDeps): Promise<TargetResult> {
  const at = () => new Date(deps.now()).toISOString();
  const ledger = await deps.store.getLedger(job.tenant, job.episodeKey, target);
  if (ledger && ledger.seq > job.seq) return { status: 'delivered', superseded: true, written: 0, counts: { created: 0, updated: 0, unchanged: 0 }, deliveredAt: at() };
  if (ledger && ledger.contentHash === job.contentHash && ledger.mappingVersion === job.mappingVersion) {
    await deps.store.putLedger({ ...ledger, seq: job.seq });
    const entries = bundle.entry?.length ?? 0;
    return { status: 'delivered', unchanged: true, written: 0, retracted: 0, counts: { created: 0, updated: 0, unchanged: entries }, deliveredAt: at() };
  }
  const client = deps.clientFor(target);
  const caps = await capabilities(client, deps.now());
  const applied = await supplementMasterData(client, bundle, caps.transaction ? await applyTransaction(client, bundle) : await applyOrdered(client, bundle));
  const previous = new Map((ledger?.resources ?? []).filter((r) => !r.retracted).map((r) => [r.key, r.versionId]));
  const counts = countWrites(applied, previous);
  const written = applied.map(({ key, type, id, versionId }) => ({ key, type, id, ...(versionId ? { versionId } : {}) }));

  // What this episode had on the server but no longer has: withdraw it, never leave or delete
  // it. Master data is shared with other episodes and systems: it stays as it is.
  const current = new Set(written.map((w) => w.key));
  const kept: LedgerRecord['resources'] = [];
  let retracted = 0;
  for (const r of ledger?.resources ?? []) {
    if (current.has(r.key) || !RETRACTABLE_TYPES.has(r.type) || MASTER_DATA_TYPES.has(r.type)) continue;
    if (!r.retracted) {
      const done = await retract(client, r.type, r.id);
      retracted += 1;
      kept.push({ ...(done ?? r), key: r.key, retracted: true });
    } else kept.push(r);
  }
  const resources: LedgerRecord['resources'] = [...written, ...kept];
  await deps.store.putLedger({
    tenant: job.tenant,
    episodeKey: job.episodeKey,
    target,
    seq: job.seq,
    contentHash: job.contentHash,
    mappingVersion: job.mappingVersion,
    deliveredAt: at(),
    resources,
  });
  return { status: 'delivered', written: written.length, retracted, counts, deliveredAt: at() };
}

/** Puts a finished (dead or failed) job back in the queue state; the caller enqueues it. */
export async function resetForReplay(jobId: string, store: DeliveryStore, nowMs: number): Promise<{ job: Job; replayed: boolean } | undefined> {
  const job = await store.getJob(jobId);
  if (!job) return undefined;
  if (job.status !== 'dead' && job.status !== 'failed') return { job, replayed: false };
  job.status = 'queued';
  job.attempts = 0;
  job.updatedAt = new Date(nowMs).toISOString();
  delete job.nextAttemptAt;
  for (const t of Object.values(job.targets)) if (t.status === 'dead' || t.status === 'failed') t.status = 'pending';
  await store.saveJob(job);
  return { job, replayed: true };
}
