/**
 * Exactly-once delivery under faults, against the real sandbox FHIR server behind a flaky
 * proxy: hundreds of synthetic episodes (shared parents, infants without national ids),
 * random 429/503/500, timeouts, resets and responses lost after the server applied the
 * transaction. Once the queue is drained the server holds exactly the expected resources.
 */
import type { Bundle } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { clearCapabilityCache, entryKey } from '../../src/sync/apply.ts';
import { FhirTargetClient } from '../../src/sync/client.ts';
import { type DeliveryDeps, submitEpisode } from '../../src/sync/deliver.ts';
import { LocalQueue } from '../../src/sync/local-queue.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { activeFather, completed, plannedMinimal } from '../fixtures/examples.ts';
import { type FlakyProxy, startFlakyProxy } from '../fixtures/flaky-proxy.ts';
import { syntheticNationalId } from '../fixtures/generate.ts';
import { clinicBundle, isConsentRefusal } from './engine-bundles.ts';

const EPISODES = 210;

/**
 * Synthetic episodes from the three examples. Parents are shared by pairs of episodes
 * (a parent's second course), every third episode has a newborn without national id.
 */
function episodes(): unknown[] {
  const bases = [completed, activeFather, plannedMinimal];
  return Array.from({ length: EPISODES }, (_, i) => {
    const e = bases[i % 3]!();
    const parentNo = Math.floor(i / 2);
    e.episodeId = `VG-VOL-${i}`;
    e.parent.nationalId = syntheticNationalId(e.parent.birthDate, parentNo);
    e.infants.forEach((inf: { nationalId?: string; birthDate: string }, k: number) => {
      if (inf.nationalId) inf.nationalId = syntheticNationalId(inf.birthDate, 500 + parentNo * 3 + k);
    });
    if (e.consent) e.consent.consentId = `CN-VOL-${i}`;
    return e;
  });
}

/** What the server must hold: one resource per distinct conditional identity across all bundles. */
function expectedCounts(bundles: Bundle[]): Record<string, number> {
  const seen = new Map<string, string>();
  for (const b of bundles) for (const e of b.entry ?? []) seen.set(entryKey(e), e.resource?.resourceType as string);
  const out: Record<string, number> = {};
  for (const type of seen.values()) out[type] = (out[type] ?? 0) + 1;
  return out;
}

async function countsBySearch(baseUrl: string, types: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of types) {
    const r = await fetch(`${baseUrl}/${t}?_summary=count`);
    out[t] = ((await r.json()) as { total: number }).total;
  }
  return out;
}

let sandbox: Sandbox;
let proxy: FlakyProxy;
let writes = 0;

beforeAll(async () => {
  clearCapabilityCache();
  sandbox = await startSandbox({
    port: 0,
    // AuditEvents of consent refusals are written on every send: counted apart.
    onRequest: (method, url) => {
      if (method !== 'GET' && !url.startsWith('/fhir/AuditEvent')) writes++;
    },
  });
  proxy = await startFlakyProxy({ target: sandbox.baseUrl });
});
afterAll(async () => {
  await proxy?.close();
  await sandbox?.close();
});

function deps(store: MemoryStore, active: Map<string, number>, maxPerParent: { value: number }): DeliveryDeps {
  const client = new FhirTargetClient(proxy.baseUrl, { fetch: (...a) => fetch(...a), timeoutMs: 2000 }); // a loaded machine's sandbox can take longer than a tight timeout; injected timeouts still fire
  // Watch attempts per parent: getJob starts an attempt, saveJob ends it.
  const watched: MemoryStore = Object.create(store);
  watched.getJob = async (id) => {
    const j = await store.getJob(id);
    if (j && j.status !== 'delivered') {
      const n = (active.get(j.parentKey) ?? 0) + 1;
      active.set(j.parentKey, n);
      maxPerParent.value = Math.max(maxPerParent.value, n);
    }
    return j;
  };
  watched.saveJob = async (job) => {
    active.set(job.parentKey, (active.get(job.parentKey) ?? 1) - 1);
    return store.saveJob(job);
  };
  let seed = 7;
  return {
    store: watched,
    clientFor: () => client,
    now: Date.now,
    random: () => (seed = (seed * 48271) % 2147483647) / 2147483647,
    newId: () => crypto.randomUUID(),
    policy: { maxAttempts: 40, baseDelayMs: 20, maxDelayMs: 200, retryAfterCapMs: 2000 },
  };
}

