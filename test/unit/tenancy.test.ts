/**
 * Tenant isolation through the real app, auth middleware and delivery service over
 * MemoryStore, with named static tokens: another tenant gets exactly the 404 of a job that
 * does not exist on every job route, lists show one tenant, re-sends and imports stay in the
 * sender's tenant, and the ledger is per tenant. The rate limit of the write routes answers
 * 429 per tenant. D1 is covered inside workerd (test/http/tenancy.test.ts).
 */
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createInboundAuthenticator } from '../../src/auth/inbound.ts';
import { withTenants } from '../../src/auth/tenants.ts';
import { loadConfig } from '../../src/config.ts';
import { createApp } from '../../src/http/app.ts';
import { clearCapabilityCache } from '../../src/sync/apply.ts';
import { FhirTargetClient } from '../../src/sync/client.ts';
import { attemptJob } from '../../src/sync/deliver.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService, type WriteLimiter } from '../../src/sync/service.ts';
import { capabilityStatement } from '../fixtures/capability.ts';
import { completed, plannedMinimal } from '../fixtures/examples.ts';

const NORTH_JOURNAL = 'tenant-token-north-journal-4Fq8Zr2Lw6Xp';
const NORTH_ENGINE = 'tenant-token-north-engine-9Tg3Vb7Km1Sd';
const WEST = 'tenant-token-west-journal-2Hn5Jc8Qy4Wa';
const NAMED_LOCAL = 'tenant-token-named-local-7Re1Uo6Ix3Mz';

const ENV = {
  API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
  API_TOKENS: JSON.stringify({ 'journal-north': NORTH_JOURNAL, 'engine-north': NORTH_ENGINE, 'journal-west': WEST, local: NAMED_LOCAL }),
  TENANTS: JSON.stringify({ 'clinic-north': ['journal-north', 'engine-north'] }),
};

const BASE = 'http://fhir.tenancy.test/fhir';
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());
beforeEach(() => clearCapabilityCache());

function bridge(limiter?: WriteLimiter) {
  const config = loadConfig(ENV);
  const store = new MemoryStore();
  const sent: string[] = [];
  const service = createDeliveryService(store, { send: async (m) => void sent.push(...m.map((x) => x.jobId)) }, limiter ? { limiter } : {});
  const app = createApp({ allowSyntheticIds: true, auth: withTenants(createInboundAuthenticator(config.apiAuth), config.tenants), delivery: () => service });
  const call = (token: string, path: string, init: RequestInit = {}) =>
    app.request(path, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
    });
  const put = (token: string, episode: { episodeId: string }) =>
    call(token, `/v1/episodes/${episode.episodeId}`, { method: 'PUT', body: JSON.stringify(episode) });
  const deliver = (id: string) =>
    attemptJob(id, {
      store,
      clientFor: () => new FhirTargetClient(BASE, { fetch: (...a) => fetch(...a), timeoutMs: 2000 }),
      now: Date.now,
      random: () => 0.5,
      newId: () => crypto.randomUUID(),
    });
  return { store, sent, call, put, deliver };
}

/** A FHIR server that accepts every transaction as if it held nothing yet; counts them. */
function fhirServer() {
  const seen = { transactions: 0 };
  server.use(
    http.get(`${BASE}/metadata`, () => HttpResponse.json(capabilityStatement())),
    http.post(BASE, async ({ request }) => {
      seen.transactions++;
      const b = (await request.json()) as Bundle;
      return HttpResponse.json({
        resourceType: 'Bundle',
        type: 'transaction-response',
        // Master data created (POST), everything else updated: nothing for the bridge to read back.
        entry: (b.entry ?? []).map((e: BundleEntry, i: number) => ({
          response: { status: e.request?.method === 'POST' ? '201 Created' : '200 OK', location: `${e.resource?.resourceType}/id${i}/_history/1` },
        })),
      });
    }),
  );
  return seen;
}

const idOf = async (r: Response) => ((await r.json()) as { id: string }).id;

