/**
 * GET /v1/health/deliveries through the real app over MemoryStore: queue depth, the oldest
 * waiting job's age and dead/failed jobs per target, for the caller's tenant only, never
 * cached and without personal data. D1 is covered inside workerd (test/http/health.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.ts';
import { accessFor } from '../../src/http/auth.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService } from '../../src/sync/service.ts';
import type { TargetStatus } from '../../src/sync/types.ts';
import { activeFather, completed, plannedMinimal } from '../fixtures/examples.ts';

function bridge() {
  const store = new MemoryStore();
  let clock = Date.parse('2026-11-25T12:00:00Z');
  const service = createDeliveryService(store, { send: async () => {} }, { allowSyntheticIds: true, now: () => clock });
  const app = createApp({ allowSyntheticIds: true, delivery: () => service });
  const health = async () => {
    const res = await app.request('/v1/health/deliveries');
    return { res, text: await res.text() };
  };
  /** Ends a job as `status` with its targets' statuses (what attemptJob would have stored). */
  const finish = async (id: string, status: 'dead' | 'failed' | 'delivered', targets: Record<string, TargetStatus>) => {
    const job = (await store.getJob(id))!;
    await store.saveJob({ ...job, status, targets: Object.fromEntries(Object.entries(targets).map(([n, s]) => [n, { status: s }])) });
  };
  return { store, service, health, finish, advance: (ms: number) => void (clock += ms) };
}

describe('GET /v1/health/deliveries', () => {
  it('is empty for a tenant with no jobs, and never cached', async () => {
    const { health } = bridge();
    const { res, text } = await health();
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(JSON.parse(text)).toEqual({ tenant: 'local', queueDepth: 0, oldestWaitingSeconds: null, targets: {} });
  });

  it('counts waiting jobs, ages the oldest, and counts dead and failed jobs per target', async () => {
    const b = bridge();
    const first = await b.service.submit(completed());
    b.advance(90_000);
    const second = await b.service.submit(plannedMinimal());
    const third = await b.service.submit(activeFather());
    b.advance(30_000);
    // The first waits 120 s; then it is dead at the clinic, failed at a primary team.
    expect(JSON.parse((await b.health()).text)).toMatchObject({ queueDepth: 3, oldestWaitingSeconds: 120, targets: {} });

    await b.finish(first.id, 'dead', { clinic: 'dead', 'primary.974000080': 'failed' });
    await b.finish(second.id, 'dead', { clinic: 'dead' });
    const { text } = await b.health();
    expect(JSON.parse(text)).toEqual({
      tenant: 'local',
      queueDepth: 1,
      oldestWaitingSeconds: 30,
      targets: { clinic: { dead: 2, failed: 0 }, 'primary.974000080': { dead: 0, failed: 1 } },
    });
    // Counts and target names only: no episode id, key or national id.
    for (const j of [first, second, third]) {
      expect(text).not.toContain(j.id);
      expect(text).not.toContain(j.episodeKey.split('/')[1]);
      expect(text).not.toContain(j.parentKey);
    }
    expect(text).not.toMatch(/\d{11}/);

    await b.finish(third.id, 'delivered', { clinic: 'delivered' });
    expect(JSON.parse((await b.health()).text)).toMatchObject({ queueDepth: 0, oldestWaitingSeconds: null });
  });

  it("shows only the caller's tenant", async () => {
    const b = bridge();
    const other = await b.service.submit(completed(), { caller: 'journal-west', tenant: 'journal-west' });
    await b.finish(other.id, 'failed', { clinic: 'failed' });
    await b.service.submit(plannedMinimal(), { caller: 'journal-west', tenant: 'journal-west' });
    expect(JSON.parse((await b.health()).text)).toEqual({ tenant: 'local', queueDepth: 0, oldestWaitingSeconds: null, targets: {} });
    expect(await b.store.deliveryHealth('journal-west', Date.now())).toMatchObject({ queueDepth: 1, targets: { clinic: { dead: 0, failed: 1 } } });
  });

  it('answers 501 not-supported where the store cannot tell', async () => {
    const store = new MemoryStore();
    Object.defineProperty(store, 'deliveryHealth', { value: undefined });
    const app = createApp({ allowSyntheticIds: true, delivery: () => createDeliveryService(store, { send: async () => {} }) });
    const res = await app.request('/v1/health/deliveries');
    expect(res.status).toBe(501);
    expect(((await res.json()) as { issue: { code: string }[] }).issue[0]?.code).toBe('not-supported');
  });

  it('needs read access, like the job list', () => {
    expect(accessFor('GET', '/v1/health/deliveries')).toBe('read');
    expect(accessFor('GET', '/v1/jobs')).toBe('read');
  });
});
