/**
 * Tenants, patient data at rest and the write rate limit inside workerd, over D1, the real
 * queue and the rate-limiting binding (Miniflare's, from wrangler.toml `[[ratelimits]]`).
 */
import { createExecutionContext, env, SELF } from 'cloudflare:test';
import { base64url, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import completed from '../../examples/completed-mother.episode.json';
import planned from '../../examples/planned-minimal.episode.json';
import { loadConfig } from '../../src/config.ts';
import { DataCipher, DataDecryptionError, decodeDataKey, isJwe } from '../../src/sync/crypto.ts';
import { D1Store } from '../../src/sync/d1-store.ts';
import { submitEpisode } from '../../src/sync/deliver.ts';
import worker from '../../src/worker.ts';
import { PRODUCTION_IDENTITY } from '../fixtures/production.ts';

const NORTH = 'tenancy-token-north-journal-5Kd9Wq2Rx7Lm';
const NORTH_ENGINE = 'tenancy-token-north-engine-3Jf6Tz8Pb1Vn';
const WEST = 'tenancy-token-west-journal-8Gh4Ys1Nc6Qe';
/** One env object for every authenticated call, so the Worker keeps its loaded configuration. */
const authed = {
  ...env,
  API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
  API_TOKENS: JSON.stringify({ 'journal-north': NORTH, 'engine-north': NORTH_ENGINE, 'journal-west': WEST }),
  TENANTS: JSON.stringify({ 'clinic-north': ['journal-north', 'engine-north'] }),
} as typeof env;

const call = (token: string, path: string, init: RequestInit = {}, e: typeof env = authed) =>
  worker.fetch(
    new Request(`http://bridge${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
    }) as Parameters<typeof worker.fetch>[0],
    e,
    createExecutionContext(),
  );
const put = (token: string, episode: { episodeId: string }, e: typeof env = authed) =>
  call(token, `/v1/episodes/${episode.episodeId}`, { method: 'PUT', body: JSON.stringify(episode) }, e);

interface JobView {
  id: string;
  status: string;
  targets: Record<string, { status: string; written?: number; unchanged?: boolean }>;
}

async function settled(token: string, id: string, timeoutMs = 30_000): Promise<JobView> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const j = (await (await call(token, `/v1/jobs/${id}`)).json()) as JobView;
    if (!['queued', 'retrying'].includes(j.status) || Date.now() > until) return j;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const devStore = () => new D1Store(env.DB, new DataCipher(loadConfig(env as never).dataKeys.reveal()));

describe('tenants (D1)', () => {
  it("answers another tenant 404 exactly as for a missing job on read and replay, and lists only the caller's tenant", async () => {
    const r = await put(NORTH, { ...planned, episodeId: 'VG-W-TEN-1' });
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as JobView;
    const north = await settled(NORTH_ENGINE, id);
    expect(north.status).toBe('delivered');
    const row = await env.DB.prepare('SELECT tenant, caller FROM jobs WHERE id = ?1').bind(id).first<{ tenant: string; caller: string }>();
    expect(row).toEqual({ tenant: 'clinic-north', caller: 'journal-north' });

    const missing = await call(WEST, `/v1/jobs/${crypto.randomUUID()}`);
    const missingBody = await missing.text();
    const read = await call(WEST, `/v1/jobs/${id}`);
    expect([read.status, await read.text()]).toEqual([404, missingBody]);

    // Finished, so its owner could replay it; another tenant cannot even tell.
    await devStore().saveJob({ ...(await devStore().getJob(id))!, status: 'failed', targets: { clinic: { status: 'failed', httpStatus: 412 } } });
    const replay = await call(WEST, `/v1/jobs/${id}/$replay`, { method: 'POST' });
    const replayMissing = await call(WEST, `/v1/jobs/${crypto.randomUUID()}/$replay`, { method: 'POST' });
    expect(replay.status).toBe(404);
    expect(await replay.text()).toBe(await replayMissing.text());
    expect((await devStore().getJob(id))?.status).toBe('failed');

    const westList = (await (await call(WEST, '/v1/jobs?limit=1000')).json()) as { jobs: JobView[] };
    expect(westList.jobs.map((j) => j.id)).not.toContain(id);
    const northList = (await (await call(NORTH, '/v1/jobs?status=failed&limit=1000')).json()) as { jobs: JobView[] };
    expect(northList.jobs.map((j) => j.id)).toEqual([id]);
    // The open API is the tenant `local`: it does not see clinic-north's job either.
    const local = (await (await SELF.fetch('http://bridge/v1/jobs?limit=1000')).json()) as { jobs: JobView[] };
    expect(local.jobs.map((j) => j.id)).not.toContain(id);

    const plan = await env.DB.prepare('EXPLAIN QUERY PLAN SELECT seq FROM jobs WHERE tenant = ?1 AND status IN (?2) ORDER BY seq')
      .bind('clinic-north', 'failed')
      .all<{ detail: string }>();
    expect(plan.results.map((p) => p.detail).join('\n')).toMatch(/USING (COVERING )?INDEX jobs_by_tenant/);
  });

  it('keeps one ledger per tenant: the same clinic and episode id from another tenant is delivered on its own', async () => {
    const episode = { ...planned, episodeId: 'VG-W-TEN-2' };
    const first = await settled(NORTH, ((await (await put(NORTH, episode)).json()) as JobView).id);
    expect(first.targets.clinic).toMatchObject({ status: 'delivered' });
    const again = await settled(NORTH_ENGINE, ((await (await put(NORTH_ENGINE, episode)).json()) as JobView).id);
    expect(again.targets.clinic).toMatchObject({ status: 'delivered', unchanged: true, written: 0 });
    const west = await settled(WEST, ((await (await put(WEST, episode)).json()) as JobView).id);
    expect(west.targets.clinic?.unchanged).toBeUndefined();
    expect(west.targets.clinic?.written).toBe(first.targets.clinic?.written);

    const { results } = await env.DB.prepare('SELECT tenant FROM ledger WHERE episode_key = ?1 ORDER BY tenant')
      .bind(`${planned.clinic.orgNumber}/VG-W-TEN-2`)
      .all<{ tenant: string }>();
    expect(results.map((r) => r.tenant)).toEqual(['clinic-north', 'journal-west']);
  });
});

/** Strings that must never be readable in D1: from the completed example, and a server's words about it. */
const PATIENT_DATA = [
  completed.parent.nationalId,
  completed.infants[0]!.nationalId,
  completed.parent.family,
  completed.parent.given[0]!,
  completed.infants[0]!.given[0]!,
  completed.parent.phone,
  completed.parent.phone.replace(/\D/g, ''),
  'Mother tearful',
  completed.referral.reason.slice(0, 30),
  'resourceType',
];

async function gunzipFails(bytes: Uint8Array): Promise<boolean> {
  try {
    await new Response(new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream('gzip'))).arrayBuffer();
    return false;
  } catch {
    return true;
  }
}

/** Asserts one raw column value reads as no patient data, and returns it as text. */
async function assertOpaque(value: unknown, where: string): Promise<void> {
  if (value === null || typeof value === 'number') return;
  if (typeof value === 'string') {
    for (const s of PATIENT_DATA) expect(value, `${where} holds "${s}" in clear`).not.toContain(s);
    if (isJwe(value)) {
      const header = new TextDecoder().decode(base64url.decode(value.split('.')[0]!));
      for (const s of PATIENT_DATA) expect(header, `${where}'s JWE header holds "${s}"`).not.toContain(s);
    }
    return;
  }
  const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : Uint8Array.from(value as number[]);
  expect(await gunzipFails(bytes), `${where} decompresses`).toBe(true);
  const text = new TextDecoder('latin1').decode(bytes);
  for (const s of PATIENT_DATA) expect(text, `${where} holds "${s}" in clear`).not.toContain(s);
}

