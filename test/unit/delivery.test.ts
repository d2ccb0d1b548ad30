/**
 * Delivery faults injected with msw: what a job records and how it retries, for each kind
 * of failure. Volume and exactly-once counting against a real server are in
 * test/integration/delivery.test.ts.
 */
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MASTER_DATA_TYPES } from '../../src/fhir/write-semantics.ts';
import { mapEpisode } from '../../src/index.ts';
import { clearCapabilityCache, entryKey } from '../../src/sync/apply.ts';
import { FhirTargetClient } from '../../src/sync/client.ts';
import { attemptJob, type DeliveryDeps, resetForReplay, submitEpisode } from '../../src/sync/deliver.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { capabilityStatement } from '../fixtures/capability.ts';
import { completed, plannedMinimal } from '../fixtures/examples.ts';

/** Entries of the completed example's Bundle: what one full delivery writes. */
const COMPLETED_ENTRIES = mapEpisode(completed()).entry?.length ?? 0;

const BASE = 'http://fhir.test/fhir';
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());
beforeEach(() => clearCapabilityCache());

const clock = Date.parse('2026-11-25T12:00:00Z');
let ids = 0;
function deps(store = new MemoryStore()): DeliveryDeps {
  return {
    store,
    clientFor: () => new FhirTargetClient(BASE, { fetch: (...a) => fetch(...a), timeoutMs: 200 }),
    now: () => clock,
    random: () => 0.5,
    newId: () => `job-${++ids}`,
  };
}

const metadata = (transaction = true) => http.get(`${BASE}/metadata`, () => HttpResponse.json(capabilityStatement({ transaction })));

/**
 * A transaction answer that gives each entry a stable id derived from its position, as a
 * server that did not hold the master data yet: conditional creates "201 Created",
 * conditional updates "200 OK" (`existing` lists the positions of master data it already had).
 */
const transactionOk = (b: Bundle, existing: ReadonlySet<number> = new Set()) =>
  HttpResponse.json({
    resourceType: 'Bundle',
    type: 'transaction-response',
    entry: (b.entry ?? []).map((e: BundleEntry, i: number) => ({
      response: {
        status: e.request?.method === 'POST' && !existing.has(i) ? '201 Created' : '200 OK',
        location: `${e.resource?.resourceType}/id${i}/_history/1`,
      },
    })),
  });

const mastersIn = (b: Bundle) => (b.entry ?? []).filter((e) => e.request?.method === 'POST').length;

