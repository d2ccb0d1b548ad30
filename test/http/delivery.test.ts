/**
 * The delivery path inside workerd: routes, D1, the real queue and its consumer, the
 * per-parent Durable Object, delivering to the sandbox FHIR server started beside workerd.
 */
import { env, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import active from '../../examples/active-father-no-consent.episode.json';
import completed from '../../examples/completed-mother.episode.json';
import planned from '../../examples/planned-minimal.episode.json';
import { loadConfig } from '../../src/config.ts';
import { DataCipher } from '../../src/sync/crypto.ts';
import { D1Store } from '../../src/sync/d1-store.ts';

const sandbox = (JSON.parse(env.FHIR_TARGETS as string) as { clinic: { baseUrl: string } }).clinic.baseUrl;

const put = (episode: { episodeId: string }, id = episode.episodeId) =>
  SELF.fetch(`http://bridge/v1/episodes/${id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(episode) });

interface JobView {
  id: string;
  status: string;
  attempts: number;
  targets: Record<string, { status: string; written?: number; unchanged?: boolean; retracted?: number }>;
}

async function job(location: string): Promise<JobView> {
  return (await (await SELF.fetch(`http://bridge${location}`)).json()) as JobView;
}

/** Polls a job until it leaves the queue (the real queue delivers within about a second). */
async function settled(location: string, timeoutMs = 30_000): Promise<JobView> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const j = await job(location);
    if (!['queued', 'retrying'].includes(j.status) || Date.now() > until) return j;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const count = async (query: string) => {
  const r = await fetch(`${sandbox}/${query}${query.includes('?') ? '&' : '?'}_summary=count`);
  return ((await r.json()) as { total: number }).total;
};

describe('PUT /v1/episodes/{episodeId}', () => {
  it("answers 202 with Location, and the queue delivers the episode to the clinic's FHIR server", async () => {
    const r = await put(completed);
    expect(r.status).toBe(202);
    const location = r.headers.get('location') as string;
    expect(location).toMatch(/^\/v1\/jobs\/[0-9a-f-]{36}$/);
    expect(((await r.json()) as JobView).status).toBe('queued');

    const done = await settled(location);
    expect(done.status).toBe('delivered');
    expect(done.targets.clinic).toMatchObject({ status: 'delivered', written: 69 });
    expect(await count('Encounter?identifier=https://imh-bridge.example.no/fhir/sid/974557746/session|VG-2026-0042/S1')).toBe(1);
    expect(await count('Observation?identifier=https://imh-bridge.example.no/fhir/sid/974557746/score|VG-2026-0042/A1/99046-5')).toBe(1);

    // The same episode again: nothing written.
    const again = await settled((await put(completed)).headers.get('location') as string);
    expect(again.targets.clinic).toMatchObject({ status: 'delivered', unchanged: true, written: 0 });
    expect(await count('Encounter?identifier=https://imh-bridge.example.no/fhir/sid/974557746/session|VG-2026-0042/S1')).toBe(1);
  });

  it('marks a removed session entered-in-error on the server', async () => {
    await settled((await put(active)).headers.get('location') as string);
    const changed = structuredClone(active);
    changed.sessions = changed.sessions.filter((s) => s.sessionId !== 'S5');
    const done = await settled((await put(changed)).headers.get('location') as string);
    expect(done.targets.clinic).toMatchObject({ status: 'delivered', retracted: 1 });
    const r = await fetch(`${sandbox}/Encounter?identifier=https://imh-bridge.example.no/fhir/sid/974557746/session|VG-2026-0107/S5`);
    const bundle = (await r.json()) as { entry: { resource: { status: string } }[] };
    expect(bundle.entry.map((e) => e.resource.status)).toEqual(['entered-in-error']);
  });

  it('answers 400 with the OperationOutcome and stores nothing for a bad episode', async () => {
    const before = ((await (await SELF.fetch('http://bridge/v1/jobs?limit=1000')).json()) as { jobs: unknown[] }).jobs.length;
    const bad = structuredClone(planned) as Record<string, unknown>;
    bad.status = 'paused';
    const r = await put(bad as typeof planned);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { issue: { expression: string[] }[] }).issue[0]?.expression).toEqual(['/status']);
    const after = ((await (await SELF.fetch('http://bridge/v1/jobs?limit=1000')).json()) as { jobs: unknown[] }).jobs.length;
    expect(after).toBe(before);
  });

  it('answers 400 when the URL and the body name different episodes', async () => {
    const r = await put(planned, 'VG-OTHER');
    expect(r.status).toBe(400);
    expect(((await r.json()) as { issue: { expression: string[] }[] }).issue[0]?.expression).toEqual(['/episodeId']);
  });
});

