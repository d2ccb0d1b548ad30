/**
 * Stored episodes (src/sync/episodes.ts): every submission keeps the tenant's latest version of
 * the episode, found by tenant and episode, by episode id and by the parent's person key across
 * tenants; kept while the episode runs or its consent is valid, then purged after the retention
 * period. MemoryStore here; D1's SQL over Node's SQLite (plans), encryption inside workerd
 * (test/http/episodes.test.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEpisode } from '../../src/domain/parse.ts';
import { DEV_IDENTITY } from '../../src/fhir/identity.ts';
import { PURGE_EPISODES_SQL } from '../../src/sync/d1-store.ts';
import { episodeKeptUntil, personKey } from '../../src/sync/episodes.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService } from '../../src/sync/service.ts';
import { purgeExpiredEpisodes } from '../../src/sync/sweep.ts';
import { activeFather, completed, plannedMinimal } from '../fixtures/examples.ts';

const DAY = 86_400_000;
const RETENTION = { retentionMs: 30 * DAY };
const T0 = Date.parse('2026-06-01T12:00:00Z');

function bridge(now: () => number = () => T0) {
  const store = new MemoryStore();
  const service = createDeliveryService(store, { send: async () => undefined }, { allowSyntheticIds: true, now });
  return { store, service };
}

describe('personKey', () => {
  it('is a keyed pseudonym of the national id: stable, secret-dependent, never the id', () => {
    const id = completed().parent.nationalId;
    const key = personKey(DEV_IDENTITY, id);
    expect(key).toBe(personKey(DEV_IDENTITY, id));
    expect(key).toMatch(/^[0-9a-f]{32}$/);
    expect(key).not.toContain(id);
    expect(personKey({ ...DEV_IDENTITY, secret: 'another-secret-of-at-least-32-chars!!' }, id)).not.toBe(key);
    expect(personKey(DEV_IDENTITY, activeFather().parent.nationalId)).not.toBe(key);
  });
});

describe('episodeKeptUntil', () => {
  const at = '2026-06-01T12:00:00.000Z';
  const withConsent = (status: string, consent: Record<string, unknown> | undefined) => {
    const e = completed();
    if (status !== 'finished') {
      e.status = status;
      delete e.closing;
      delete e.period.end;
    }
    if (consent) e.consent = { ...e.consent, ...consent };
    else delete e.consent;
    return parseEpisode(e);
  };
  it('keeps a planned or active episode without end', () => {
    expect(episodeKeptUntil(parseEpisode(plannedMinimal()), at)).toBeUndefined();
    expect(episodeKeptUntil(withConsent('active', { status: 'withdrawn' }), at)).toBeUndefined();
  });
  it('keeps an ended episode while its consent is active: until it expires, or without end', () => {
    expect(episodeKeptUntil(withConsent('finished', { expiresOn: '2027-01-12' }), at)).toBe('2027-01-12T00:00:00.000Z');
    const { expiresOn: _x, ...noExpiry } = completed().consent;
    const e = completed();
    e.consent = noExpiry;
    expect(episodeKeptUntil(parseEpisode(e), at)).toBeUndefined();
    // Already expired by date when stored: from the time it was stored.
    expect(episodeKeptUntil(withConsent('finished', { expiresOn: '2026-05-01' }), at)).toBe(at);
  });
  it('stops keeping an ended episode when stored, once its consent is withdrawn, declined or expired, or there is none', () => {
    for (const status of ['withdrawn', 'declined', 'expired']) expect(episodeKeptUntil(withConsent('finished', { status }), at), status).toBe(at);
    expect(episodeKeptUntil(withConsent('finished', undefined), at)).toBe(at);
  });
});

describe('stored at submission', () => {
  it('keeps the latest parsed episode per tenant and episode, replacing the previous version', async () => {
    let now = T0;
    const { store, service } = bridge(() => now);
    const e = completed();
    await service.submit(e, { caller: 'journal-north', tenant: 'clinic-north' });
    now += 60_000;
    const changed = { ...e, goals: e.goals.map((g: { status: string }, i: number) => (i === 0 ? { ...g, status: 'not-achieved' } : g)) };
    await service.submit(changed, { caller: 'journal-north', tenant: 'clinic-north' });
    const stored = await store.getEpisode('clinic-north', `${e.clinic.orgNumber}/${e.episodeId}`);
    expect(stored).toMatchObject({ tenant: 'clinic-north', episodeKey: `974557746/${e.episodeId}`, personKey: personKey(DEV_IDENTITY, e.parent.nationalId) });
    expect(stored?.storedAt).toBe(new Date(now).toISOString());
    expect(stored?.episode).toEqual(parseEpisode(changed));
    expect(stored?.episode.goals?.[0]?.status).toBe('not-achieved');
    // Another tenant's episode of the same id is not this one.
    expect(await store.getEpisode('clinic-west', `${e.clinic.orgNumber}/${e.episodeId}`)).toBeUndefined();
  });

  it('is found by episode id within the tenant, and by the parent across tenants', async () => {
    const { store, service } = bridge();
    const e = completed();
    await service.submit(e, { caller: 'journal-north', tenant: 'clinic-north' });
    await service.submit(e, { caller: 'journal-west', tenant: 'clinic-west' });
    await service.submit(activeFather(), { caller: 'journal-west', tenant: 'clinic-west' });
    expect((await store.findEpisodes('clinic-north', e.episodeId)).map((s) => s.tenant)).toEqual(['clinic-north']);
    expect(await store.findEpisodes('clinic-north', activeFather().episodeId)).toEqual([]);
    const mother = await store.findEpisodesByPerson(personKey(DEV_IDENTITY, e.parent.nationalId));
    expect(mother.map((s) => [s.tenant, s.episodeKey])).toEqual([
      ['clinic-north', `974557746/${e.episodeId}`],
      ['clinic-west', `974557746/${e.episodeId}`],
    ]);
    expect(await store.findEpisodesByPerson('0'.repeat(32))).toEqual([]);
  });

  it('is not stored when the episode is refused', async () => {
    const { store, service } = bridge();
    await expect(service.submit({ ...completed(), status: 'nonsense' })).rejects.toThrow();
    expect(await store.findEpisodes('local', completed().episodeId)).toEqual([]);
  });
});

describe('retention of stored episodes', () => {
  const finishedWith = (consent: Record<string, unknown>) => {
    const e = completed();
    e.consent = { ...e.consent, ...consent };
    return e;
  };

  it('purges an ended episode without a valid consent the retention period after it was stored, not before', async () => {
    const { store, service } = bridge();
    await service.submit(finishedWith({ status: 'withdrawn' }));
    expect(await purgeExpiredEpisodes(store, RETENTION, T0 + 29 * DAY)).toBe(0);
    expect(await store.findEpisodes('local', completed().episodeId)).toHaveLength(1);
    expect(await purgeExpiredEpisodes(store, RETENTION, T0 + 31 * DAY)).toBe(1);
    expect(await store.findEpisodes('local', completed().episodeId)).toEqual([]);
  });

  it('keeps an ended episode while its consent is valid, then the retention period after it expires', async () => {
    const { store, service } = bridge();
    await service.submit(finishedWith({ expiresOn: '2026-09-01' }));
    const expires = Date.parse('2026-09-01T00:00:00Z');
    expect(await purgeExpiredEpisodes(store, RETENTION, T0 + 60 * DAY)).toBe(0);
    expect(await purgeExpiredEpisodes(store, RETENTION, expires + 29 * DAY)).toBe(0);
    expect(await purgeExpiredEpisodes(store, RETENTION, expires + 31 * DAY)).toBe(1);
  });

  it('never purges a planned or active episode, however old', async () => {
    const { store, service } = bridge();
    await service.submit(plannedMinimal());
    await service.submit(activeFather());
    expect(await purgeExpiredEpisodes(store, RETENTION, T0 + 3650 * DAY)).toBe(0);
    expect(await store.findEpisodes('local', plannedMinimal().episodeId)).toHaveLength(1);
  });

  it('starts afresh when the episode is sent again', async () => {
    let now = T0;
    const { store, service } = bridge(() => now);
    await service.submit(finishedWith({ status: 'withdrawn' }));
    now = T0 + 20 * DAY;
    await service.submit(finishedWith({ status: 'withdrawn' }));
    expect(await purgeExpiredEpisodes(store, RETENTION, T0 + 31 * DAY)).toBe(0);
    expect(await purgeExpiredEpisodes(store, RETENTION, T0 + 51 * DAY)).toBe(1);
  });
});

describe('D1 table episodes (migration 0005, SQLite as D1 runs it)', () => {
  const DIR = resolve(import.meta.dirname, '../../src/sync/d1-migrations');
  it('finds by person and by episode id through their indexes, and the purge scans only episodes no longer kept', async () => {
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(':memory:');
    for (const f of readdirSync(DIR)
      .filter((x) => x.endsWith('.sql'))
      .sort())
      db.exec(readFileSync(resolve(DIR, f), 'utf8'));
    const plan = (sql: string) =>
      db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all()
        .map((r) => String(r.detail))
        .join('\n');
    expect(plan("SELECT episode FROM episodes WHERE person_key = 'p'")).toMatch(/INDEX episodes_by_person/);
    expect(plan("SELECT episode FROM episodes WHERE tenant = 't' AND episode_id = 'e'")).toMatch(/INDEX episodes_by_id/);
    expect(plan(PURGE_EPISODES_SQL)).toMatch(/INDEX episodes_expiring/);
    const insert = db.prepare(
      'INSERT INTO episodes (tenant, episode_key, episode_id, person_key, stored_at, kept_until, episode) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    insert.run('t', 'o/e1', 'e1', 'p', '2025-01-01', '2025-01-01', 'jwe');
    insert.run('t', 'o/e2', 'e2', 'p', '2025-01-01', null, 'jwe');
    insert.run('t', 'o/e3', 'e3', 'p', '2025-01-01', '2027-01-01', 'jwe');
    expect(() => insert.run('t', 'o/e1', 'e1', 'p', '2025-01-01', null, 'jwe')).toThrow(/UNIQUE/);
    expect(db.prepare(PURGE_EPISODES_SQL).run('2026', 10).changes).toBe(1);
    expect(
      db
        .prepare('SELECT episode_key FROM episodes ORDER BY episode_key')
        .all()
        .map((r) => r.episode_key),
    ).toEqual(['o/e2', 'o/e3']);
    db.close();
  });
});
