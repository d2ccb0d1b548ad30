/**
 * The D1 migrations over rows written before tenancy (SQLite, as D1 runs it; here Node's
 * built-in SQLite): 0003 gives every job the tenant of its recorded caller, or the default
 * tenant `local`, and every ledger row the tenant of the job whose content it records, and
 * keys the ledger by tenant.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIR = resolve(import.meta.dirname, '../../src/sync/d1-migrations');
const migration = (prefix: string) => readFileSync(resolve(DIR, readdirSync(DIR).find((f) => f.startsWith(prefix))!), 'utf8');

describe('migration 0003_tenants over existing rows', () => {
  it('backfills tenants from callers (else `local`), re-keys the ledger by tenant and indexes jobs by tenant', async () => {
    // node:sqlite (its experimental warning is off for the unit tests); the SQL it runs is what D1 runs.
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(':memory:');
    db.exec(migration('0001_'));
    db.exec(migration('0002_'));
    const job = db.prepare(
      "INSERT INTO jobs (id, episode_key, parent_key, status, job, bundle, created_at, updated_at, caller) VALUES (?, ?, 'p', 'delivered', '{}', X'00', 't', 't', ?)",
    );
    job.run('job-north', '974557746/VG-1', 'journal-north');
    job.run('job-unattributed', '974557746/VG-2', null);
    const ledger = db.prepare("INSERT INTO ledger (episode_key, target, record) VALUES (?, 'clinic', ?)");
    ledger.run('974557746/VG-1', JSON.stringify({ seq: 1, episodeKey: '974557746/VG-1' }));
    ledger.run('974557746/VG-2', JSON.stringify({ seq: 2, episodeKey: '974557746/VG-2' }));
    ledger.run('974557746/VG-3', JSON.stringify({ seq: 99, episodeKey: '974557746/VG-3' }));

    db.exec(migration('0003_'));

    expect(
      db
        .prepare('SELECT id, tenant FROM jobs ORDER BY seq')
        .all()
        .map((r) => ({ ...r })),
    ).toEqual([
      { id: 'job-north', tenant: 'journal-north' },
      { id: 'job-unattributed', tenant: 'local' },
    ]);
    expect(
      db
        .prepare('SELECT episode_key, tenant, record FROM ledger ORDER BY episode_key')
        .all()
        .map((r) => [r.episode_key, r.tenant]),
    ).toEqual([
      ['974557746/VG-1', 'journal-north'],
      ['974557746/VG-2', 'local'],
      ['974557746/VG-3', 'local'],
    ]);
    // The same episode and target for another tenant is a row of its own.
    db.prepare("INSERT INTO ledger (tenant, episode_key, target, record) VALUES ('journal-west', '974557746/VG-1', 'clinic', '{}')").run();
    expect(() =>
      db.prepare("INSERT INTO ledger (tenant, episode_key, target, record) VALUES ('journal-west', '974557746/VG-1', 'clinic', '{}')").run(),
    ).toThrow(/UNIQUE/);
    // A new job without a tenant gets the default.
    db.prepare(
      "INSERT INTO jobs (id, episode_key, parent_key, status, job, bundle, created_at, updated_at) VALUES ('job-new', 'e', 'p', 'queued', '{}', X'00', 't', 't')",
    ).run();
    expect(db.prepare("SELECT tenant FROM jobs WHERE id = 'job-new'").get()?.tenant).toBe('local');
    const plan = db
      .prepare("EXPLAIN QUERY PLAN SELECT seq FROM jobs WHERE tenant = 'local' ORDER BY seq")
      .all()
      .map((r) => String(r.detail));
    expect(plan.join('\n')).toMatch(/INDEX jobs_by_tenant/);
    db.close();
  });
});