describe('patient data at rest (D1)', () => {
  it("stores the Bundle, the servers' error texts and the ledger only as JWE: no national id, name, phone, note or FHIR resource in clear", async () => {
    const episode = { ...completed, episodeId: 'VG-ENC-0042' };
    const r = await SELF.fetch('http://bridge/v1/episodes/VG-ENC-0042', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(episode),
    });
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as JobView;
    const until = Date.now() + 30_000;
    let status = 'queued';
    while (['queued', 'retrying'].includes(status) && Date.now() < until) {
      await new Promise((res) => setTimeout(res, 200));
      status = ((await (await SELF.fetch(`http://bridge/v1/jobs/${id}`)).json()) as JobView).status;
    }
    expect(status).toBe('delivered');

    // A FHIR server's refusal quoting what it was sent, as job records keep it.
    const store = devStore();
    const job = (await store.getJob(id))!;
    const quoted = `Patient ${completed.parent.nationalId} ${completed.parent.given[0]} ${completed.parent.family} already exists`;
    const outcome = { resourceType: 'OperationOutcome' as const, issue: [{ severity: 'error' as const, code: 'duplicate' as const, diagnostics: quoted }] };
    await store.saveJob({ ...job, targets: { clinic: { status: 'failed', httpStatus: 412, error: quoted, outcome } } });

    const jobRow = await env.DB.prepare('SELECT * FROM jobs WHERE id = ?1').bind(id).first<Record<string, unknown>>();
    const ledgerRows = (await env.DB.prepare('SELECT * FROM ledger WHERE episode_key = ?1').bind('974557746/VG-ENC-0042').all<Record<string, unknown>>())
      .results;
    expect(jobRow).not.toBeNull();
    // One ledger per target: the clinic's and the mother's primary treatment team's.
    expect(ledgerRows.map((r) => r.target).sort()).toEqual(['clinic', 'primary.993778125']);
    for (const [column, value] of Object.entries(jobRow!)) await assertOpaque(value, `jobs.${column}`);
    for (const row of ledgerRows) for (const [column, value] of Object.entries(row)) await assertOpaque(value, `ledger.${column}`);

    expect(isJwe(jobRow!.bundle)).toBe(true);
    expect(decodeProtectedHeader(jobRow!.bundle as string)).toMatchObject({ alg: 'dir', enc: 'A256GCM', kid: 'dev-1' });
    expect(isJwe(ledgerRows[0]!.record)).toBe(true);
    const stored = JSON.parse(jobRow!.job as string) as { sealed?: string; targets: Record<string, Record<string, unknown>> };
    expect(isJwe(stored.sealed)).toBe(true);
    expect(stored.targets.clinic).toEqual({ status: 'failed', httpStatus: 412 });

    // With the key, everything reads back as written.
    expect((await store.getJob(id))?.targets.clinic).toEqual({ status: 'failed', httpStatus: 412, error: quoted, outcome });
    expect((await store.getBundle(id))?.entry?.length).toBeGreaterThan(60);
    expect((await store.getLedger('local', '974557746/VG-ENC-0042', 'clinic'))?.resources.length).toBeGreaterThan(60);
  });

  it('decrypts values under the previous key after rotation (first key encrypts, every listed key decrypts)', async () => {
    const keyA = { kid: 'rotate-a', k: base64url.encode(new Uint8Array(32).fill(21)) };
    const keyB = { kid: 'rotate-b', k: base64url.encode(new Uint8Array(32).fill(22)) };
    const before = new D1Store(env.DB, new DataCipher([decodeDataKey(keyA)]));
    const job = await submitEpisode({ ...planned, episodeId: 'VG-ROTATE-1' }, { store: before, now: Date.now, newId: () => crypto.randomUUID() });
    await before.saveJob({ ...job, status: 'dead', targets: { clinic: { status: 'dead', error: 'POST (transaction): HTTP 503', httpStatus: 503 } } });
    const headerKid = async (column: 'bundle' | 'job') => {
      const row = await env.DB.prepare(`SELECT ${column} AS v FROM jobs WHERE id = ?1`).bind(job.id).first<{ v: string }>();
      return decodeProtectedHeader(column === 'job' ? (JSON.parse(row!.v) as { sealed: string }).sealed : row!.v).kid;
    };
    expect(await headerKid('bundle')).toBe('rotate-a');

    // Rotated: B first, A still listed. The Worker reads the job written under A.
    const rotatedEnv = { ...env, DATA_ENCRYPTION_KEYS: JSON.stringify([keyB, keyA]) } as typeof env;
    const view = await worker.fetch(new Request(`http://bridge/v1/jobs/${job.id}`) as Parameters<typeof worker.fetch>[0], rotatedEnv, createExecutionContext());
    expect(view.status).toBe(200);
    expect(((await view.json()) as { targets: { clinic: { error: string } } }).targets.clinic.error).toBe('POST (transaction): HTTP 503');
    const rotated = new D1Store(env.DB, new DataCipher([decodeDataKey(keyB), decodeDataKey(keyA)]));
    expect((await rotated.getBundle(job.id))?.type).toBe('transaction');
    await rotated.saveJob((await rotated.getJob(job.id))!);
    expect(await headerKid('job')).toBe('rotate-b');

    // Once A is dropped, what only A encrypted no longer opens.
    const onlyB = new D1Store(env.DB, new DataCipher([decodeDataKey(keyB)]));
    expect((await onlyB.getJob(job.id))?.targets.clinic?.error).toBe('POST (transaction): HTTP 503');
    await expect(onlyB.getBundle(job.id)).rejects.toThrow(DataDecryptionError);
  });
});