describe('POST /v1/episodes/$import', () => {
  it('answers per line; a bad line never sinks the others', async () => {
    const bad = { ...planned, episodeId: 'VG-BAD', schemaVersion: '2.0' };
    const body = [
      JSON.stringify({ ...planned, episodeId: 'VG-IMP-1' }),
      '{not json',
      JSON.stringify(bad),
      '',
      JSON.stringify({ ...planned, episodeId: 'VG-IMP-2' }),
    ].join('\n');
    const r = await SELF.fetch('http://bridge/v1/episodes/$import', { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
    expect(r.status).toBe(200);
    const lines = new TextDecoder()
      .decode(await r.arrayBuffer())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { line: number; status: number; location?: string; outcome?: { issue: { expression?: string[] }[] } });
    expect(lines.map((l) => [l.line, l.status])).toEqual([
      [1, 202],
      [2, 400],
      [3, 400],
      [5, 202],
    ]);
    expect(lines[2]?.outcome?.issue[0]?.expression).toEqual(['/schemaVersion']);
    expect(r.headers.get('x-accepted')).toBe('2');
    for (const l of lines.filter((x) => x.location)) expect((await settled(l.location as string)).status).toBe('delivered');
  });

  it('answers 415 for a body that is not NDJSON', async () => {
    const r = await SELF.fetch('http://bridge/v1/episodes/$import', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' });
    expect(r.status).toBe(415);
  });
});

describe('jobs', () => {
  it('lists dead jobs and replays one through the API', async () => {
    const location = (await put({ ...planned, episodeId: 'VG-DEAD-1' })).headers.get('location') as string;
    const id = location.split('/').pop() as string;
    await settled(location);
    // Make it dead as if every attempt had failed.
    const store = new D1Store(env.DB, new DataCipher(loadConfig(env as never).dataKeys.reveal()));
    const j = (await store.getJob(id))!;
    await store.saveJob({ ...j, status: 'dead', targets: { clinic: { status: 'dead', error: 'POST (transaction): HTTP 503' } } });

    const list = (await (await SELF.fetch('http://bridge/v1/jobs?status=dead')).json()) as { jobs: JobView[] };
    expect(list.jobs.map((x) => x.id)).toContain(id);

    const replay = await SELF.fetch(`http://bridge/v1/jobs/${id}/$replay`, { method: 'POST' });
    expect(replay.status).toBe(202);
    const done = await settled(location);
    expect(done.status).toBe('delivered');
    expect(done.targets.clinic?.unchanged).toBe(true); // the ledger already had it

    const again = await SELF.fetch(`http://bridge/v1/jobs/${id}/$replay`, { method: 'POST' });
    expect(again.status).toBe(409);
  });

  it('answers 404 for an unknown job and 400 for an unknown status filter', async () => {
    expect((await SELF.fetch('http://bridge/v1/jobs/nope')).status).toBe(404);
    expect((await SELF.fetch('http://bridge/v1/jobs?status=lost')).status).toBe(400);
  });

  it('serves the (empty by default) public JWKS', async () => {
    const r = await SELF.fetch('http://bridge/.well-known/jwks.json');
    expect(await r.json()).toEqual({ keys: [] });
  });
});
