/**
 * Recovery, dead letters, retention and the recorded caller inside workerd: the scheduled
 * handler (Cron Trigger) over D1, the real queue and its consumer, the per-parent Durable
 * Object, delivering to the sandbox FHIR server started beside workerd.
 */
import { createExecutionContext, createMessageBatch, createScheduledController, env, getQueueResult, SELF, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import planned from '../../examples/planned-minimal.episode.json';
import { loadConfig } from '../../src/config.ts';
import { DataCipher } from '../../src/sync/crypto.ts';
import { D1Store, PURGE_SQL } from '../../src/sync/d1-store.ts';
import { DEAD_LETTER_QUEUE, DEAD_LETTERED } from '../../src/sync/dead-letter.ts';
import { submitEpisode } from '../../src/sync/deliver.ts';
import worker from '../../src/worker.ts';

const sandbox = (JSON.parse(env.FHIR_TARGETS as string) as { clinic: { baseUrl: string } }).clinic.baseUrl;
const MINUTE = 60_000;
/** The store as the Worker builds it, under the configured (here: development) data key. */
const d1 = () => new D1Store(env.DB, new DataCipher(loadConfig(env as never).dataKeys.reveal()));
const DAY = 24 * 60 * MINUTE;

interface JobView {
  id: string;
  status: string;
  caller?: string;
  contentPurgedAt?: string;
  targets: Record<string, { status: string; written?: number; error?: string }>;
}

const view = async (id: string) => (await (await SELF.fetch(`http://bridge/v1/jobs/${id}`)).json()) as JobView;

async function settled(id: string, timeoutMs = 30_000): Promise<JobView> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const j = await view(id);
    if (!['queued', 'retrying'].includes(j.status) || Date.now() > until) return j;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Stores a job as if its queue message had been lost: recorded `agoMs` ago, never sent. */
const storedOnly = (episodeId: string, agoMs: number) =>
  submitEpisode({ ...planned, episodeId }, { store: d1(), now: () => Date.now() - agoMs, newId: () => crypto.randomUUID() });

async function runCron(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: '*/5 * * * *' }), env, ctx);
  await waitOnExecutionContext(ctx);
}

const episodesOnServer = async (episodeId: string) => {
  const r = await fetch(`${sandbox}/EpisodeOfCare?identifier=${encodeURIComponent(episodeId)}&_summary=count`);
  return ((await r.json()) as { total: number }).total;
};