describe('rows written before encryption', () => {
  it('are still read (gzip Bundle, clear job JSON and ledger), and a job is sealed when next saved', async () => {
    const store = devStore();
    const fresh = await submitEpisode({ ...planned, episodeId: 'VG-LEGACY-1' }, { store, now: Date.now, newId: () => crypto.randomUUID() });
    const bundle = (await store.getBundle(fresh.id))!;
    const gz = new Uint8Array(await new Response(new Blob([JSON.stringify(bundle)]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer());
    const {
      seq: _s,
      caller: _c,
      tenant: _t,
      ...legacyJob
    } = { ...fresh, status: 'dead' as const, targets: { clinic: { status: 'dead' as const, error: 'POST (transaction): HTTP 503', httpStatus: 503 } } };
    await env.DB.prepare('UPDATE jobs SET job = ?1, bundle = ?2, status = ?3 WHERE id = ?4').bind(JSON.stringify(legacyJob), gz, 'dead', fresh.id).run();
    const record = {
      tenant: 'local',
      episodeKey: fresh.episodeKey,
      target: 'clinic',
      seq: fresh.seq,
      contentHash: fresh.contentHash,
      mappingVersion: fresh.mappingVersion,
      deliveredAt: fresh.createdAt,
      resources: [],
    };
    await env.DB.prepare("INSERT INTO ledger (tenant, episode_key, target, record) VALUES ('local', ?1, 'clinic', ?2)")
      .bind(fresh.episodeKey, JSON.stringify(record))
      .run();

    expect(await store.getBundle(fresh.id)).toEqual(bundle);
    const job = (await store.getJob(fresh.id))!;
    expect(job.targets.clinic).toEqual({ status: 'dead', error: 'POST (transaction): HTTP 503', httpStatus: 503 });
    expect(await store.getLedger('local', fresh.episodeKey, 'clinic')).toEqual(record);

    await store.saveJob(job);
    const row = await env.DB.prepare('SELECT job FROM jobs WHERE id = ?1').bind(fresh.id).first<{ job: string }>();
    expect(row?.job).not.toContain('HTTP 503');
    expect(isJwe((JSON.parse(row!.job) as { sealed?: string }).sealed)).toBe(true);
    expect((await store.getJob(fresh.id))?.targets.clinic).toEqual(job.targets.clinic);
  });
});

/** wrangler.toml `[[ratelimits]]` WRITE_RATE_LIMITER: simple = { limit = 120, period = 60 }. */
const WRITE_LIMIT = 120;
const PERIOD_MS = 60_000;

describe('the write rate limit per tenant (rate-limiting binding)', () => {
  it('answers the (N+1)th write in the window 429 with Retry-After and code throttled; another tenant is unaffected', async () => {
    const A = 'ratelimit-token-tenant-a-6Bv2Xn9Lq4Rt';
    const B = 'ratelimit-token-tenant-b-1Ws7Hk3Md8Pz';
    const limited = {
      ...env,
      API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
      API_TOKENS: JSON.stringify({ 'rl-tenant-a': A, 'rl-tenant-b': B }),
    } as typeof env;
    // Miniflare's windows follow the wall clock: start early in one, so all N+1 fall in it.
    const left = PERIOD_MS - (Date.now() % PERIOD_MS);
    if (left < 10_000) await new Promise((r) => setTimeout(r, left + 250));

    for (let i = 0; i < WRITE_LIMIT; i++) {
      // Writes of any kind count: replays of jobs that do not exist are the cheapest.
      const r = await call(A, `/v1/jobs/${crypto.randomUUID()}/$replay`, { method: 'POST' }, limited);
      expect(r.status, `write ${i + 1}`).toBe(404);
    }
    const over = await put(A, { ...planned, episodeId: 'VG-RATE-A' }, limited);
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('60');
    const o = (await over.json()) as { resourceType: string; issue: { code: string }[] };
    expect(o.resourceType).toBe('OperationOutcome');
    expect(o.issue[0]?.code).toBe('throttled');
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM jobs WHERE tenant = 'rl-tenant-a'").first<{ n: number }>();
    expect(stored?.n).toBe(0);
    // Reads are not limited; the other tenant writes as before.
    expect((await call(A, '/v1/jobs', {}, limited)).status).toBe(200);
    expect((await put(B, { ...planned, episodeId: 'VG-RATE-B' }, limited)).status).toBe(202);
  });

  it('is required where real national ids are accepted: without the binding the Worker refuses to serve, naming it', async () => {
    const { WRITE_RATE_LIMITER: _binding, ...unbound } = env;
    const production = {
      ...unbound,
      ...PRODUCTION_IDENTITY,
      API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
      API_TOKENS: JSON.stringify({ 'rl-prod': 'ratelimit-token-production-4Cx8Vm2Ks6Dj' }),
      DATA_ENCRYPTION_KEYS: JSON.stringify([{ kid: 'test-1', k: base64url.encode(new Uint8Array(32).fill(5)) }]),
    } as typeof env;
    const r = await call('ratelimit-token-production-4Cx8Vm2Ks6Dj', '/v1/jobs', {}, production);
    expect(r.status).toBe(500);
    const o = (await r.json()) as { issue: { expression: string[] }[] };
    expect(o.issue.map((i) => i.expression[0])).toEqual(['WRITE_RATE_LIMITER']);
    // With the binding the same settings serve.
    expect(
      (await call('ratelimit-token-production-4Cx8Vm2Ks6Dj', '/v1/jobs', {}, { ...production, WRITE_RATE_LIMITER: env.WRITE_RATE_LIMITER } as typeof env))
        .status,
    ).toBe(200);
  });
});
