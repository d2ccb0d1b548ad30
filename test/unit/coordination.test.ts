/**
 * The primary target and the audit in the delivery engine, with servers played by msw: when a
 * disclosure's AuditEvent is written (only once its outcome is known), what it records, replays,
 * refusals, the dead-letter mark, and the overdue flags of `listCoordination`. Real servers are
 * in test/integration/sharing.test.ts.
 */
import type { AuditEvent, Bundle, BundleEntry, Task } from '@medplum/fhirtypes';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clearCapabilityCache } from '../../src/sync/apply.ts';
import { FhirTargetClient } from '../../src/sync/client.ts';
import { listCoordination } from '../../src/sync/coordination.ts';
import { attemptJob, type DeliveryDeps, resetForReplay, submitEpisode } from '../../src/sync/deliver.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { markDead } from '../../src/sync/sweep.ts';
import { capabilityStatement } from '../fixtures/capability.ts';
import { activeFather, completed } from '../fixtures/examples.ts';

const CLINIC = 'http://clinic.test/fhir';
const PRIMARY = 'http://primary.test/fhir';
const ORG = '993778125';
const TARGET = `primary.${ORG}`;
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const NOW = Date.parse('2026-10-01T10:00:00Z');
let ids = 0;
let audits: AuditEvent[];
let primaryTasks: Map<string, Task>;

function deps(store = new MemoryStore()): DeliveryDeps {
  return {
    store,
    clientFor: (name) => new FhirTargetClient(name === 'clinic' ? CLINIC : PRIMARY, { fetch: (...a) => fetch(...a), timeoutMs: 200 }),
    now: () => NOW,
    random: () => 0.5,
    newId: () => `job-${++ids}`,
    policy: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 10, retryAfterCapMs: 10 },
  };
}

const metadata = (base: string) => http.get(`${base}/metadata`, () => HttpResponse.json(capabilityStatement()));

/** A server that takes every transaction: entry i lands at `Type/id{i}`; Tasks are kept to be read back. */
const takesTransactions = (base: string, keep?: Map<string, Task>) => http.post(base, ({ request }) => transactionAnswer(request, keep));

async function transactionAnswer(request: { json(): Promise<unknown> }, keep?: Map<string, Task>) {
  const b = (await request.json()) as Bundle;
  return HttpResponse.json({
    resourceType: 'Bundle',
    type: 'transaction-response',
    entry: (b.entry ?? []).map((e: BundleEntry, i: number) => {
      if (e.resource?.resourceType === 'Task')
        keep?.set(`id${i}`, { ...(e.resource as Task), id: `id${i}`, meta: { versionId: '1', lastUpdated: '2026-10-01T10:00:00Z' } });
      return { response: { status: '201 Created', location: `${e.resource?.resourceType}/id${i}/_history/1` } };
    }),
  });
}

const clinicTakesAudits = () =>
  http.put(`${CLINIC}/AuditEvent/:id`, async ({ request, params }) => {
    const a = (await request.json()) as AuditEvent;
    expect(a.id).toBe(params.id);
    audits.push(a);
    return HttpResponse.json(a);
  });

const primaryReadsTasks = () =>
  http.get(`${PRIMARY}/Task/:id`, ({ params }) =>
    primaryTasks.has(params.id as string) ? HttpResponse.json(primaryTasks.get(params.id as string)) : new HttpResponse(null, { status: 404 }),
  );

beforeEach(() => {
  clearCapabilityCache();
  audits = [];
  primaryTasks = new Map();
  server.use(metadata(CLINIC), metadata(PRIMARY), takesTransactions(CLINIC), clinicTakesAudits(), primaryReadsTasks());
});

/** `endpoint` null: no primary target configured. */
const submit = (e: unknown, d: DeliveryDeps, endpoint: string | null = PRIMARY) =>
  submitEpisode(e, d, {
    allowSyntheticIds: true,
    caller: 'journal-west',
    primaryEndpoint: (org) => ((org === ORG || org === '923456783') && endpoint !== null ? endpoint : undefined),
  });

