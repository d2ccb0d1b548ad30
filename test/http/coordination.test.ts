/**
 * GET /v1/coordination and the scheduled read-back inside workerd: after a PUT of the mother's
 * episode (her primary team's server is the second sandbox, FHIR_TARGETS.primary) the route lists
 * her request from D1; once the primary team acts on it and the last read is older than
 * COORDINATION_REFRESH_MINUTES, the Cron Trigger reads it back (D1's query of open requests
 * included) and the route shows the team's status without the episode being sent again.
 */
import { createExecutionContext, createScheduledController, env, SELF, waitOnExecutionContext } from 'cloudflare:test';
import type { Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import completed from '../../../shared/contract/examples/completed-mother.episode.json';
import { loadConfig } from '../../src/config.ts';
import { DataCipher } from '../../src/sync/crypto.ts';
import { D1Store } from '../../src/sync/d1-store.ts';
import worker from '../../src/worker.ts';

const primary = (JSON.parse(env.FHIR_TARGETS as string) as { primary: Record<string, { baseUrl: string }> }).primary['993778125']?.baseUrl as string;

interface Listing {
  episodes: {
    episode: string;
    target: string;
    readAt: string;
    overdue: number;
    requests: { occasion: string; identifier: string; status: string; priority?: string; overdue: boolean }[];
  }[];
}

async function settled(location: string, timeoutMs = 30_000): Promise<{ status: string }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const j = (await (await SELF.fetch(`http://bridge${location}`)).json()) as { status: string };
    if (!['queued', 'retrying'].includes(j.status) || Date.now() > until) return j;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const listing = async (query = '') => {
  const r = await SELF.fetch(`http://bridge/v1/coordination${query}`);
  expect(r.status).toBe(200);
  expect(r.headers.get('cache-control')).toBe('no-store');
  return (await r.json()) as Listing;
};

async function runCron(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: '*/5 * * * *' }), env, ctx);
  await waitOnExecutionContext(ctx);
}

describe('GET /v1/coordination (inside workerd)', () => {
  it("lists the mother's request after her episode is delivered, and the status her primary team gives it once the schedule reads it back", async () => {
    const e = structuredClone(completed);
    e.episodeId = 'VG-2026-COORDINATION';
    e.consent = { ...e.consent, consentId: 'CN-2026-COORDINATION', expiresOn: '2099-01-01' };
    const r = await SELF.fetch(`http://bridge/v1/episodes/${e.episodeId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(e),
    });
    expect(r.status).toBe(202);
    expect((await settled(r.headers.get('location') as string)).status).toBe('delivered');

    const key = `974557746/${e.episodeId}`;
    const mine = (l: Listing) => l.episodes.find((x) => x.episode === key);
    const first = mine(await listing());
    expect(first).toMatchObject({ target: 'primary.993778125', overdue: 0 });
    expect(first?.requests).toEqual([expect.objectContaining({ occasion: 'guidance-ended', status: 'requested', priority: 'routine', overdue: false })]);
    expect(mine(await listing('?overdue=true'))).toBeUndefined();
    expect((await SELF.fetch('http://bridge/v1/coordination?overdue=soon')).status).toBe(400);

    // The primary team accepts the request on their server.
    const found = (await (await fetch(`${primary}/Task?identifier=${encodeURIComponent(first!.requests[0]!.identifier)}`)).json()) as {
      entry?: { resource: Task }[];
    };
    const task = found.entry?.[0]?.resource as Task;
    expect(task?.status).toBe('requested');
    const put = await fetch(`${primary}/Task/${task.id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ ...task, status: 'accepted' }),
    });
    expect(put.ok).toBe(true);

    // A read younger than COORDINATION_REFRESH_MINUTES (60) is left alone.
    await runCron();
    expect(mine(await listing())?.requests[0]?.status).toBe('requested');

    // Two hours later (as far as the stored read-back knows), the schedule reads it again.
    const twoHoursAgo = new Date(Date.now() - 120 * 60_000).toISOString();
    await env.DB.prepare('UPDATE coordination SET read_at = ?1 WHERE episode_key = ?2').bind(twoHoursAgo, key).run();
    await runCron();
    const after = mine(await listing());
    expect(after?.requests[0]?.status).toBe('accepted');
    expect(after!.readAt > twoHoursAgo).toBe(true);
  });
});

describe('D1: read-backs due for the schedule', () => {
  it('are those read before the cut-off with a request still open, of every tenant, longest unread first, bounded', async () => {
    const store = new D1Store(env.DB, new DataCipher(loadConfig(env as never).dataKeys.reveal()));
    const q = (status: string) => ({ occasion: 'risk-follow-up', identifier: `X/coordination-request/risk-follow-up/${status}`, status });
    const put = (tenant: string, id: string, readAt: string, statuses: string[]) =>
      store.putCoordination({ tenant, episodeKey: `974557746/VG-DUE-${id}`, target: 'primary.993778125', readAt, requests: statuses.map(q) });
    await put('north', 'OPEN-OLD', '2026-01-01T01:00:00.000Z', ['completed', 'on-hold']);
    await put('west', 'OPEN-OLDER', '2026-01-01T00:00:00.000Z', ['requested']);
    await put('north', 'FINAL', '2026-01-01T00:30:00.000Z', ['completed', 'cancelled', 'rejected', 'failed', 'entered-in-error', 'not-found']);
    await put('north', 'FRESH', '2026-01-02T00:00:00.000Z', ['requested']);
    const due = await store.listCoordinationDue({ readBefore: '2026-01-01T12:00:00.000Z', limit: 10 });
    expect(due.filter((r) => r.episodeKey.includes('VG-DUE-')).map((r) => `${r.tenant}:${r.episodeKey.split('VG-DUE-')[1]}`)).toEqual([
      'west:OPEN-OLDER',
      'north:OPEN-OLD',
    ]);
    expect(await store.listCoordinationDue({ readBefore: '2026-01-01T12:00:00.000Z', limit: 1 })).toHaveLength(1);

    // Replaced only while the stored read is the one read.
    const [older] = due;
    await store.replaceCoordination({ ...older!, readAt: '2026-01-01T13:00:00.000Z', requests: [q('accepted')] }, 'not the stored read');
    await store.replaceCoordination({ ...older!, readAt: '2026-01-01T13:00:00.000Z', requests: [q('in-progress')] }, older!.readAt);
    expect((await store.listCoordination('west')).find((r) => r.episodeKey === older!.episodeKey)?.requests.map((x) => x.status)).toEqual(['in-progress']);
  });
});
