/**
 * Recovery and retention, run on a schedule (a Cloudflare Cron Trigger in the Worker):
 *
 * - the sweep re-queues jobs whose queue message was lost or never sent: `queued` jobs not
 *   touched for a while, and `retrying` jobs whose next attempt is well overdue. Sending a
 *   second message for a job is harmless: attempts are serialised per parent and a finished
 *   job is left alone (`attemptJob`).
 * - the purge drops the stored Bundles (patient data) of finished jobs after the retention
 *   period; the job row, its hashes, per-target results and the ledger are kept. Stored episodes
 *   (src/sync/episodes.ts) go the same retention period after they stop being kept (the episode
 *   has ended and its consent is no longer valid).
 * - `markDead` records a job the queue gave up on (its dead-letter queue), so nothing is
 *   dropped silently.
 *
 * Plain functions over the store and queue interfaces, with the clock passed in.
 * Cron Triggers: https://developers.cloudflare.com/workers/configuration/cron-triggers/
 */
import type { DeliveryQueue } from './service.ts';
import { type DeliveryStore, FINISHED_STATUSES, type Job } from './types.ts';

export interface SweepSettings {
  /** A `queued` job untouched this long is re-queued. */
  queuedAfterMs: number;
  /** A `retrying` job this long past its `nextAttemptAt` is re-queued. */
  retryGraceMs: number;
  /** Most jobs re-queued by one sweep (the rest wait for the next). */
  limit?: number;
}

export interface RetentionSettings {
  /** How long a finished job's Bundle is kept after it finished. */
  retentionMs: number;
  /** Most Bundles purged by one run. */
  limit?: number;
}

export const DEFAULT_SWEEP_LIMIT = 500;
export const DEFAULT_PURGE_LIMIT = 1000;

const iso = (ms: number) => new Date(ms).toISOString();

/** What the job view and the logs say about a job whose content was purged before it ran. */
export const PURGED_BEFORE_DELIVERY = 'the stored content of this job was purged before it could be delivered; re-send the episode';

/**
 * Re-queues jobs that should have run by now. A stale job whose content was already purged
 * (a replay that raced the purge) cannot run; it is marked dead with the reason instead.
 * Returns the ids re-queued and marked dead.
 */
export async function sweepStale(
  store: DeliveryStore,
  queue: DeliveryQueue,
  settings: SweepSettings,
  nowMs: number,
): Promise<{ requeued: string[]; dead: string[] }> {
  const stale = await store.listStale({
    queuedBefore: iso(nowMs - settings.queuedAfterMs),
    retryDueBefore: iso(nowMs - settings.retryGraceMs),
    limit: settings.limit ?? DEFAULT_SWEEP_LIMIT,
  });
  const dead: string[] = [];
  const runnable: Job[] = [];
  for (const job of stale) {
    if (job.purgedAt) {
      if (await markDead(store, job.id, PURGED_BEFORE_DELIVERY, nowMs)) dead.push(job.id);
    } else runnable.push(job);
  }
  if (runnable.length) await queue.send(runnable.map((j) => ({ jobId: j.id, parentKey: j.parentKey })));
  return { requeued: runnable.map((j) => j.id), dead };
}

/**
 * Purges the Bundles of jobs that finished (delivered, failed or dead) longer than the
 * retention period ago. Jobs still queued or retrying are never purged. Returns the count.
 */
export async function purgeExpired(store: DeliveryStore, settings: RetentionSettings, nowMs: number): Promise<number> {
  return store.purgeBundles({
    finishedBefore: iso(nowMs - settings.retentionMs),
    at: iso(nowMs),
    limit: settings.limit ?? DEFAULT_PURGE_LIMIT,
  });
}

/**
 * Deletes the stored episodes that stopped being kept (ended, and no valid consent: see
 * `episodeKeptUntil`) longer than the retention period ago. Returns the count.
 */
export async function purgeExpiredEpisodes(store: DeliveryStore, settings: RetentionSettings, nowMs: number): Promise<number> {
  return store.purgeEpisodes({ keptUntilBefore: iso(nowMs - settings.retentionMs), limit: settings.limit ?? DEFAULT_PURGE_LIMIT });
}

/**
 * Marks an unfinished job dead with `reason` on every target not yet finished, so it shows
 * in `GET /v1/jobs?status=dead` and can be replayed. A finished job is left as it is.
 * Returns whether the job was changed. `reason` must carry no personal data.
 */
export async function markDead(store: DeliveryStore, jobId: string, reason: string, nowMs: number): Promise<boolean> {
  const job = await store.getJob(jobId);
  if (!job || FINISHED_STATUSES.includes(job.status)) return false;
  for (const [name, target] of Object.entries(job.targets)) {
    if (!(FINISHED_STATUSES as readonly string[]).includes(target.status)) job.targets[name] = { ...target, status: 'dead', error: reason };
  }
  // An audit not yet written is dead too: a replay writes it.
  for (const a of job.audits ?? []) if (a.status === 'waiting' || a.status === 'retrying') Object.assign(a, { status: 'dead', error: reason });
  job.status = 'dead';
  job.updatedAt = iso(nowMs);
  delete job.nextAttemptAt;
  await store.saveJob(job);
  return true;
}