describe('tenant isolation on every job route (MemoryStore)', () => {
  it('answers another tenant 404 exactly as for a job that does not exist: read, replay; the list shows its own jobs only', async () => {
    const b = bridge();
    const r = await b.put(NORTH_JOURNAL, { ...plannedMinimal(), episodeId: 'VG-TEN-1' });
    expect(r.status).toBe(202);
    const id = await idOf(r);
    // Dead, so that its owner could replay it.
    const stored = (await b.store.getJob(id))!;
    expect(stored.tenant).toBe('clinic-north');
    await b.store.saveJob({ ...stored, status: 'dead', targets: { clinic: { status: 'dead', error: 'POST (transaction): HTTP 503' } } });

    const missing = await b.call(WEST, `/v1/jobs/${crypto.randomUUID()}`);
    const missingBody = await missing.text();
    expect(missing.status).toBe(404);

    const read = await b.call(WEST, `/v1/jobs/${id}`);
    expect(read.status).toBe(404);
    expect(await read.text()).toBe(missingBody);
    expect(read.headers.get('content-type')).toBe(missing.headers.get('content-type'));

    const replay = await b.call(WEST, `/v1/jobs/${id}/$replay`, { method: 'POST' });
    expect(replay.status).toBe(404);
    const replayMissing = await b.call(WEST, `/v1/jobs/${crypto.randomUUID()}/$replay`, { method: 'POST' });
    expect(await replay.text()).toBe(await replayMissing.text());
    expect((await b.store.getJob(id))?.status).toBe('dead');
    expect(b.sent).toEqual([id]); // only the original submission was queued

    const westList = (await (await b.call(WEST, '/v1/jobs')).json()) as { jobs: { id: string }[] };
    expect(westList.jobs).toEqual([]);
    const westDead = (await (await b.call(WEST, '/v1/jobs?status=dead')).json()) as { jobs: { id: string }[] };
    expect(westDead.jobs).toEqual([]);

    // The other caller of the same tenant sees and replays it.
    expect((await b.call(NORTH_ENGINE, `/v1/jobs/${id}`)).status).toBe(200);
    const northList = (await (await b.call(NORTH_ENGINE, '/v1/jobs?status=dead')).json()) as { jobs: { id: string }[] };
    expect(northList.jobs.map((j) => j.id)).toEqual([id]);
    expect((await b.call(NORTH_ENGINE, `/v1/jobs/${id}/$replay`, { method: 'POST' })).status).toBe(202);
    expect(b.sent).toEqual([id, id]);
  });

  it("keeps a re-send and an import in the sender's tenant: the same episode id in another tenant is another job", async () => {
    const b = bridge();
    const north = await idOf(await b.put(NORTH_JOURNAL, { ...plannedMinimal(), episodeId: 'VG-TEN-2' }));
    const west = await idOf(await b.put(WEST, { ...plannedMinimal(), episodeId: 'VG-TEN-2' }));
    expect(west).not.toBe(north);
    expect((await b.store.getJob(north))?.tenant).toBe('clinic-north');
    expect((await b.store.getJob(west))?.tenant).toBe('journal-west');

    const body = [3, 4].map((i) => JSON.stringify({ ...plannedMinimal(), episodeId: `VG-TEN-IMP-${i}` })).join('\n');
    const imp = await b.call(WEST, '/v1/episodes/$import', { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
    const lines = (await imp.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { jobId: string });
    for (const l of lines) expect((await b.store.getJob(l.jobId))?.tenant).toBe('journal-west');

    const westJobs = ((await (await b.call(WEST, '/v1/jobs')).json()) as { jobs: { id: string }[] }).jobs.map((j) => j.id);
    expect(westJobs).toEqual([west, ...lines.map((l) => l.jobId)]);
    const northJobs = ((await (await b.call(NORTH_JOURNAL, '/v1/jobs')).json()) as { jobs: { id: string }[] }).jobs.map((j) => j.id);
    expect(northJobs).toEqual([north]);
  });

  it('keeps one ledger per tenant: another tenant\'s delivery of the same clinic and episode id is not "unchanged", and leaves the first ledger alone', async () => {
    const seen = fhirServer();
    const b = bridge();
    const first = await b.deliver(await idOf(await b.put(NORTH_JOURNAL, completed())));
    expect(first?.job.targets.clinic).toMatchObject({ status: 'delivered' });
    expect(first?.job.targets.clinic?.written).toBeGreaterThan(0);
    const again = await b.deliver(await idOf(await b.put(NORTH_ENGINE, completed())));
    expect(again?.job.targets.clinic).toMatchObject({ status: 'delivered', unchanged: true, written: 0 });
    expect(seen.transactions).toBe(1);

    const west = await b.deliver(await idOf(await b.put(WEST, completed())));
    expect(west?.job.targets.clinic?.unchanged).toBeUndefined();
    expect(west?.job.targets.clinic?.written).toBe(first?.job.targets.clinic?.written);
    expect(seen.transactions).toBe(2);

    const key = first!.job.episodeKey;
    expect(key).toBe('974557746/VG-2026-0042');
    expect((await b.store.getLedger('clinic-north', key, 'clinic'))?.seq).toBe(again?.job.seq);
    expect((await b.store.getLedger('journal-west', key, 'clinic'))?.seq).toBe(west?.job.seq);
    expect(await b.store.getLedger('local', key, 'clinic')).toBeUndefined();
  });

  it('refuses job routes to a caller with no tenant (an authenticated caller named `local`) with 403', async () => {
    const b = bridge();
    for (const [path, init] of [
      ['/v1/jobs', {}],
      [`/v1/jobs/${crypto.randomUUID()}`, {}],
      [`/v1/jobs/${crypto.randomUUID()}/$replay`, { method: 'POST' }],
    ] as const) {
      const r = await b.call(NAMED_LOCAL, path, init);
      expect(r.status).toBe(403);
      expect(((await r.json()) as { issue: { code: string }[] }).issue[0]?.code).toBe('forbidden');
    }
    expect((await b.put(NAMED_LOCAL, { ...plannedMinimal(), episodeId: 'VG-TEN-L' })).status).toBe(403);
    expect(await b.store.listJobs({ tenant: 'local' })).toEqual([]);
  });
});

describe('tenants of JWT callers', () => {
  const JWKS_URL = 'https://auth.tenancy.test/jwks';
  const ISSUER = 'https://auth.tenancy.test';
  const AUDIENCE = 'https://bridge.tenancy.test';

  it('groups JWT client ids as configured; another client gets 404; a token naming no client gets 403 on job routes', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'as-1', alg: 'ES384', use: 'sig' }] };
    server.use(http.get(JWKS_URL, () => HttpResponse.json(jwks)));
    const token = (claims: Record<string, unknown>) =>
      new SignJWT({ scope: 'system/*.read system/*.write', ...claims })
        .setProtectedHeader({ alg: 'ES384', kid: 'as-1' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
    const config = loadConfig({
      API_AUTH: JSON.stringify({ type: 'jwt', jwksUrl: JWKS_URL, issuer: ISSUER, audience: AUDIENCE }),
      TENANTS: JSON.stringify({ 'clinic-north': ['north-ehr', 'north-engine'] }),
    });
    const store = new MemoryStore();
    const service = createDeliveryService(store, { send: async () => undefined });
    const app = createApp({ allowSyntheticIds: true, auth: withTenants(createInboundAuthenticator(config.apiAuth), config.tenants), delivery: () => service });
    const call = async (claims: Record<string, unknown>, path: string, init: RequestInit = {}) =>
      app.request(path, { ...init, headers: { authorization: `Bearer ${await token(claims)}`, 'content-type': 'application/json' } });

    const r = await call({ client_id: 'north-ehr' }, '/v1/episodes/VG-JWT-1', {
      method: 'PUT',
      body: JSON.stringify({ ...plannedMinimal(), episodeId: 'VG-JWT-1' }),
    });
    expect(r.status).toBe(202);
    const id = await idOf(r);
    expect(await store.getJob(id)).toMatchObject({ caller: 'north-ehr', tenant: 'clinic-north' });
    expect((await call({ azp: 'north-engine' }, `/v1/jobs/${id}`)).status).toBe(200);
    expect((await call({ client_id: 'west-ehr' }, `/v1/jobs/${id}`)).status).toBe(404);
    expect(((await (await call({ client_id: 'west-ehr' }, '/v1/jobs')).json()) as { jobs: unknown[] }).jobs).toEqual([]);
    const nameless = await call({}, '/v1/jobs');
    expect(nameless.status).toBe(403);
    expect(((await nameless.json()) as { issue: { code: string }[] }).issue[0]?.code).toBe('forbidden');
  });
});