describe(`${EPISODES} episodes through a flaky network`, () => {
  it('end up on the server exactly once; a second full re-send writes nothing', async () => {
    const inputs = episodes();
    const expected = expectedCounts(inputs.map((e) => clinicBundle(e)));
    // The fathers' declined consents: each send is a refusal, audited once on the clinic's server.
    const refusals = inputs.filter((e) => isConsentRefusal(e)).length;
    expect(refusals).toBe(EPISODES / 3);
    expected.AuditEvent = refusals;
    const store = new MemoryStore();
    const active = new Map<string, number>();
    const maxPerParent = { value: 0 };
    const d = deps(store, active, maxPerParent);
    // Retry-After of 1–2 s is honoured but scaled down: the test checks what was asked for.
    const queue = new LocalQueue(d, { delayScale: 0.01 });

    proxy.setRandom({
      seed: 2026,
      rates: { '429': 0.06, '503': 0.05, '500': 0.05, timeout: 0.03, reset: 0.04, 'apply-then-drop': 0.05 },
      retryAfter: '1',
    });
    const jobs = [];
    for (const e of inputs) {
      const job = await submitEpisode(e, d);
      jobs.push(job);
      queue.enqueue(job.id, job.parentKey);
    }
    await queue.drain();

    // Faults really happened, of every kind.
    for (const kind of ['429', '503', '500', 'timeout', 'reset', 'apply-then-drop'] as const) expect(proxy.counts[kind]).toBeGreaterThan(0);
    expect(queue.requestedDelays).toContain(1000); // Retry-After: 1 honoured
    expect(maxPerParent.value).toBe(1); // never two attempts for one parent at once

    const statuses = await Promise.all(jobs.map(async (j) => (await store.getJob(j.id))?.status));
    expect(statuses.filter((s) => s !== 'delivered')).toEqual([]);

    const counts = await countsBySearch(sandbox.baseUrl, Object.keys(expected));
    expect(counts).toEqual(expected);
    expect(sandbox.repo.countByType()).toEqual(expected);

    // Everything again, through the same (still flaky) network: nothing is written.
    writes = 0;
    const again = [];
    for (const e of inputs) {
      const job = await submitEpisode(e, d);
      again.push(job);
      queue.enqueue(job.id, job.parentKey);
    }
    await queue.drain();
    proxy.setRandom(undefined);
    const second = await Promise.all(again.map(async (j) => (await store.getJob(j.id))?.targets.clinic));
    expect(second.every((t) => t?.status === 'delivered' && t.unchanged === true && t.written === 0)).toBe(true);
    expect(writes).toBe(0);
    expect(sandbox.repo.countByType()).toEqual({ ...expected, AuditEvent: 2 * refusals });
  }, 300_000);

  it("a 412 is recorded as failed with the server's words, and a replay after the cause is gone delivers", async () => {
    const store = new MemoryStore();
    const d = deps(store, new Map(), { value: 0 });
    const queue = new LocalQueue(d, { delayScale: 0.01 });
    proxy.setApplies((req) => req.method === 'POST');
    proxy.enqueue('412');
    const e = completed();
    e.episodeId = 'VG-412';
    e.consent.consentId = 'CN-412';
    const job = await submitEpisode(e, d);
    queue.enqueue(job.id, job.parentKey);
    await queue.drain();
    const failed = await store.getJob(job.id);
    expect(failed?.status).toBe('failed');
    expect(failed?.targets.clinic?.httpStatus).toBe(412);
    expect(failed?.targets.clinic?.outcome?.issue[0]?.details?.text).toMatch(/Precondition Failed/);
    expect(failed?.attempts).toBe(1);

    const { resetForReplay } = await import('../../src/sync/deliver.ts');
    await resetForReplay(job.id, store, Date.now());
    queue.enqueue(job.id, job.parentKey);
    await queue.drain();
    expect((await store.getJob(job.id))?.status).toBe('delivered');
    proxy.setApplies(undefined);
  });
});

describe('a server without transactions', () => {
  it('gets ordered conditional writes with the same guarantees', async () => {
    clearCapabilityCache();
    const plain = await startSandbox({ port: 0, transactions: false });
    try {
      const store = new MemoryStore();
      const client = new FhirTargetClient(plain.baseUrl, { fetch: (...a) => fetch(...a), timeoutMs: 2000 });
      const d: DeliveryDeps = { store, clientFor: () => client, now: Date.now, random: Math.random, newId: () => crypto.randomUUID() };
      const queue = new LocalQueue(d);
      const inputs = [completed(), activeFather(), plannedMinimal()];
      for (const e of inputs) {
        const job = await submitEpisode(e, d);
        queue.enqueue(job.id, job.parentKey);
      }
      await queue.drain();
      const expected = expectedCounts(inputs.map((e) => clinicBundle(e)));
      expect(plain.repo.countByType()).toEqual({ ...expected, AuditEvent: 1 }); // the father's refusal
      const jobs = await store.listJobs({ tenant: 'local' });
      expect(jobs.map((j) => j.status)).toEqual(['delivered', 'delivered', 'delivered']);

      // References point at real server ids.
      const enc = (await (await fetch(`${plain.baseUrl}/Encounter?_count=1`)).json()) as { entry: { resource: { subject: { reference: string } } }[] };
      expect(enc.entry[0]?.resource.subject.reference).toMatch(/^Patient\/[0-9a-f-]+$/);

      // A changed send updates in place; removed sessions are withdrawn.
      const e = completed();
      e.sessions = e.sessions.filter((s: { sessionId: string }) => s.sessionId !== 'S9');
      const job = await submitEpisode(e, d);
      queue.enqueue(job.id, job.parentKey);
      await queue.drain();
      expect((await store.getJob(job.id))?.targets.clinic).toMatchObject({ status: 'delivered', retracted: 2 });
      expect(plain.repo.countByType()).toEqual({ ...expected, AuditEvent: 1 });
    } finally {
      await plain.close();
      clearCapabilityCache();
    }
  });
});