describe('the scheduled sweep (Cron Trigger)', () => {
  it('re-queues a job whose queue message was lost, and the queue delivers it; a fresh job is left to its own message', async () => {
    const lost = await storedOnly('VG-SWEEP-LOST', 60 * MINUTE);
    const fresh = await storedOnly('VG-SWEEP-FRESH', MINUTE);
    // Nothing was sent for either: they stay queued however long one waits.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await view(lost.id)).status).toBe('queued');
    expect(await episodesOnServer('VG-SWEEP-LOST')).toBe(0);

    await runCron();

    const done = await settled(lost.id);
    expect(done.status).toBe('delivered');
    expect(done.targets.clinic).toMatchObject({ status: 'delivered' });
    expect(done.targets.clinic?.written).toBeGreaterThan(0);
    expect(await episodesOnServer('VG-SWEEP-LOST')).toBe(1);
    // Younger than SWEEP_QUEUED_AFTER_MINUTES (15): not touched by this sweep.
    expect((await view(fresh.id)).status).toBe('queued');
    expect(await episodesOnServer('VG-SWEEP-FRESH')).toBe(0);
  });

  it('purges the Bundle of a job finished longer ago than BUNDLE_RETENTION_DAYS; the job stays and a replay answers 410', async () => {
    const store = d1();
    const old = await storedOnly('VG-RETAIN-OLD', 40 * DAY);
    const recent = await storedOnly('VG-RETAIN-RECENT', 40 * DAY);
    const finishedAt = (agoMs: number) => new Date(Date.now() - agoMs).toISOString();
    const deadTarget = { clinic: { status: 'dead' as const, error: 'POST (transaction): HTTP 503', httpStatus: 503 } };
    await store.saveJob({ ...old, status: 'dead', attempts: 8, updatedAt: finishedAt(31 * DAY), targets: deadTarget });
    await store.saveJob({ ...recent, status: 'dead', attempts: 8, updatedAt: finishedAt(29 * DAY), targets: deadTarget });

    await runCron();

    expect(await store.getBundle(old.id)).toBeUndefined();
    expect(await store.getBundle(recent.id)).toBeDefined();
    const row = await env.DB.prepare('SELECT length(bundle) AS size, purged_at FROM jobs WHERE id = ?1')
      .bind(old.id)
      .first<{ size: number; purged_at: string }>();
    expect(row?.size).toBe(0);
    const kept = await view(old.id);
    expect(kept).toMatchObject({ status: 'dead', targets: deadTarget });
    expect(kept.contentPurgedAt).toBe(row?.purged_at);
    expect((await store.getJob(old.id))?.contentHash).toBe(old.contentHash);

    const replay = await SELF.fetch(`http://bridge/v1/jobs/${old.id}/$replay`, { method: 'POST' });
    expect(replay.status).toBe(410);
    expect(((await replay.json()) as { issue: { code: string; details: { text: string } }[] }).issue[0]).toMatchObject({
      code: 'deleted',
      details: { text: expect.stringMatching(/re-send the episode/) },
    });
    // The one still within retention replays as before.
    expect((await SELF.fetch(`http://bridge/v1/jobs/${recent.id}/$replay`, { method: 'POST' })).status).toBe(202);
    expect((await settled(recent.id)).status).toBe('delivered');
  });

  it('purges through the partial index, not a scan of every job', async () => {
    const now = new Date().toISOString();
    const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${PURGE_SQL}`).bind(now, now, 10).all<{ detail: string }>();
    const detail = plan.results.map((r) => r.detail).join('\n');
    expect(detail).toMatch(/USING INDEX jobs_unpurged/);
    expect(detail).not.toMatch(/SCAN jobs\b(?! USING)/);
  });
});

describe('the dead-letter queue', () => {
  it('marks each job it receives dead with the reason, and acknowledges the message', async () => {
    const job = await storedOnly('VG-DLQ-1', MINUTE);
    const batch = createMessageBatch(DEAD_LETTER_QUEUE, [
      { id: 'msg-1', timestamp: Date.now(), attempts: 1, body: { jobId: job.id, parentKey: job.parentKey } },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual(['msg-1']);
    expect(result.retryMessages).toEqual([]);

    const dead = await view(job.id);
    expect(dead.status).toBe('dead');
    expect(dead.targets.clinic).toMatchObject({ status: 'dead', error: DEAD_LETTERED });
    const list = (await (await SELF.fetch('http://bridge/v1/jobs?status=dead&limit=1000')).json()) as { jobs: JobView[] };
    expect(list.jobs.map((j) => j.id)).toContain(job.id);
    // And it can be replayed like any dead job.
    expect((await SELF.fetch(`http://bridge/v1/jobs/${job.id}/$replay`, { method: 'POST' })).status).toBe(202);
    expect((await settled(job.id)).status).toBe('delivered');
  });
});

describe('the caller recorded on each job', () => {
  it("is the static token's configured name, in the job view and in its own D1 column, never the token", async () => {
    const token = 'journal-token-0123456789abcdefghijklmnop';
    const authed = { ...env, API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: JSON.stringify({ 'journal-north': token }) } as typeof env;
    const request = new Request('http://bridge/v1/episodes/VG-CALLER-W1', {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ ...planned, episodeId: 'VG-CALLER-W1' }),
    }) as Parameters<typeof worker.fetch>[0];
    const r = await worker.fetch(request, authed, createExecutionContext());
    expect(r.status).toBe(202);
    const body = await r.text();
    expect(body).not.toContain(token);
    const { id, caller } = JSON.parse(body) as JobView;
    expect(caller).toBe('journal-north');

    const row = await env.DB.prepare('SELECT caller, job FROM jobs WHERE id = ?1').bind(id).first<{ caller: string; job: string }>();
    expect(row?.caller).toBe('journal-north');
    expect(row?.job).not.toContain(token);
    const plan = await env.DB.prepare('EXPLAIN QUERY PLAN SELECT seq FROM jobs WHERE caller = ?1 ORDER BY seq').bind('journal-north').all<{ detail: string }>();
    expect(plan.results.map((p) => p.detail).join('\n')).toMatch(/USING (COVERING )?INDEX jobs_by_caller/);
  });

  it('is `local` where the API is open (API_AUTH none)', async () => {
    const r = await SELF.fetch('http://bridge/v1/episodes/VG-CALLER-W2', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...planned, episodeId: 'VG-CALLER-W2' }),
    });
    expect(r.status).toBe(202);
    const { id, caller } = (await r.json()) as JobView;
    expect(caller).toBe('local');
    expect((await env.DB.prepare('SELECT caller FROM jobs WHERE id = ?1').bind(id).first<{ caller: string }>())?.caller).toBe('local');
  });
});
