/**
 * The clinic's view of its coordination requests (shared contract `sharing.md`: the bridge
 * "reads the status back and shows it to the clinic"), through the real app, auth middleware
 * and delivery service over MemoryStore, with the clinic's and the primary team's servers played
 * by msw: GET /v1/coordination after a delivery, its overdue filter and query checks, tenant
 * isolation and the read scope; the scheduled read-back (`refreshCoordination`) that brings a
 * status the primary team changed into that view without a re-send; and the audits in the job view.
 * D1 and the Worker's scheduled handler are covered inside workerd (test/http/coordination.test.ts).
 */
import type { Bundle, BundleEntry, Task } from '@medplum/fhirtypes';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createInboundAuthenticator } from '../../src/auth/inbound.ts';
import { withTenants } from '../../src/auth/tenants.ts';
import { DEFAULT_COORDINATION_REFRESH_MINUTES, loadConfig } from '../../src/config.ts';
import { isOperationOutcomeError } from '../../src/fhir/outcome.ts';
import { createApp } from '../../src/http/app.ts';
import { clearCapabilityCache } from '../../src/sync/apply.ts';
import { FhirTargetClient } from '../../src/sync/client.ts';
import { listCoordination, refreshCoordination } from '../../src/sync/coordination.ts';
import { attemptJob } from '../../src/sync/deliver.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService } from '../../src/sync/service.ts';
import type { CoordinationRequest } from '../../src/sync/types.ts';
import { capabilityStatement } from '../fixtures/capability.ts';
import { activeFather, completed } from '../fixtures/examples.ts';

const CLINIC = 'http://clinic.coordination.test/fhir';
const PRIMARY = 'http://primary.coordination.test/fhir';
/** A second primary team's server, for the refresh's per-target behaviour. */
const OTHER = 'http://other-primary.coordination.test/fhir';
const ORG = '993778125';
const TARGET = `primary.${ORG}`;
const OTHER_TARGET = 'primary.923456783';
const MINUTE = 60_000;

const NORTH = 'coordination-token-north-4Fq8Zr2Lw6Xp';
const WEST = 'coordination-token-west-2Hn5Jc8Qy4Wa';
const JWKS_URL = 'https://auth.coordination.test/jwks';
const ISSUER = 'https://auth.coordination.test';
const AUDIENCE = 'https://bridge.coordination.test';

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

let clock: number;
let tasks: Map<string, Task>;
/** `Task/{id}` reads the primary servers answered, in order. */
let reads: string[];

const metadata = (base: string) => http.get(`${base}/metadata`, () => HttpResponse.json(capabilityStatement()));

/** A server that takes every transaction (entry i at `Type/{prefix}{i}`); a primary server keeps its Tasks to be read back. */
const takesTransactions = (base: string, prefix: string, keep: boolean) =>
  http.post(base, async ({ request }) => {
    const b = (await request.json()) as Bundle;
    return HttpResponse.json({
      resourceType: 'Bundle',
      type: 'transaction-response',
      entry: (b.entry ?? []).map((e: BundleEntry, i: number) => {
        const id = `${prefix}${i}`;
        if (keep && e.resource?.resourceType === 'Task')
          tasks.set(id, { ...(e.resource as Task), id, meta: { versionId: '1', lastUpdated: new Date(clock).toISOString() } });
        return { response: { status: '201 Created', location: `${e.resource?.resourceType}/${id}/_history/1` } };
      }),
    });
  });

const readsTasks = (base: string) =>
  http.get(`${base}/Task/:id`, ({ params }) => {
    const id = params.id as string;
    reads.push(`${base === OTHER ? 'other' : 'primary'}:${id}`);
    const t = tasks.get(id);
    return t ? HttpResponse.json(t) : new HttpResponse(null, { status: 404 });
  });

beforeEach(() => {
  clearCapabilityCache();
  clock = Date.parse('2026-10-01T10:00:00Z');
  tasks = new Map();
  reads = [];
  server.use(
    metadata(CLINIC),
    metadata(PRIMARY),
    takesTransactions(CLINIC, 'c', false),
    takesTransactions(PRIMARY, 'p', true),
    http.put(`${CLINIC}/AuditEvent/:id`, async ({ request }) => HttpResponse.json(await request.json())),
    readsTasks(PRIMARY),
    readsTasks(OTHER),
  );
});

const clientFor = (name: string) => {
  const base = name === 'clinic' ? CLINIC : name === TARGET ? PRIMARY : name === OTHER_TARGET ? OTHER : undefined;
  if (!base) throw new Error(`no target configured for ${name}`);
  return new FhirTargetClient(base, { fetch: (...a) => fetch(...a), timeoutMs: 500 });
};

