/**
 * Recovery and retention over MemoryStore with a clock the test moves: the sweep re-queues
 * jobs whose queue message was lost, the purge drops old Bundles but keeps the ledger, and
 * a purged job answers 410 to a replay.
 */
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { isOperationOutcomeError } from '../../src/fhir/outcome.ts';
import { createApp } from '../../src/http/app.ts';
import { clearCapabilityCache } from '../../src/sync/apply.ts';
import { FhirTargetClient } from '../../src/sync/client.ts';
import { submitEpisode } from '../../src/sync/deliver.ts';
import { LocalQueue } from '../../src/sync/local-queue.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService, type DeliveryQueue } from '../../src/sync/service.ts';
import { markDead, PURGED_BEFORE_DELIVERY, purgeExpired, sweepStale } from '../../src/sync/sweep.ts';
import type { Job } from '../../src/sync/types.ts';
import { capabilityStatement } from '../fixtures/capability.ts';
import { activeFather, completed, plannedMinimal } from '../fixtures/examples.ts';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const SWEEP = { queuedAfterMs: 15 * MINUTE, retryGraceMs: 15 * MINUTE };
const RETENTION = { retentionMs: 30 * DAY };

let clock: number;
let ids: number;
let store: MemoryStore;
let sent: { jobId: string; parentKey: string }[];
const queue: DeliveryQueue = {
  async send(messages) {
    sent.push(...messages);
  },
};
const deps = () => ({ store, now: () => clock, newId: () => `job-${++ids}` });

beforeEach(() => {
  clock = Date.parse('2026-11-01T08:00:00Z');
  ids = 0;
  store = new MemoryStore();
  sent = [];
});

/** Records a job at the current time without queueing it (a lost message). */
const stored = (episode: unknown = plannedMinimal()) => submitEpisode(episode, deps());

/** Saves the job as an attempt would have left it, at the current time. */
async function finish(job: Job, status: Job['status'], extra: Partial<Job> = {}): Promise<Job> {
  const at = new Date(clock).toISOString();
  const target = status === 'delivered' ? { status, written: 12, deliveredAt: at } : { status, error: 'POST (transaction): HTTP 503', httpStatus: 503 };
  const saved = { ...(await store.getJob(job.id))!, status, attempts: 1, updatedAt: at, targets: { clinic: target }, ...extra } as Job;
  await store.saveJob(saved);
  return saved;
}

