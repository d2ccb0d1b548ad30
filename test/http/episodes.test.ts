/**
 * Stored episodes in D1 inside workerd: a submission keeps the episode as JWE (nothing of the
 * parent, the infants, the notes or the clips readable in any column), it does not open without
 * the key or in another row, the summary route serves it, and the purge deletes it once it is no
 * longer kept.
 */
import { env, SELF } from 'cloudflare:test';
import { base64url } from 'jose';
import { describe, expect, it } from 'vitest';
import completed from '../../../shared/contract/examples/completed-mother.episode.json';
import { loadConfig } from '../../src/config.ts';
import { SUMMARY_PAGE_CSP } from '../../src/coordination/summary-page.ts';
import { parseEpisode } from '../../src/domain/parse.ts';
import { DEV_IDENTITY } from '../../src/fhir/identity.ts';
import { DataCipher, DataDecryptionError, decodeDataKey, isJwe } from '../../src/sync/crypto.ts';
import { D1Store } from '../../src/sync/d1-store.ts';
import { personKey } from '../../src/sync/episodes.ts';

const devStore = () => new D1Store(env.DB, new DataCipher(loadConfig(env as never).dataKeys.reveal()));

const PATIENT_DATA = [
  completed.parent.nationalId,
  completed.infants[0]!.nationalId,
  completed.infants[0]!.given[0]!,
  completed.parent.family,
  completed.parent.given[0]!,
  completed.parent.phone,
  completed.referral.reason.slice(0, 30),
  completed.sessions.find((s) => 'note' in s && s.note)!.note!.slice(0, 30),
  'nationalId',
  'episodeId',
];

describe('stored episodes (D1)', () => {
  it('are kept only as JWE bound to their row, readable with the key only, and served by the summary route', async () => {
    const episode = { ...completed, episodeId: 'VG-EPI-0042' };
    const r = await SELF.fetch('http://bridge/v1/episodes/VG-EPI-0042', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(episode),
    });
    expect(r.status).toBe(202);

    const row = await env.DB.prepare('SELECT * FROM episodes WHERE episode_key = ?1').bind('974557746/VG-EPI-0042').first<Record<string, unknown>>();
    expect(row).not.toBeNull();
    expect(row!.tenant).toBe('local');
    expect(row!.person_key).toBe(personKey(DEV_IDENTITY, completed.parent.nationalId));
    for (const [column, value] of Object.entries(row!)) {
      if (typeof value !== 'string') continue;
      for (const s of PATIENT_DATA) expect(value, `episodes.${column} holds "${s}" in clear`).not.toContain(s);
    }
    expect(isJwe(row!.episode)).toBe(true);
    const header = JSON.parse(new TextDecoder().decode(base64url.decode((row!.episode as string).split('.')[0]!)));
    expect(header).toMatchObject({ alg: 'dir', enc: 'A256GCM', kid: 'dev-1' });
    for (const s of PATIENT_DATA) expect(JSON.stringify(header)).not.toContain(s);

    // With the key it reads back as the parsed episode; without it, or in another row, it does not open.
    const stored = await devStore().getEpisode('local', '974557746/VG-EPI-0042');
    expect(stored?.episode).toEqual(parseEpisode(episode));
    const stranger = new D1Store(env.DB, new DataCipher([decodeDataKey({ kid: 'dev-1', k: base64url.encode(new Uint8Array(32).fill(7)) })]));
    await expect(stranger.getEpisode('local', '974557746/VG-EPI-0042')).rejects.toThrow(DataDecryptionError);
    await env.DB.prepare(
      "INSERT INTO episodes (tenant, episode_key, episode_id, person_key, stored_at, kept_until, episode) VALUES ('other-tenant', ?1, 'VG-EPI-0042', ?2, ?3, NULL, ?4)",
    )
      .bind(row!.episode_key, row!.person_key, row!.stored_at, row!.episode)
      .run();
    await expect(devStore().getEpisode('other-tenant', '974557746/VG-EPI-0042')).rejects.toThrow(DataDecryptionError);
    await env.DB.prepare("DELETE FROM episodes WHERE tenant = 'other-tenant'").run();

    const doc = await SELF.fetch('http://bridge/v1/episodes/VG-EPI-0042/summary?at=2026-06-01T10:00:00Z');
    expect(doc.status).toBe(200);
    expect(((await doc.json()) as { type: string }).type).toBe('document');
    const page = await SELF.fetch('http://bridge/v1/episodes/VG-EPI-0042/summary?at=2026-06-01T10:00:00Z&lang=en', { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(SUMMARY_PAGE_CSP);
    expect(await page.text()).toMatch(/<html lang="en"/);
    expect((await SELF.fetch('http://bridge/v1/episodes/VG-EPI-NONE/summary')).status).toBe(404);
  });

  it('are purged once no longer kept and the retention period has passed, and found by person until then', async () => {
    const store = devStore();
    const e = parseEpisode({ ...completed, episodeId: 'VG-EPI-PURGE', consent: { ...completed.consent, status: 'withdrawn' } });
    const key = personKey(DEV_IDENTITY, e.parent.nationalId);
    await store.putEpisode({ tenant: 'purge-tenant', episodeKey: '974557746/VG-EPI-PURGE', personKey: key, episode: e, storedAt: '2026-01-01T00:00:00.000Z' });
    const running = parseEpisode({ ...completed, episodeId: 'VG-EPI-KEEP', status: 'active', closing: undefined, period: { start: completed.period.start } });
    await store.putEpisode({
      tenant: 'purge-tenant',
      episodeKey: '974557746/VG-EPI-KEEP',
      personKey: key,
      episode: running,
      storedAt: '2020-01-01T00:00:00.000Z',
    });
    expect((await store.findEpisodesByPerson(key)).filter((s) => s.tenant === 'purge-tenant').map((s) => s.episodeKey)).toEqual([
      '974557746/VG-EPI-KEEP',
      '974557746/VG-EPI-PURGE',
    ]);
    expect(await store.purgeEpisodes({ keptUntilBefore: '2025-12-31T00:00:00.000Z', limit: 10 })).toBe(0);
    expect(await store.purgeEpisodes({ keptUntilBefore: '2026-02-01T00:00:00.000Z', limit: 10 })).toBe(1);
    expect(await store.getEpisode('purge-tenant', '974557746/VG-EPI-PURGE')).toBeUndefined();
    expect(await store.getEpisode('purge-tenant', '974557746/VG-EPI-KEEP')).toBeDefined();
  });
});