describe('auditing a disclosure to a primary treatment server', () => {
  it('waits while the primary target retries, then records the outcome once it is known', async () => {
    const d = deps();
    let primaryUp = false;
    server.use(
      http.post(PRIMARY, ({ request }) =>
        primaryUp ? transactionAnswer(request, primaryTasks) : new HttpResponse(null, { status: 503, headers: { 'retry-after': '0' } }),
      ),
    );
    const job = await submit(completed(), d);
    expect(job.targets[TARGET]).toEqual({ status: 'pending' });
    expect(job.audits).toEqual([{ key: `${job.id}|${TARGET}`, target: TARGET, kind: 'disclosure', status: 'waiting', round: 0, attempts: 0 }]);

    const first = await attemptJob(job.id, d);
    expect(first?.job.targets.clinic?.status).toBe('delivered');
    expect(first?.job.targets[TARGET]?.status).toBe('retrying');
    expect(first?.job.audits?.[0]?.status).toBe('waiting');
    expect(audits).toEqual([]); // the outcome is not known yet

    primaryUp = true;
    const second = await attemptJob(job.id, d);
    expect(second?.job.status).toBe('delivered');
    expect(second?.job.audits).toMatchObject([{ status: 'written', outcome: 'success', attempts: 1 }]);
    expect(audits).toHaveLength(1);
    const [a] = audits as [AuditEvent];
    expect(a).toMatchObject({ outcome: '0', recorded: new Date(NOW).toISOString(), type: { code: '110106' } });
    expect(a.outcomeDesc).toBeUndefined();
    expect(a.agent?.find((x) => x.network)?.network?.address).toBe(PRIMARY);
    expect(a.agent?.find((x) => x.requestor)?.who?.display).toBe('journal-west');
    // The requests read back: the Tasks the ledger knows, as the server holds them.
    expect(second?.job.targets[TARGET]?.requests?.map((q) => q.occasion)).toEqual(['guidance-ended']);
  });

  it('records a failed send as failed, and a replay that succeeds in a second AuditEvent', async () => {
    const d = deps();
    let refuse = true;
    server.use(
      http.post(PRIMARY, ({ request }) =>
        refuse
          ? HttpResponse.json({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] }, { status: 422 })
          : transactionAnswer(request, primaryTasks),
      ),
    );
    const job = await submit(completed(), d);
    const r = await attemptJob(job.id, d);
    expect(r?.job.status).toBe('failed');
    expect(r?.job.targets.clinic?.status).toBe('delivered');
    expect(r?.job.audits).toMatchObject([{ status: 'written', outcome: 'failed' }]);
    expect(audits[0]).toMatchObject({ outcome: '8' });
    expect(audits[0]?.outcomeDesc).toContain('HTTP 422');

    refuse = false;
    await resetForReplay(job.id, d.store, NOW);
    const again = await attemptJob(job.id, d);
    expect(again?.job.status).toBe('delivered');
    expect(again?.job.audits).toMatchObject([
      { round: 0, status: 'written', outcome: 'failed' },
      { round: 1, status: 'written', outcome: 'success' },
    ]);
    expect(audits.map((a) => a.outcome)).toEqual(['8', '0']);
    expect(audits[1]?.id).not.toBe(audits[0]?.id);
  });

  it('retries an audit write that failed, with its own budget, and a dead-lettered job marks it dead', async () => {
    const d = deps();
    server.use(
      takesTransactions(PRIMARY, primaryTasks),
      http.put(`${CLINIC}/AuditEvent/:id`, () => new HttpResponse(null, { status: 503 })),
    );
    const job = await submit(completed(), d);
    const r = await attemptJob(job.id, d);
    expect(r?.done).toBe(false);
    expect(r?.job.targets[TARGET]?.status).toBe('delivered');
    expect(r?.job.audits).toMatchObject([{ status: 'retrying', outcome: 'success', attempts: 1, httpStatus: 503 }]);
    expect(await markDead(d.store, job.id, 'the queue gave up', NOW)).toBe(true);
    expect((await d.store.getJob(job.id))?.audits).toMatchObject([{ status: 'dead', error: 'the queue gave up' }]);
  });
});

describe('refusals because of consent', () => {
  it("audits the father's declined consent even where no target is configured, without an endpoint", async () => {
    const d = deps();
    const job = await submit(activeFather(), d, null);
    expect(Object.keys(job.targets)).toEqual(['clinic']);
    const r = await attemptJob(job.id, d);
    expect(r?.job.audits).toMatchObject([{ kind: 'refusal', status: 'written', outcome: 'refused' }]);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ outcome: '4', outcomeDesc: 'the parent declined to share with the primary treatment team' });
    expect(audits[0]?.agent?.some((a) => a.network)).toBe(false);
  });

  it('does not audit a closed gate that refuses nothing (no target for the organisation)', async () => {
    const d = deps();
    const job = await submit(completed(), d, null);
    expect(job.audits).toBeUndefined();
    await attemptJob(job.id, d);
    expect(audits).toEqual([]);
  });
});

describe('listCoordination', () => {
  it('flags open requests past their due day as overdue, per episode, for one tenant', async () => {
    const store = new MemoryStore();
    const q = (status: string, due?: string) => ({
      occasion: 'risk-follow-up',
      identifier: `VG-1/${status}`,
      status,
      priority: 'urgent',
      ...(due ? { due } : {}),
    });
    await store.putCoordination({
      tenant: 't',
      episodeKey: '974557746/VG-1',
      target: TARGET,
      readAt: '2026-10-01T09:00:00.000Z',
      requests: [
        q('requested', '2026-10-01'),
        q('accepted', '2026-09-30'),
        q('completed', '2026-09-01'),
        q('cancelled', '2026-09-01'),
        q('in-progress'),
        q('not-found', '2026-09-01'),
      ],
    });
    const [entry] = await listCoordination(store, 't', NOW);
    expect(entry?.readAt).toBe('2026-10-01T09:00:00.000Z');
    expect(entry?.requests.map((r) => `${r.status}:${r.overdue}`)).toEqual([
      'requested:false',
      'accepted:true',
      'completed:false',
      'cancelled:false',
      'in-progress:false',
      'not-found:false',
    ]);
    expect((await listCoordination(store, 't', Date.parse('2026-10-02T00:00:00Z')))[0]?.requests[0]?.overdue).toBe(true);
    expect(await listCoordination(store, 'other', NOW)).toEqual([]);
  });
});