describe('sweepStale', () => {
  it('re-queues a queued job left unattempted past the threshold, and not before', async () => {
    const job = await stored();
    clock += 14 * MINUTE;
    expect(await sweepStale(store, queue, SWEEP, clock)).toEqual({ requeued: [], dead: [] });
    expect(sent).toEqual([]);

    clock += 2 * MINUTE;
    expect(await sweepStale(store, queue, SWEEP, clock)).toEqual({ requeued: [job.id], dead: [] });
    expect(sent).toEqual([{ jobId: job.id, parentKey: job.parentKey }]);
    // The sweep only asks for an attempt: the job itself is unchanged.
    expect(await store.getJob(job.id)).toEqual(job);
  });

  it('re-queues a retrying job only once its next attempt is well past', async () => {
    const job = await stored();
    const retrying = await finish(job, 'retrying', { nextAttemptAt: new Date(clock + 5 * MINUTE).toISOString() });
    clock += 5 * MINUTE + 14 * MINUTE; // due, but within the grace period
    expect((await sweepStale(store, queue, SWEEP, clock)).requeued).toEqual([]);
    clock += 2 * MINUTE;
    expect((await sweepStale(store, queue, SWEEP, clock)).requeued).toEqual([retrying.id]);
  });

  it('never re-queues finished jobs, however old', async () => {
    const a = await finish(await stored(plannedMinimal()), 'delivered');
    const b = await finish(await stored(completed()), 'failed');
    const c = await finish(await stored(activeFather()), 'dead');
    clock += 365 * DAY;
    expect((await sweepStale(store, queue, SWEEP, clock)).requeued).toEqual([]);
    expect(sent).toEqual([]);
    expect((await store.getJob(a.id))?.status).toBe('delivered');
    expect((await store.getJob(b.id))?.status).toBe('failed');
    expect((await store.getJob(c.id))?.status).toBe('dead');
  });

  it('re-queues oldest first and at most `limit` jobs per run', async () => {
    const jobs = [];
    for (let i = 0; i < 5; i++) jobs.push(await stored({ ...plannedMinimal(), episodeId: `VG-SWEEP-${i}` }));
    clock += 20 * MINUTE;
    expect((await sweepStale(store, queue, { ...SWEEP, limit: 3 }, clock)).requeued).toEqual(jobs.slice(0, 3).map((j) => j.id));
  });

  it('marks a stale job whose content was purged dead instead of re-queueing it', async () => {
    const job = await finish(await stored(), 'dead');
    clock += 31 * DAY;
    expect(await purgeExpired(store, RETENTION, clock)).toBe(1);
    // A replay that raced the purge put it back in the queue state.
    await store.saveJob({ ...(await store.getJob(job.id))!, status: 'queued', targets: { clinic: { status: 'pending' } } });
    clock += 20 * MINUTE;
    expect(await sweepStale(store, queue, SWEEP, clock)).toEqual({ requeued: [], dead: [job.id] });
    const after = await store.getJob(job.id);
    expect(after?.status).toBe('dead');
    expect(after?.targets.clinic).toMatchObject({ status: 'dead', error: PURGED_BEFORE_DELIVERY });
  });
});

describe('purgeExpired', () => {
  it('purges the Bundle of a delivered job after the retention period, keeping the job and its ledger', async () => {
    const job = await stored(completed());
    const delivered = await finish(job, 'delivered');
    const ledger = {
      tenant: job.tenant,
      episodeKey: job.episodeKey,
      target: 'clinic',
      seq: job.seq,
      contentHash: job.contentHash,
      mappingVersion: job.mappingVersion,
      deliveredAt: delivered.updatedAt,
      resources: [{ key: 'Encounter|x', type: 'Encounter', id: 'enc-1' }],
    };
    await store.putLedger(ledger);
    expect(await store.getBundle(job.id)).toBeDefined();

    clock += 30 * DAY - MINUTE;
    expect(await purgeExpired(store, RETENTION, clock)).toBe(0);
    expect(await store.getBundle(job.id)).toBeDefined();

    clock += 2 * MINUTE;
    expect(await purgeExpired(store, RETENTION, clock)).toBe(1);
    expect(await store.getBundle(job.id)).toBeUndefined();
    const kept = await store.getJob(job.id);
    expect(kept).toEqual({ ...delivered, purgedAt: new Date(clock).toISOString() });
    expect(kept?.contentHash).toBe(job.contentHash);
    expect(kept?.targets.clinic).toMatchObject({ status: 'delivered', written: 12 });
    expect(await store.getLedger(job.tenant, job.episodeKey, 'clinic')).toEqual(ledger);

    // Already purged: nothing more to do, and the first purge time stays.
    clock += DAY;
    expect(await purgeExpired(store, RETENTION, clock)).toBe(0);
    expect((await store.getJob(job.id))?.purgedAt).toBe(kept?.purgedAt);
  });

  it('purges failed and dead jobs too, but never a job that has not finished', async () => {
    const failed = await finish(await stored(plannedMinimal()), 'failed');
    const dead = await finish(await stored(completed()), 'dead');
    const retrying = await finish(await stored(activeFather()), 'retrying', { nextAttemptAt: new Date(clock).toISOString() });
    const queued = await stored({ ...plannedMinimal(), episodeId: 'VG-NEVER-RUN' });
    clock += 400 * DAY;
    expect(await purgeExpired(store, RETENTION, clock)).toBe(2);
    expect(await store.getBundle(failed.id)).toBeUndefined();
    expect(await store.getBundle(dead.id)).toBeUndefined();
    expect(await store.getBundle(retrying.id)).toBeDefined();
    expect(await store.getBundle(queued.id)).toBeDefined();
    expect((await store.getJob(queued.id))?.purgedAt).toBeUndefined();
  });

  it('counts retention from when the job finished, not from when it arrived', async () => {
    const job = await stored();
    clock += 40 * DAY; // retried for a long time
    await finish(job, 'delivered');
    clock += 10 * DAY;
    expect(await purgeExpired(store, RETENTION, clock)).toBe(0);
    clock += 21 * DAY;
    expect(await purgeExpired(store, RETENTION, clock)).toBe(1);
  });

  it('purges at most `limit` per run, oldest first', async () => {
    const jobs = [];
    for (let i = 0; i < 4; i++) jobs.push(await finish(await stored({ ...plannedMinimal(), episodeId: `VG-OLD-${i}` }), 'delivered'));
    clock += 31 * DAY;
    expect(await purgeExpired(store, { ...RETENTION, limit: 3 }, clock)).toBe(3);
    expect(await store.getBundle(jobs[2]!.id)).toBeUndefined();
    expect(await store.getBundle(jobs[3]!.id)).toBeDefined();
    expect(await purgeExpired(store, { ...RETENTION, limit: 3 }, clock)).toBe(1);
  });

  it('keeps the purge mark when an older copy of the job is saved afterwards', async () => {
    const job = await finish(await stored(), 'dead');
    clock += 31 * DAY;
    await purgeExpired(store, RETENTION, clock);
    await store.saveJob(job); // read before the purge
    expect((await store.getJob(job.id))?.purgedAt).toBe(new Date(clock).toISOString());
    expect(await store.getBundle(job.id)).toBeUndefined();
  });
});