/** The bridge as the Worker builds it, over MemoryStore: named static tokens in two tenants, or JWTs. */
function bridge(auth: 'static' | 'jwt' = 'static') {
  const env =
    auth === 'static'
      ? {
          API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
          API_TOKENS: JSON.stringify({ 'journal-north': NORTH, 'journal-west': WEST }),
          TENANTS: JSON.stringify({ 'clinic-north': ['journal-north'] }),
        }
      : { API_AUTH: JSON.stringify({ type: 'jwt', jwksUrl: JWKS_URL, issuer: ISSUER, audience: AUDIENCE }) };
  const config = loadConfig(env);
  const store = new MemoryStore();
  const service = createDeliveryService(
    store,
    { send: async () => undefined },
    {
      allowSyntheticIds: true,
      now: () => clock,
      primaryEndpoint: (org) => (org === ORG ? PRIMARY : undefined),
    },
  );
  const app = createApp({ allowSyntheticIds: true, auth: withTenants(createInboundAuthenticator(config.apiAuth), config.tenants), delivery: () => service });
  const call = (token: string, path: string, init: RequestInit = {}) =>
    app.request(path, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
    });
  const deliver = (id: string) => attemptJob(id, { store, clientFor, now: () => clock, random: () => 0.5, newId: () => crypto.randomUUID() });
  /** PUTs the episode as `token` and delivers its job to both servers. */
  const send = async (token: string, episode: { episodeId: string }) => {
    const r = await call(token, `/v1/episodes/${episode.episodeId}`, { method: 'PUT', body: JSON.stringify(episode) });
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as { id: string };
    const done = await deliver(id);
    expect(done?.job.status).toBe('delivered');
    return id;
  };
  return { store, call, send };
}

interface Listing {
  episodes: { episode: string; target: string; readAt: string; overdue: number; requests: (CoordinationRequest & { overdue: boolean })[] }[];
}

const request = (identifier: string, status: string, extra: Partial<CoordinationRequest> = {}): CoordinationRequest => ({
  occasion: /(guidance-started|risk-follow-up|guidance-ended)/.exec(identifier)?.[1] ?? 'unknown',
  identifier,
  status,
  ...extra,
});

