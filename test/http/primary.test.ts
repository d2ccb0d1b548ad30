/**
 * Sharing with the primary treatment team inside workerd: a PUT of an episode whose consent
 * allows it reaches the primary team's server (the second sandbox, configured under
 * FHIR_TARGETS.primary) through the real queue, Durable Object and D1; the disclosure is audited
 * on the clinic's server, the requests read back are on the job, and the D1 store lists them per
 * episode.
 */
import { env, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import completed from '../../../shared/contract/examples/completed-mother.episode.json';
import { loadConfig } from '../../src/config.ts';
import { listCoordination } from '../../src/sync/coordination.ts';
import { DataCipher } from '../../src/sync/crypto.ts';
import { D1Store } from '../../src/sync/d1-store.ts';

const targets = JSON.parse(env.FHIR_TARGETS as string) as { clinic: { baseUrl: string }; primary: Record<string, { baseUrl: string }> };
const clinic = targets.clinic.baseUrl;
const primary = targets.primary['993778125']?.baseUrl as string;

interface JobView {
  id: string;
  status: string;
  targets: Record<string, { status: string; written?: number; requests?: { occasion: string; status: string }[] }>;
}

async function settled(location: string, timeoutMs = 30_000): Promise<JobView> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const j = (await (await SELF.fetch(`http://bridge${location}`)).json()) as JobView;
    if (!['queued', 'retrying'].includes(j.status) || Date.now() > until) return j;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const search = async (base: string, query: string) =>
  (await (await fetch(`${base}/${query}`)).json()) as { total?: number; entry?: { resource: Record<string, unknown> }[] };

describe('PUT /v1/episodes/{id} with a primary target configured', () => {
  it("delivers the mother's episode to her primary team's server as her consent allows, and audits it on the clinic's", async () => {
    const e = structuredClone(completed);
    e.episodeId = 'VG-2026-PRIMARY';
    e.consent = { ...e.consent, consentId: 'CN-2026-PRIMARY', expiresOn: '2099-01-01' };
    const r = await SELF.fetch(`http://bridge/v1/episodes/${e.episodeId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(e),
    });
    expect(r.status).toBe(202);
    const job = await settled(r.headers.get('location') as string);
    expect(job.status).toBe('delivered');
    expect(job.targets.clinic?.status).toBe('delivered');
    const onPrimary = job.targets['primary.993778125'];
    expect(onPrimary).toMatchObject({ status: 'delivered' });
    expect(onPrimary?.requests?.map((q) => `${q.occasion}:${q.status}`)).toContain('guidance-ended:requested');

    // On the primary team's server: the episode and its request, never the item answers or the notes.
    const episodes = await search(primary, `EpisodeOfCare?identifier=https://imh-bridge.example.no/fhir/sid/974557746/episode|${e.episodeId}`);
    expect(episodes.entry).toHaveLength(1);
    expect((await search(primary, 'QuestionnaireResponse?_summary=count')).total).toBe(0);
    const tasks = await search(primary, 'Task?_count=100');
    expect(tasks.entry?.length).toBeGreaterThan(0);
    const everything = JSON.stringify(await search(primary, 'Encounter?_count=100'));
    for (const s of e.sessions) if ('note' in s && s.note) expect(everything.includes(s.note)).toBe(false);

    // On the clinic's server: the AuditEvent of this disclosure, naming where it went.
    const audits = await search(clinic, 'AuditEvent?_count=100');
    const mine = (audits.entry ?? []).map((x) => x.resource).filter((a) => JSON.stringify(a).includes(e.episodeId));
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ outcome: '0' });
    expect(JSON.stringify(mine[0])).toContain(primary);

    // The store lists the requests read back for the episode (GET /v1/coordination is built on this).
    const cfg = loadConfig(env as unknown as Record<string, string | undefined>);
    const store = new D1Store(env.DB, new DataCipher(cfg.dataKeys.reveal()));
    const listed = await listCoordination(store, 'local', Date.now());
    const entry = listed.find((x) => x.episodeKey === `974557746/${e.episodeId}`);
    expect(entry?.target).toBe('primary.993778125');
    expect(entry?.requests.map((q) => q.status)).toContain('requested');
  });
});

describe('job content in D1 since primary targets', () => {
  const store = () => new D1Store(env.DB, new DataCipher(loadConfig(env as unknown as Record<string, string | undefined>).dataKeys.reveal()));

  it("holds one Bundle per target, encrypted, and reads a row written with the clinic's Bundle alone", async () => {
    const { submitEpisode } = await import('../../src/sync/deliver.ts');
    const s = store();
    const e = structuredClone(completed);
    e.episodeId = 'VG-2026-CONTENT';
    e.consent = { ...e.consent, expiresOn: '2099-01-01' };
    const job = await submitEpisode(
      e,
      { store: s, now: Date.now, newId: () => crypto.randomUUID() },
      { allowSyntheticIds: true, primaryEndpoint: () => primary },
    );
    const content = await s.getContent(job.id);
    expect(Object.keys(content?.bundles ?? {}).sort()).toEqual(['clinic', 'primary.993778125']);
    expect(Object.keys(content?.audits ?? {})).toEqual([`${job.id}|primary.993778125`]);
    const raw = await env.DB.prepare('SELECT bundle, job FROM jobs WHERE id = ?1').bind(job.id).first<{ bundle: string; job: string }>();
    for (const text of [String(raw?.bundle), String(raw?.job)]) {
      expect(text).not.toContain(e.parent.nationalId);
      expect(text).not.toContain(e.parent.family);
    }

    // A row from before: the bundle column holds the clinic's Bundle itself (sealed).
    const { gzip } = {
      gzip: async (t: string) => new Uint8Array(await new Response(new Blob([t]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer()),
    };
    const clinicBundle = content?.bundles.clinic;
    const cipher = new DataCipher(loadConfig(env as unknown as Record<string, string | undefined>).dataKeys.reveal());
    const sealed = await cipher.seal(await gzip(JSON.stringify(clinicBundle)), `job/${job.id}/bundle`);
    await env.DB.prepare('UPDATE jobs SET bundle = ?1 WHERE id = ?2').bind(sealed, job.id).run();
    expect(await s.getContent(job.id)).toEqual({ bundles: { clinic: clinicBundle } });
    expect(await s.getBundle(job.id)).toEqual(clinicBundle);
  });

  it('keeps the requests read back without personal data, per tenant', async () => {
    const s = store();
    const requests = [
      { occasion: 'risk-follow-up', identifier: 'VG-X/coordination-request/risk-follow-up/A1', status: 'accepted', priority: 'urgent', due: '2026-09-08' },
    ];
    await s.putCoordination({ tenant: 'tenant-a', episodeKey: '974557746/VG-X', target: 'primary.993778125', readAt: '2026-10-01T10:00:00.000Z', requests });
    await s.putCoordination({ tenant: 'tenant-a', episodeKey: '974557746/VG-X', target: 'primary.993778125', readAt: '2026-10-02T10:00:00.000Z', requests });
    expect(await listCoordination(s, 'tenant-a', Date.parse('2026-10-02T12:00:00Z'))).toEqual([
      { episodeKey: '974557746/VG-X', target: 'primary.993778125', readAt: '2026-10-02T10:00:00.000Z', requests: [{ ...requests[0], overdue: true }] },
    ]);
    expect(await listCoordination(s, 'tenant-b')).toEqual([]);
  });
});