describe('markDead (the dead-letter queue)', () => {
  it('marks an unfinished job dead with the reason on every unfinished target', async () => {
    const job = await stored();
    clock += MINUTE;
    expect(await markDead(store, job.id, 'the queue gave up', clock)).toBe(true);
    const dead = await store.getJob(job.id);
    expect(dead).toMatchObject({
      status: 'dead',
      updatedAt: new Date(clock).toISOString(),
      targets: { clinic: { status: 'dead', error: 'the queue gave up' } },
    });
  });

  it('leaves a finished job as it is', async () => {
    const delivered = await finish(await stored(), 'delivered');
    expect(await markDead(store, delivered.id, 'the queue gave up', clock + MINUTE)).toBe(false);
    expect(await store.getJob(delivered.id)).toEqual(delivered);
    expect(await markDead(store, 'no-such-job', 'the queue gave up', clock)).toBe(false);
  });
});

describe('replay of a purged job', () => {
  it('answers 410 with an OperationOutcome telling the caller to re-send the episode, and queues nothing', async () => {
    const service = createDeliveryService(store, queue, { now: () => clock, newId: () => `job-${++ids}` });
    const app = createApp({ allowSyntheticIds: true, delivery: () => service });
    const job = await finish(await stored(), 'dead');

    clock += 31 * DAY;
    await purgeExpired(store, RETENTION, clock);
    const r = await app.request(`/v1/jobs/${job.id}/$replay`, { method: 'POST' });
    expect(r.status).toBe(410);
    const o = (await r.json()) as { resourceType: string; issue: { code: string; details: { text: string } }[] };
    expect(o.resourceType).toBe('OperationOutcome');
    expect(o.issue[0]?.code).toBe('deleted');
    expect(o.issue[0]?.details.text).toMatch(/no longer held.*re-send the episode/);
    expect(sent).toEqual([]);
    expect((await store.getJob(job.id))?.status).toBe('dead');

    const view = (await (await app.request(`/v1/jobs/${job.id}`)).json()) as Record<string, unknown>;
    expect(view.contentPurgedAt).toBe(new Date(clock).toISOString());
    expect(view.status).toBe('dead');
  });

  it('still replays a dead job whose content is held', async () => {
    const service = createDeliveryService(store, queue, { now: () => clock });
    const job = await finish(await stored(), 'dead');
    clock += 29 * DAY;
    await purgeExpired(store, RETENTION, clock);
    expect((await service.replay(job.id, job.tenant))?.replayed).toBe(true);
    expect(sent).toEqual([{ jobId: job.id, parentKey: job.parentKey }]);
  });
});