describe('delivery attempts under faults (msw)', () => {
  it('delivers on a healthy server and records every written resource in the ledger', async () => {
    const d = deps();
    server.use(
      metadata(),
      http.post(BASE, async ({ request }) => transactionOk((await request.json()) as Bundle)),
    );
    const job = await submitEpisode(completed(), d);
    const r = await attemptJob(job.id, d);
    expect(r?.done).toBe(true);
    expect(r?.job.status).toBe('delivered');
    expect(r?.job.targets.clinic).toMatchObject({ status: 'delivered', written: COMPLETED_ENTRIES, retracted: 0 });
    // First delivery: master data created, everything else written by conditional update.
    const masters = mastersIn(mapEpisode(completed()));
    expect(masters).toBeGreaterThan(5);
    expect(r?.job.targets.clinic?.counts).toEqual({ created: masters, updated: COMPLETED_ENTRIES - masters, unchanged: 0 });
    const ledger = await d.store.getLedger('local', '974557746/VG-2026-0042', 'clinic');
    expect(ledger?.resources).toHaveLength(COMPLETED_ENTRIES);
    expect(ledger?.contentHash).toBe(job.contentHash);
  });

  it.each([
    ['429 with Retry-After in seconds', () => new HttpResponse(null, { status: 429, headers: { 'retry-after': '12' } }), 12_000],
    [
      '503 with Retry-After as HTTP date',
      () => new HttpResponse(null, { status: 503, headers: { 'retry-after': new Date(clock + 40_000).toUTCString() } }),
      40_000,
    ],
    ['429 asking for a day (capped at 5 min)', () => new HttpResponse(null, { status: 429, headers: { 'retry-after': '86400' } }), 300_000],
    ['500', () => new HttpResponse(null, { status: 500 }), 750],
    ['a dropped connection', () => HttpResponse.error(), 750],
  ])('retries after %s, then delivers', async (_name, fault, delay) => {
    const d = deps();
    let calls = 0;
    server.use(
      metadata(),
      http.post(BASE, async ({ request }) => (++calls === 1 ? fault() : transactionOk((await request.json()) as Bundle))),
    );
    const job = await submitEpisode(plannedMinimal(), d);
    const first = await attemptJob(job.id, d);
    expect(first).toMatchObject({ done: false, delayMs: delay });
    expect(first?.job.status).toBe('retrying');
    expect(first?.job.targets.clinic?.error).not.toContain('21909120095'); // no personal data in errors
    const second = await attemptJob(job.id, d);
    expect(second?.job.status).toBe('delivered');
    expect(second?.job.attempts).toBe(2);
  });

  it('treats a server that does not answer in time as a timeout and retries', async () => {
    const d = deps();
    server.use(
      metadata(),
      http.post(BASE, async () => new Promise(() => undefined)),
    );
    const job = await submitEpisode(plannedMinimal(), d);
    const r = await attemptJob(job.id, d);
    expect(r).toMatchObject({ done: false });
    expect(r?.job.targets.clinic?.error).toMatch(/no answer within/);
  });

  it("records 412 and other refusals as failed, with the server's OperationOutcome, without retrying", async () => {
    const d = deps();
    const oo = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'conflict', details: { text: 'Multiple matches' } }] };
    server.use(
      metadata(),
      http.post(BASE, () => HttpResponse.json(oo, { status: 412 })),
    );
    const job = await submitEpisode(plannedMinimal(), d);
    const r = await attemptJob(job.id, d);
    expect(r?.done).toBe(true);
    expect(r?.job.status).toBe('failed');
    expect(r?.job.targets.clinic).toMatchObject({ status: 'failed', httpStatus: 412, outcome: oo });
    // a failed job is final until replayed
    expect((await attemptJob(job.id, d))?.job.attempts).toBe(1);
  });

  it('gives up after the last attempt (dead) and can be replayed', async () => {
    const d = { ...deps(), policy: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100, retryAfterCapMs: 1000 } };
    let healthy = false;
    server.use(
      metadata(),
      http.post(BASE, async ({ request }) => (healthy ? transactionOk((await request.json()) as Bundle) : new HttpResponse(null, { status: 502 }))),
    );
    const job = await submitEpisode(plannedMinimal(), d);
    for (let i = 0; i < 3; i++) await attemptJob(job.id, d);
    expect((await d.store.getJob(job.id))?.status).toBe('dead');
    expect(await d.store.listJobs({ tenant: 'local', status: ['dead'] })).toHaveLength(1);
    healthy = true;
    await resetForReplay(job.id, d.store, clock);
    expect((await attemptJob(job.id, d))?.job.status).toBe('delivered');
  });

  it('writes nothing for an unchanged re-send', async () => {
    const d = deps();
    let posts = 0;
    server.use(
      metadata(),
      http.post(BASE, async ({ request }) => (posts++, transactionOk((await request.json()) as Bundle))),
    );
    await attemptJob((await submitEpisode(completed(), d)).id, d);
    const again = await attemptJob((await submitEpisode(completed(), d)).id, d);
    expect(posts).toBe(1);
    expect(again?.job.targets.clinic).toMatchObject({
      status: 'delivered',
      unchanged: true,
      written: 0,
      counts: { created: 0, updated: 0, unchanged: COMPLETED_ENTRIES },
    });
  });

  it('does not let an older send overwrite a newer one delivered first', async () => {
    const d = deps();
    let posts = 0;
    server.use(
      metadata(),
      http.post(BASE, async ({ request }) => (posts++, transactionOk((await request.json()) as Bundle))),
    );
    const older = await submitEpisode(completed(), d);
    const e = completed();
    e.goals[1].status = 'achieved';
    const newer = await submitEpisode(e, d);
    await attemptJob(newer.id, d);
    const r = await attemptJob(older.id, d);
    expect(posts).toBe(1);
    expect(r?.job.targets.clinic).toMatchObject({ status: 'delivered', superseded: true });
  });

  it('marks a session that left the episode entered-in-error, reading first and writing with If-Match', async () => {
    const d = deps();
    const puts: { url: string; ifMatch: string | null; status: unknown }[] = [];
    server.use(
      metadata(),
      http.post(BASE, async ({ request }) => transactionOk((await request.json()) as Bundle)),
      http.get(`${BASE}/:type/:id`, ({ params }) =>
        HttpResponse.json({
          resourceType: params.type,
          id: params.id,
          meta: { versionId: '1' },
          status: params.type === 'Goal' ? undefined : 'finished',
          lifecycleStatus: params.type === 'Goal' ? 'active' : undefined,
        }),
      ),
      http.put(`${BASE}/:type/:id`, async ({ request, params }) => {
        const body = (await request.json()) as Record<string, unknown>;
        puts.push({ url: `${params.type}/${params.id}`, ifMatch: request.headers.get('if-match'), status: body.status ?? body.lifecycleStatus });
        return HttpResponse.json({ ...body, meta: { versionId: '2' } });
      }),
    );
    await attemptJob((await submitEpisode(completed(), d)).id, d);
    const e = completed();
    e.sessions = e.sessions.filter((s: { sessionId: string }) => s.sessionId !== 'S9'); // follow-up removed
    e.goals = e.goals.slice(0, 1);
    const r = await attemptJob((await submitEpisode(e, d)).id, d);
    expect(r?.job.targets.clinic).toMatchObject({ status: 'delivered', retracted: 3 });
    expect(puts.map((p) => p.status)).toEqual(['entered-in-error', 'entered-in-error', 'entered-in-error']);
    expect(puts.every((p) => p.ifMatch === 'W/"1"')).toBe(true);
    // a third send without them does not retract them again
    puts.length = 0;
    e.goals[0].statusOn = '2026-04-01';
    await attemptJob((await submitEpisode(e, d)).id, d);
    expect(puts).toEqual([]);
  });

  it('adds to master data the server already has only what it lacks, by JSON Patch under If-Match, and re-reads after a 412', async () => {
    const d = deps();
    const bundle = mapEpisode(plannedMinimal());
    const existing = new Set((bundle.entry ?? []).flatMap((e, i) => (e.request?.method === 'POST' ? [i] : [])));
    // The server holds every master resource already, with only its identifiers and an address.
    const stored = new Map<string, Record<string, unknown>>();
    (bundle.entry ?? []).forEach((e, i) => {
      if (!existing.has(i)) return;
      const r = e.resource as { resourceType: string; identifier: unknown[] };
      stored.set(`${r.resourceType}/id${i}`, {
        resourceType: r.resourceType,
        id: `id${i}`,
        meta: { versionId: '1' },
        identifier: r.identifier.slice(0, 1),
        address: [{ city: 'Bergen' }],
      });
    });
    const patches: { path: string; ifMatch: string | null; type: string | null; ops: { op: string; path: string }[] }[] = [];
    let stale = true;
    server.use(
      metadata(),
      http.post(BASE, async ({ request }) => transactionOk((await request.json()) as Bundle, existing)),
      http.get(`${BASE}/:type/:id`, ({ params }) => HttpResponse.json(stored.get(`${params.type}/${params.id}`))),
      http.patch(`${BASE}/:type/:id`, async ({ request, params }) => {
        const key = `${params.type}/${params.id}`;
        const ops = (await request.json()) as { op: string; path: string; value: unknown }[];
        patches.push({ path: key, ifMatch: request.headers.get('if-match'), type: request.headers.get('content-type'), ops });
        const current = stored.get(key) as Record<string, unknown>;
        // The first patch finds the resource changed by someone else in between.
        if (stale) {
          stale = false;
          current.meta = { versionId: '2' };
          return HttpResponse.json({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'conflict' }] }, { status: 412 });
        }
        if (request.headers.get('if-match') !== `W/"${(current.meta as { versionId: string }).versionId}"`) return new HttpResponse(null, { status: 412 });
        for (const o of ops) current[o.path.slice(1)] = o.value;
        current.meta = { versionId: '3' };
        return HttpResponse.json(current);
      }),
    );
    const r = await attemptJob((await submitEpisode(plannedMinimal(), d)).id, d);
    expect(r?.job.status).toBe('delivered');
    expect(patches.length).toBeGreaterThan(existing.size); // one 412, then one per resource
    expect(patches[1]?.path).toBe(patches[0]?.path);
    expect(patches[0]?.ifMatch).toBe('W/"1"');
    expect(patches[1]?.ifMatch).toBe('W/"2"');
    for (const p of patches) {
      expect(p.type).toBe('application/json-patch+json');
      expect(p.ops.every((o) => o.op === 'add')).toBe(true);
    }
    // What the server had is still there.
    for (const res of stored.values()) expect(res.address).toEqual([{ city: 'Bergen' }]);
    const total = bundle.entry?.length ?? 0;
    const patchedResources = new Set(patches.slice(1).map((p) => p.path)).size;
    expect(r?.job.targets.clinic?.counts).toEqual({
      created: 0,
      updated: total - existing.size + patchedResources,
      unchanged: existing.size - patchedResources,
    });

    // Nothing left to add: a changed re-send patches nothing and leaves the master data unchanged.
    patches.length = 0;
    const e = plannedMinimal();
    e.goals = [];
    const again = await attemptJob((await submitEpisode(e, d)).id, d);
    expect(patches).toEqual([]);
    expect(again?.job.targets.clinic?.counts?.unchanged).toBeGreaterThanOrEqual(existing.size);
  });

  it.each([403, 405])('leaves existing master data as it is where PATCH is answered %i, and still delivers', async (status) => {
    const d = deps();
    const bundle = mapEpisode(plannedMinimal());
    const existing = new Set((bundle.entry ?? []).flatMap((e, i) => (e.request?.method === 'POST' ? [i] : [])));
    let patches = 0;
    server.use(
      metadata(),
      http.post(BASE, async ({ request }) => transactionOk((await request.json()) as Bundle, existing)),
      http.get(`${BASE}/:type/:id`, ({ params }) => HttpResponse.json({ resourceType: params.type, id: params.id, meta: { versionId: '1' } })),
      http.patch(`${BASE}/:type/:id`, () => (patches++, new HttpResponse(null, { status }))),
    );
    const r = await attemptJob((await submitEpisode(plannedMinimal(), d)).id, d);
    expect(patches).toBe(existing.size);
    expect(r?.job.status).toBe('delivered');
    expect(r?.job.targets.clinic?.counts).toEqual({ created: 0, updated: (bundle.entry?.length ?? 0) - existing.size, unchanged: existing.size });
  });

  it('never retracts master data that left the episode, only episode-owned resources', async () => {
    const d = deps();
    const puts: string[] = [];
    server.use(
      metadata(),
      http.post(BASE, async ({ request }) => transactionOk((await request.json()) as Bundle)),
      http.get(`${BASE}/:type/:id`, ({ params }) => HttpResponse.json({ resourceType: params.type, id: params.id, meta: { versionId: '1' }, status: 'final' })),
      http.put(`${BASE}/:type/:id`, async ({ request, params }) => {
        puts.push(String(params.type));
        return HttpResponse.json({ ...((await request.json()) as object), meta: { versionId: '2' } });
      }),
    );
    const first = completed();
    await attemptJob((await submitEpisode(first, d)).id, d);
    const ledger = await d.store.getLedger('local', '974557746/VG-2026-0042', 'clinic');
    // The ledger knows the practitioners. The next send has a new contact at the primary team
    // (their Practitioner and PractitionerRole leave the episode) and no assessments.
    expect(ledger?.resources.some((x) => x.type === 'Practitioner')).toBe(true);
    const e = completed();
    e.primaryTreatment.contact.hprNumber = '9876599';
    e.assessments = [];
    const left = new Set((mapEpisode(e).entry ?? []).map(entryKey));
    const gone = (ledger?.resources ?? []).filter((x) => !left.has(x.key));
    expect(gone.some((x) => MASTER_DATA_TYPES.has(x.type))).toBe(true);
    const r = await attemptJob((await submitEpisode(e, d)).id, d);
    expect(r?.job.targets.clinic?.retracted).toBe(gone.filter((x) => !MASTER_DATA_TYPES.has(x.type)).length);
    expect(puts.length).toBeGreaterThan(0);
    expect(puts.filter((t) => MASTER_DATA_TYPES.has(t))).toEqual([]);
  });

  it('falls back to ordered conditional writes when the server has no transactions', async () => {
    const d = deps();
    const written: string[] = [];
    let n = 0;
    server.use(
      metadata(false),
      http.post(`${BASE}/:type`, async ({ request, params }) => {
        // master data: a conditional create, its condition in If-None-Exist
        expect(request.headers.get('if-none-exist')).toMatch(/^identifier=[^|]+\|.+$/);
        const body = JSON.stringify(await request.json());
        for (const m of body.matchAll(/"reference":"([^"]+)"/g)) expect(written).toContain(m[1]);
        const id = `${params.type}/x${++n}`;
        written.push(id);
        return HttpResponse.json(
          { resourceType: params.type, id: `x${n}`, meta: { versionId: '1' } },
          { status: 201, headers: { location: `${BASE}/${id}/_history/1` } },
        );
      }),
      http.put(`${BASE}/:type`, async ({ request, params }) => {
        const body = JSON.stringify(await request.json());
        // every reference must already point at a written resource
        for (const m of body.matchAll(/"reference":"([^"]+)"/g)) expect(written).toContain(m[1]);
        const id = `${params.type}/x${++n}`;
        written.push(id);
        return HttpResponse.json({ resourceType: params.type, id: `x${n}`, meta: { versionId: '1' } }, { headers: { location: `${BASE}/${id}/_history/1` } });
      }),
      http.put(`${BASE}/Provenance/:id`, async ({ request, params }) => {
        const body = JSON.stringify(await request.json());
        for (const m of body.matchAll(/"reference":"([^"]+)"/g)) expect(written).toContain(m[1]);
        return HttpResponse.json({ resourceType: 'Provenance', id: params.id, meta: { versionId: '1' } });
      }),
    );
    const r = await attemptJob((await submitEpisode(completed(), d)).id, d);
    expect(r?.job.targets.clinic).toMatchObject({ status: 'delivered', written: COMPLETED_ENTRIES });
    expect(written).toHaveLength(COMPLETED_ENTRIES - 1); // all but the Provenance
    const masters = mastersIn(mapEpisode(completed()));
    expect(r?.job.targets.clinic?.counts).toEqual({ created: masters, updated: COMPLETED_ENTRIES - masters, unchanged: 0 });
  });
});
