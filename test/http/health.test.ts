/**
 * Delivery health inside workerd over D1: the route answers for the caller's tenant, and
 * D1Store's aggregate queries count waiting jobs and dead/failed targets from the job JSON,
 * whose servers' words are sealed (DATA_ENCRYPTION_KEYS) while target statuses stay in clear.
 */
import { env, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import active from '../../examples/active-father-no-consent.episode.json';
import completed from '../../examples/completed-mother.episode.json';
import planned from '../../examples/planned-minimal.episode.json';
import { loadConfig } from '../../src/config.ts';
import { DataCipher } from '../../src/sync/crypto.ts';
import { D1Store } from '../../src/sync/d1-store.ts';
import { createDeliveryService } from '../../src/sync/service.ts';

type Health = { tenant: string; queueDepth: number; oldestWaitingSeconds: number | null; targets: Record<string, { dead: number; failed: number }> };

const store = () => new D1Store(env.DB, new DataCipher(loadConfig(env as never).dataKeys.reveal()));

async function health(): Promise<{ res: Response; body: Health }> {
  const res = await SELF.fetch('http://bridge/v1/health/deliveries');
  return { res, body: (await res.json()) as Health };
}

/** Polls a job until it leaves the queue (the real queue delivers within about a second). */
async function settled(location: string, timeoutMs = 30_000): Promise<{ id: string; status: string }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const j = (await (await SELF.fetch(`http://bridge${location}`)).json()) as { id: string; status: string };
    if (!['queued', 'retrying'].includes(j.status) || Date.now() > until) return j;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('GET /v1/health/deliveries (workerd, D1)', () => {
  it('answers no-store for the open local tenant and counts a job that died at the clinic', async () => {
    const before = await health();
    expect(before.res.status).toBe(200);
    expect(before.res.headers.get('cache-control')).toBe('no-store');
    expect(before.body.tenant).toBe('local');

    const r = await SELF.fetch(`http://bridge/v1/episodes/${planned.episodeId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(planned),
    });
    expect(r.status).toBe(202);
    const done = await settled(r.headers.get('location') as string);
    expect(done.status).toBe('delivered');
    const s = store();
    const j = (await s.getJob(done.id))!;
    // The error is sealed in the stored JSON; the status the health query reads is not.
    await s.saveJob({ ...j, status: 'dead', targets: { clinic: { status: 'dead', error: 'POST (transaction): HTTP 503' } } });

    const after = await health();
    const dead = (h: Health) => h.targets.clinic?.dead ?? 0;
    expect(dead(after.body)).toBe(dead(before.body) + 1);
    expect(after.body.queueDepth).toBe(0);
    expect(after.body.oldestWaitingSeconds).toBeNull();
    expect(JSON.stringify(after.body)).not.toContain('HTTP 503');
  });

  it("D1Store counts one tenant's waiting jobs, the oldest's age, and dead and failed targets per target", async () => {
    const s = store();
    const t0 = Date.parse('2026-11-25T12:00:00Z');
    let clock = t0;
    // A queue that never delivers: the jobs stay queued.
    const service = createDeliveryService(s, { send: async () => {} }, { allowSyntheticIds: true, now: () => clock });
    const owner = { caller: 'health-north', tenant: 'health-north' };
    const first = await service.submit(completed, owner);
    clock += 45_000;
    const second = await service.submit(active, owner);
    await service.submit(planned, owner);
    await service.submit(planned, { caller: 'health-west', tenant: 'health-west' });

    expect(await s.deliveryHealth('health-north', t0 + 100_000)).toEqual({ queueDepth: 3, oldestWaitingSeconds: 100, targets: {} });

    const f = (await s.getJob(first.id))!;
    await s.saveJob({
      ...f,
      status: 'dead',
      targets: { clinic: { status: 'dead', error: 'connection failed' }, 'primary.993778125': { status: 'failed', error: 'HTTP 422' } },
    });
    const g = (await s.getJob(second.id))!;
    await s.saveJob({ ...g, status: 'failed', targets: { clinic: { status: 'failed', error: 'HTTP 400' } } });

    expect(await s.deliveryHealth('health-north', t0 + 100_000)).toEqual({
      queueDepth: 1,
      oldestWaitingSeconds: 55,
      targets: { clinic: { dead: 1, failed: 1 }, 'primary.993778125': { dead: 0, failed: 1 } },
    });
    expect(await s.deliveryHealth('health-west', t0 + 100_000)).toEqual({ queueDepth: 1, oldestWaitingSeconds: 55, targets: {} });
  });
});