describe('recovery and retention settings', () => {
  const base = { API_AUTH: '{"type":"none"}', BRIDGE_ENV: 'local' };

  it('has sensible defaults', () => {
    expect(loadConfig(base).sweep).toEqual({ queuedAfterMinutes: 15, retryGraceMinutes: 15, bundleRetentionDays: 30 });
    expect(loadConfig({ ...base, SWEEP_QUEUED_AFTER_MINUTES: '60', SWEEP_RETRY_GRACE_MINUTES: '5', BUNDLE_RETENTION_DAYS: '7' }).sweep).toEqual({
      queuedAfterMinutes: 60,
      retryGraceMinutes: 5,
      bundleRetentionDays: 7,
    });
  });

  it('names every bad setting at once and never repeats its value', () => {
    let error: unknown;
    try {
      loadConfig({ ...base, SWEEP_QUEUED_AFTER_MINUTES: '0', SWEEP_RETRY_GRACE_MINUTES: 'soon-ish', BUNDLE_RETENTION_DAYS: '99999' });
    } catch (e) {
      error = e;
    }
    expect(isOperationOutcomeError(error)).toBe(true);
    const issues = isOperationOutcomeError(error) ? error.outcome.issue : [];
    expect(issues.map((i) => i.expression?.[0])).toEqual(['SWEEP_QUEUED_AFTER_MINUTES', 'SWEEP_RETRY_GRACE_MINUTES', 'BUNDLE_RETENTION_DAYS']);
    const text = JSON.stringify(issues);
    expect(text).not.toContain('soon-ish');
    expect(text).not.toContain('99999');
    expect(text).toMatch(/BUNDLE_RETENTION_DAYS: must be a whole number from 1 to 3650/);
  });
});

describe('sweep with the Node queue', () => {
  const BASE = 'http://fhir.test/fhir';
  const server = setupServer(
    http.get(`${BASE}/metadata`, () => HttpResponse.json(capabilityStatement())),
    http.post(BASE, async ({ request }) => {
      const b = (await request.json()) as Bundle;
      return HttpResponse.json({
        resourceType: 'Bundle',
        type: 'transaction-response',
        entry: (b.entry ?? []).map((e: BundleEntry, i: number) => ({
          response: { status: '201 Created', location: `${e.resource?.resourceType}/id${i}/_history/1` },
        })),
      });
    }),
  );
  beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
  afterAll(() => server.close());

  it('delivers a job whose message was lost once the sweep re-queues it', async () => {
    clearCapabilityCache();
    const local = new LocalQueue({
      store,
      clientFor: () => new FhirTargetClient(BASE, { fetch: (...a) => fetch(...a), timeoutMs: 500 }),
      now: () => clock,
      random: () => 0.5,
      newId: () => `job-${++ids}`,
    });
    const job = await stored(completed());
    await local.drain();
    expect((await store.getJob(job.id))?.status).toBe('queued');

    clock += 20 * MINUTE;
    expect((await sweepStale(store, local, SWEEP, clock)).requeued).toEqual([job.id]);
    await local.drain();
    expect((await store.getJob(job.id))?.targets.clinic).toMatchObject({ status: 'delivered', written: 69 }); // 65 resources + 4 session notes
    expect((await store.getLedger(job.tenant, job.episodeKey, 'clinic'))?.contentHash).toBe(job.contentHash);
    local.close();
  });
});