describe('GET /v1/coordination', () => {
  it("lists the mother's request on her primary team's server after her episode is delivered, to her clinic's tenant only, never cached", async () => {
    const b = bridge();
    const e = completed();
    await b.send(NORTH, e);

    const r = await b.call(NORTH, '/v1/coordination');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const body = (await r.json()) as Listing;
    expect(body.episodes).toHaveLength(1);
    const [entry] = body.episodes;
    expect(entry).toMatchObject({ episode: `974557746/${e.episodeId}`, target: TARGET, readAt: new Date(clock).toISOString(), overdue: 0 });
    expect(entry?.requests).toEqual([
      expect.objectContaining({
        occasion: 'guidance-ended',
        identifier: expect.stringContaining(`${e.episodeId}/`),
        status: 'requested',
        priority: 'routine',
        overdue: false,
      }),
    ]);
    // No personal data: the parent's national id, name and phone never appear.
    const text = JSON.stringify(body);
    for (const s of [e.parent.nationalId, e.parent.family, e.parent.phone].filter(Boolean)) expect(text).not.toContain(s);

    // Another tenant sees nothing of it.
    expect(await (await b.call(WEST, '/v1/coordination')).json()).toEqual({ episodes: [] });
  });

  it('lists nothing for an episode whose consent shares nothing (the father declined)', async () => {
    const b = bridge();
    await b.send(NORTH, activeFather());
    expect(await (await b.call(NORTH, '/v1/coordination')).json()).toEqual({ episodes: [] });
  });

  it('?overdue=true lists only episodes with a request past its due date and still open', async () => {
    const b = bridge();
    const readAt = '2026-10-01T09:00:00.000Z';
    await b.store.putCoordination({
      tenant: 'clinic-north',
      episodeKey: '974557746/VG-LATE',
      target: TARGET,
      readAt,
      requests: [
        request('VG-LATE/coordination-request/guidance-started', 'accepted', { priority: 'routine' }),
        request('VG-LATE/coordination-request/risk-follow-up/A1', 'requested', { priority: 'urgent', due: '2026-09-30' }),
      ],
    });
    await b.store.putCoordination({
      tenant: 'clinic-north',
      episodeKey: '974557746/VG-FINE',
      target: TARGET,
      readAt,
      // Past due, but the primary team completed it; due today is not overdue yet.
      requests: [
        request('VG-FINE/coordination-request/risk-follow-up/A1', 'completed', { due: '2026-09-20' }),
        request('VG-FINE/coordination-request/risk-follow-up/A2', 'accepted', { due: '2026-10-01' }),
      ],
    });
    // Another tenant's overdue request is never shown.
    await b.store.putCoordination({
      tenant: 'journal-west',
      episodeKey: '974557746/VG-WEST',
      target: TARGET,
      readAt,
      requests: [request('VG-WEST/coordination-request/risk-follow-up/A1', 'requested', { due: '2026-09-01' })],
    });

    const all = (await (await b.call(NORTH, '/v1/coordination')).json()) as Listing;
    expect(all.episodes.map((x) => `${x.episode}:${x.overdue}`)).toEqual(['974557746/VG-FINE:0', '974557746/VG-LATE:1']);
    expect(await (await b.call(NORTH, '/v1/coordination?overdue=false')).json()).toEqual(all);

    const late = (await (await b.call(NORTH, '/v1/coordination?overdue=true')).json()) as Listing;
    expect(late.episodes.map((x) => x.episode)).toEqual(['974557746/VG-LATE']);
    expect(late.episodes[0]?.requests.map((q) => `${q.occasion}:${q.status}:${q.overdue}`)).toEqual([
      'guidance-started:accepted:false',
      'risk-follow-up:requested:true',
    ]);
    expect(late.episodes[0]?.requests[1]).toMatchObject({ priority: 'urgent', due: '2026-09-30' });

    // The next day, the request due today is overdue too.
    clock = Date.parse('2026-10-02T00:00:01Z');
    const later = (await (await b.call(NORTH, '/v1/coordination?overdue=true')).json()) as Listing;
    expect(later.episodes.map((x) => `${x.episode}:${x.overdue}`)).toEqual(['974557746/VG-FINE:1', '974557746/VG-LATE:1']);
  });

  it.each([['?overdue=yes'], ['?overdue='], ['?overdue=TRUE'], ['?overdue=true&overdue=false']])('answers 400 naming the parameter for %s', async (query) => {
    const b = bridge();
    const r = await b.call(NORTH, `/v1/coordination${query}`);
    expect(r.status).toBe(400);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const o = (await r.json()) as { resourceType: string; issue: { code: string; expression: string[] }[] };
    expect(o.resourceType).toBe('OperationOutcome');
    expect(o.issue[0]).toMatchObject({ code: 'invalid', expression: ['/overdue'] });
  });

  it('needs a read scope: a write-only token gets 403, a read token the list', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    server.use(http.get(JWKS_URL, () => HttpResponse.json({ keys: [jwk] })));
    const token = (scope: string) =>
      new SignJWT({ scope, client_id: 'journal' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject('journal')
        .setIssuedAt()
        .setJti(crypto.randomUUID())
        .setExpirationTime('5m')
        .sign(privateKey);
    const b = bridge('jwt');
    const refused = await b.call(await token('system/*.write'), '/v1/coordination');
    expect(refused.status).toBe(403);
    expect(refused.headers.get('www-authenticate')).toContain('scope="system/*.read"');
    for (const scope of ['system/*.read', 'system/*.*']) expect((await b.call(await token(scope), '/v1/coordination')).status, scope).toBe(200);
    expect((await b.call('', '/v1/coordination')).status).toBe(401);
  });
});

describe('GET /v1/jobs/{id}: the audits of a job', () => {
  it("shows the disclosure's audit to the primary target, its outcome and that it is written, without personal data", async () => {
    const b = bridge();
    const e = completed();
    const id = await b.send(NORTH, e);
    const job = (await (await b.call(NORTH, `/v1/jobs/${id}`)).json()) as { audits: Record<string, unknown>[] };
    expect(job.audits).toEqual([
      {
        target: TARGET,
        kind: 'disclosure',
        status: 'written',
        round: 0,
        outcome: 'success',
        at: expect.any(String),
        attempts: 1,
        writtenAt: expect.any(String),
      },
    ]);
    expect(JSON.stringify(job)).not.toContain(e.parent.nationalId);
  });

  it("shows a refusal because of consent with its reason (the father's declined consent)", async () => {
    const b = bridge();
    const id = await b.send(NORTH, activeFather());
    const job = (await (await b.call(NORTH, `/v1/jobs/${id}`)).json()) as { audits: Record<string, unknown>[] };
    expect(job.audits).toEqual([
      expect.objectContaining({
        target: expect.stringMatching(/^primary\./),
        kind: 'refusal',
        status: 'written',
        outcome: 'refused',
        reason: expect.stringContaining('declined'),
      }),
    ]);
  });
});

describe('refreshCoordination: the scheduled read-back', () => {
  const deps = (store: MemoryStore) => ({ store, clientFor, now: () => clock });
  const HOUR = { olderThanMs: 60 * MINUTE };

  it('brings a status the primary team changed into GET /v1/coordination once the last read is older than the setting', async () => {
    const b = bridge();
    const e = completed();
    await b.send(NORTH, e);
    const [taskId] = [...tasks.keys()];
    reads = [];

    // The primary team accepts the request on their server.
    tasks.set(taskId!, { ...tasks.get(taskId!)!, status: 'accepted', meta: { versionId: '2', lastUpdated: '2026-10-01T10:20:00.000Z' } });

    clock += 59 * MINUTE;
    expect(await refreshCoordination(deps(b.store), HOUR)).toEqual({ refreshed: 0, failed: 0, skipped: 0 });
    expect(reads).toEqual([]);

    clock += 2 * MINUTE;
    expect(await refreshCoordination(deps(b.store), HOUR)).toEqual({ refreshed: 1, failed: 0, skipped: 0 });
    expect(reads).toEqual([`primary:${taskId}`]);
    const body = (await (await b.call(NORTH, '/v1/coordination')).json()) as Listing;
    expect(body.episodes[0]?.readAt).toBe(new Date(clock).toISOString());
    expect(body.episodes[0]?.requests).toEqual([
      expect.objectContaining({ occasion: 'guidance-ended', status: 'accepted', lastModified: '2026-10-01T10:20:00.000Z' }),
    ]);

    // Completed there: read once more, then never again (nothing left open).
    tasks.set(taskId!, { ...tasks.get(taskId!)!, status: 'completed' });
    clock += 61 * MINUTE;
    expect((await refreshCoordination(deps(b.store), HOUR)).refreshed).toBe(1);
    clock += 24 * 60 * MINUTE;
    reads = [];
    expect(await refreshCoordination(deps(b.store), HOUR)).toEqual({ refreshed: 0, failed: 0, skipped: 0 });
    expect(reads).toEqual([]);
    expect((await listCoordination(b.store, 'clinic-north', clock))[0]?.requests.map((q) => q.status)).toEqual(['completed']);
  });

  /** An episode delivered earlier to `target`: its ledger names its Tasks, its read-back is stored. */
  async function seeded(store: MemoryStore, n: number, target = TARGET, statuses: string[] = ['requested'], readAt = '2026-10-01T07:00:00.000Z') {
    const episodeKey = `974557746/VG-${n}`;
    const requests = statuses.map((status, k) =>
      request(`VG-${n}/coordination-request/risk-follow-up/A${k}`, status, { priority: 'urgent', due: '2026-10-02' }),
    );
    await store.putLedger({
      tenant: 'clinic-north',
      episodeKey,
      target,
      seq: n,
      contentHash: 'h',
      mappingVersion: '1',
      deliveredAt: readAt,
      resources: requests.map((q, k) => ({
        key: `Task?identifier=https://imh-bridge.example.no/fhir/sid/974557746/coordination-request|${q.identifier}`,
        type: 'Task',
        id: `t${n}-${k}`,
      })),
    });
    for (const [k, q] of requests.entries()) {
      tasks.set(`t${n}-${k}`, {
        resourceType: 'Task',
        id: `t${n}-${k}`,
        status: 'accepted',
        intent: 'order',
        priority: 'urgent',
        code: { coding: [{ system: 'https://imh-bridge.example.no/fhir/CodeSystem/coordination-request', code: q.occasion }] },
        restriction: { period: { end: '2026-10-02' } },
      });
    }
    await store.putCoordination({ tenant: 'clinic-north', episodeKey, target, readAt, requests });
    return episodeKey;
  }

  it('reads only the open requests of an episode, keeping what was last read of the final ones', async () => {
    const store = new MemoryStore();
    const key = await seeded(store, 1, TARGET, ['requested', 'completed', 'on-hold']);
    expect(await refreshCoordination(deps(store), HOUR)).toEqual({ refreshed: 1, failed: 0, skipped: 0 });
    expect(reads.sort()).toEqual(['primary:t1-0', 'primary:t1-2']);
    const [entry] = await listCoordination(store, 'clinic-north', clock);
    expect(entry?.episodeKey).toBe(key);
    expect(entry?.requests.map((q) => q.status)).toEqual(['accepted', 'completed', 'accepted']);
  });

  it('reads at most `limit` episodes per run, longest unread first; the rest wait for the next run', async () => {
    const store = new MemoryStore();
    for (let n = 1; n <= 5; n++) await seeded(store, n, TARGET, ['requested'], `2026-10-01T0${n}:00:00.000Z`);
    expect(await refreshCoordination(deps(store), { ...HOUR, limit: 3 })).toEqual({ refreshed: 3, failed: 0, skipped: 0 });
    expect(reads).toEqual(['primary:t1-0', 'primary:t2-0', 'primary:t3-0']);
    reads = [];
    expect(await refreshCoordination(deps(store), { ...HOUR, limit: 3 })).toEqual({ refreshed: 2, failed: 0, skipped: 0 });
    expect(reads).toEqual(['primary:t4-0', 'primary:t5-0']);
  });

  it('leaves the read-back of a server that fails as it was, asks it once per run, and still reads the other targets', async () => {
    const store = new MemoryStore();
    server.use(http.get(`${PRIMARY}/Task/:id`, () => new HttpResponse(null, { status: 503 })));
    await seeded(store, 1, TARGET, ['requested'], '2026-10-01T01:00:00.000Z');
    await seeded(store, 2, TARGET, ['requested'], '2026-10-01T02:00:00.000Z');
    await seeded(store, 3, OTHER_TARGET, ['requested'], '2026-10-01T03:00:00.000Z');
    // A target no longer configured is skipped, not an error.
    await seeded(store, 4, 'primary.000000000', ['requested'], '2026-10-01T04:00:00.000Z');
    expect(await refreshCoordination(deps(store), HOUR)).toEqual({ refreshed: 1, failed: 1, skipped: 2 });
    expect(reads).toEqual(['other:t3-0']);
    const listed = await listCoordination(store, 'clinic-north', clock);
    expect(listed.map((x) => `${x.episodeKey}:${x.readAt}:${x.requests[0]?.status}`)).toEqual([
      '974557746/VG-1:2026-10-01T01:00:00.000Z:requested',
      '974557746/VG-2:2026-10-01T02:00:00.000Z:requested',
      `974557746/VG-3:${new Date(clock).toISOString()}:accepted`,
      '974557746/VG-4:2026-10-01T04:00:00.000Z:requested',
    ]);
  });

  it('never replaces a newer read-back a delivery stored while it was reading', async () => {
    const store = new MemoryStore();
    const key = await seeded(store, 1);
    const newer = '2026-10-01T09:59:59.000Z';
    server.use(
      http.get(`${PRIMARY}/Task/:id`, async () => {
        // A delivery of the episode reads and stores its requests meanwhile.
        await store.putCoordination({
          tenant: 'clinic-north',
          episodeKey: key,
          target: TARGET,
          readAt: newer,
          requests: [request('VG-1/coordination-request/risk-follow-up/A0', 'in-progress')],
        });
        return HttpResponse.json({ ...tasks.get('t1-0'), status: 'accepted' });
      }),
    );
    await refreshCoordination(deps(store), HOUR);
    const [entry] = await listCoordination(store, 'clinic-north', clock);
    expect(entry).toMatchObject({ readAt: newer, requests: [expect.objectContaining({ status: 'in-progress' })] });
  });
});

describe('COORDINATION_REFRESH_MINUTES', () => {
  const base = { API_AUTH: '{"type":"none"}', BRIDGE_ENV: 'local' };
  it('defaults to an hour and takes a whole number of minutes', () => {
    expect(DEFAULT_COORDINATION_REFRESH_MINUTES).toBe(60);
    expect(loadConfig(base).coordinationRefreshMinutes).toBe(60);
    expect(loadConfig({ ...base, COORDINATION_REFRESH_MINUTES: '15' }).coordinationRefreshMinutes).toBe(15);
  });

  it.each([['0'], ['-5'], ['1.5'], ['hourly'], ['10081']])('refuses %s, naming the setting', (value) => {
    try {
      loadConfig({ ...base, COORDINATION_REFRESH_MINUTES: value });
      expect.unreachable();
    } catch (e) {
      expect(isOperationOutcomeError(e)).toBe(true);
      if (isOperationOutcomeError(e)) expect(JSON.stringify(e.outcome)).toMatch(/COORDINATION_REFRESH_MINUTES.*whole number from 1 to 10080/);
    }
  });
});