describe('the write rate limit per tenant', () => {
  /** At most `limit` writes per tenant; counts what it was asked. */
  function counting(limit: number) {
    const asked: string[] = [];
    const limiter: WriteLimiter = {
      async admit(tenant) {
        asked.push(tenant);
        return asked.filter((t) => t === tenant).length <= limit ? { ok: true } : { ok: false, retryAfterSeconds: 60 };
      },
    };
    return { asked, limiter };
  }

  it('answers the (N+1)th write 429 with Retry-After and code throttled, before reading the body; another tenant and reads go on', async () => {
    const { asked, limiter } = counting(2);
    const b = bridge(limiter);
    expect((await b.put(NORTH_JOURNAL, { ...plannedMinimal(), episodeId: 'VG-RL-1' })).status).toBe(202);
    expect((await b.call(NORTH_ENGINE, `/v1/jobs/${crypto.randomUUID()}/$replay`, { method: 'POST' })).status).toBe(404);
    // The third write of clinic-north, whatever its body: refused before it is read.
    const third = await b.call(NORTH_JOURNAL, '/v1/episodes/VG-RL-2', { method: 'PUT', body: '{not json' });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('60');
    const o = (await third.json()) as { resourceType: string; issue: { code: string }[] };
    expect(o.resourceType).toBe('OperationOutcome');
    expect(o.issue[0]?.code).toBe('throttled');
    const imp = await b.call(NORTH_ENGINE, '/v1/episodes/$import', {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: JSON.stringify(plannedMinimal()),
    });
    expect(imp.status).toBe(429);
    expect(await b.store.listJobs({ tenant: 'clinic-north' })).toHaveLength(1);

    expect((await b.put(WEST, { ...plannedMinimal(), episodeId: 'VG-RL-3' })).status).toBe(202);
    expect((await b.call(NORTH_JOURNAL, '/v1/jobs')).status).toBe(200);
    expect(asked).toEqual(['clinic-north', 'clinic-north', 'clinic-north', 'clinic-north', 'journal-west']);
  });
});
