/**
 * DeliveryStore on Cloudflare D1 (the Worker's durable storage). Patient data is stored only
 * encrypted (src/sync/crypto.ts): the Bundle (gzip, then JWE), the per-target `error` and
 * `outcome` of each job (the FHIR servers' words, which may quote what was sent; one JWE in
 * the job JSON's `sealed`), and each ledger record (its keys are conditional URLs that can
 * carry a national id). Columns used to find rows (id, tenant, caller, status, times, keys
 * that are pseudonyms or `{clinic org}/{episodeId}`) stay in clear.
 *
 * Rows written before encryption (gzip Bundles, clear JSON) are still read; they are sealed
 * when next saved, and their Bundles go with the retention purge.
 *
 * The `bundle` column holds a job's content: since primary treatment targets, one Bundle per
 * target and the AuditEvents still to write (`{"jobContent": 1, "bundles": …, "audits": …}`);
 * before, the clinic's Bundle alone, which is still read as `{bundles: {clinic}}`.
 *
 * Coordination requests read back from primary servers (table `coordination`, migration 0004)
 * are kept in clear: status, dates and identifier values of Tasks, no personal data.
 *
 * Stored episodes (table `episodes`, migration 0005; src/sync/episodes.ts): the episode JSON as
 * JWE bound to its tenant and episode key; tenant, keys, the parent's person key (a pseudonym)
 * and the retention times in clear.
 */
import type { Bundle } from '@medplum/fhirtypes';
import { DEFAULT_TENANT } from '../auth/tenants.ts';
import type { Episode } from '../domain/episode.ts';
import { type DataCipher, isJwe } from './crypto.ts';
import { episodeIdOf, episodeKeptUntil } from './episodes.ts';
import {
  ageSeconds,
  CLINIC_TARGET,
  type CoordinationRecord,
  type DeliveryHealth,
  type DeliveryStore,
  FINAL_REQUEST_STATUSES,
  type Job,
  type JobContent,
  type JobStatus,
  type LedgerRecord,
  type NewJob,
  type StoredEpisode,
  type TargetResult,
} from './types.ts';

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function gunzip(data: ArrayBuffer | Uint8Array | number[]): Promise<string> {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data instanceof Uint8Array ? data : Uint8Array.from(data as ArrayLike<number>);
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).text();
}

type JobRow = { seq: number; job: string; caller: string | null; tenant: string | null; purged_at: string | null };
/** Columns a job is read from. `caller`, `tenant` and `purged_at` are authoritative over the JSON. */
const JOB_COLUMNS = 'seq, job, caller, tenant, purged_at';

/** Where each encrypted value belongs (bound into its JWE header, see crypto.ts). */
const context = {
  bundle: (jobId: string) => `job/${jobId}/bundle`,
  targets: (jobId: string) => `job/${jobId}/targets`,
  ledger: (r: { tenant: string; episodeKey: string; target: string }) => `ledger/${JSON.stringify([r.tenant, r.episodeKey, r.target])}`,
  episode: (r: { tenant: string; episodeKey: string }) => `episode/${JSON.stringify([r.tenant, r.episodeKey])}`,
};

/**
 * Purge of stored episodes: ?1 kept until before, ?2 limit. Only rows with a `kept_until` are
 * candidates (the partial index holds exactly those). Exported for the query-plan test.
 */
export const PURGE_EPISODES_SQL =
  'DELETE FROM episodes WHERE rowid IN (SELECT rowid FROM episodes INDEXED BY episodes_expiring WHERE kept_until IS NOT NULL AND kept_until < ?1 ORDER BY kept_until LIMIT ?2)';

type EpisodeRow = { tenant: string; episode_key: string; person_key: string; stored_at: string; episode: string };
const EPISODE_COLUMNS = 'tenant, episode_key, person_key, stored_at, episode';

/** The parts of a target result that can carry patient data: the server's words. */
type SealedParts = Record<string, Pick<TargetResult, 'error' | 'outcome'>>;
type StoredJob = Omit<Job, 'seq' | 'caller' | 'tenant' | 'purgedAt'> & { sealed?: string };
/** Must match the partial index jobs_unpurged word for word, so SQLite uses it. */
const UNPURGED_FINISHED = "purged_at IS NULL AND status IN ('delivered', 'failed', 'dead')";
/**
 * Purge: ?1 the time of the purge, ?2 finished before, ?3 limit. The column is NOT NULL
 * (0001), so the content is replaced by an empty blob. INDEXED BY: without statistics
 * SQLite prefers jobs_by_status, which would walk every delivered job ever kept; the partial
 * index holds only those whose Bundle is still here. Exported for the query-plan test.
 */
export const PURGE_SQL = `UPDATE jobs SET bundle = X'', purged_at = ?1
  WHERE seq IN (SELECT seq FROM jobs INDEXED BY jobs_unpurged WHERE ${UNPURGED_FINISHED} AND updated_at < ?2 ORDER BY updated_at, seq LIMIT ?3)`;

/** Queue depth and oldest waiting job of tenant ?1 (index jobs_by_tenant_status). Exported for tests. */
export const HEALTH_WAITING_SQL = "SELECT COUNT(*) AS depth, MIN(created_at) AS oldest FROM jobs WHERE tenant = ?1 AND status IN ('queued', 'retrying')";
/**
 * Dead and failed targets of tenant ?1, per target. Target statuses are in clear in the job JSON
 * (only the servers' `error` and `outcome` are sealed); a dead or failed target makes its job
 * dead or failed unless another target still retries, so only those jobs are read.
 */
export const HEALTH_TARGETS_SQL = `SELECT t.key AS target, json_extract(t.value, '$.status') AS status, COUNT(*) AS n
  FROM jobs, json_each(jobs.job, '$.targets') AS t
  WHERE jobs.tenant = ?1 AND jobs.status IN ('dead', 'failed') AND json_extract(t.value, '$.status') IN ('dead', 'failed')
  GROUP BY t.key, json_extract(t.value, '$.status')`;

export class D1Store implements DeliveryStore {
  private readonly db: D1Database;
  private readonly cipher: DataCipher;

  /** `cipher` encrypts and decrypts the patient data (DATA_ENCRYPTION_KEYS). */
  constructor(db: D1Database, cipher: DataCipher) {
    this.db = db;
    this.cipher = cipher;
  }

  /** The job as stored in its JSON column: without the columns' fields, server texts sealed. */
  private async storedJob(job: Omit<Job, 'seq'>): Promise<StoredJob> {
    const { caller: _c, tenant: _t, purgedAt: _p, ...rest } = job;
    const parts: SealedParts = {};
    const targets: Record<string, TargetResult> = {};
    for (const [name, t] of Object.entries(rest.targets)) {
      const { error, outcome, ...open } = t;
      targets[name] = open;
      if (error !== undefined || outcome !== undefined)
        parts[name] = { ...(error !== undefined ? { error } : {}), ...(outcome !== undefined ? { outcome } : {}) };
    }
    const stored: StoredJob = { ...rest, targets };
    if (Object.keys(parts).length) stored.sealed = await this.cipher.seal(JSON.stringify(parts), context.targets(job.id));
    return stored;
  }

  private async readJob(row: JobRow): Promise<Job> {
    const { sealed, caller: _c, tenant: _t, purgedAt: _p, ...job } = JSON.parse(row.job) as StoredJob & Partial<Pick<Job, 'caller' | 'tenant' | 'purgedAt'>>;
    if (sealed !== undefined) {
      const parts = JSON.parse(await this.cipher.openText(sealed, context.targets(job.id))) as SealedParts;
      for (const [name, p] of Object.entries(parts)) if (job.targets[name]) job.targets[name] = { ...job.targets[name], ...p };
    }
    return {
      ...job,
      seq: row.seq,
      tenant: row.tenant ?? DEFAULT_TENANT,
      ...(row.caller ? { caller: row.caller } : {}),
      ...(row.purged_at ? { purgedAt: row.purged_at } : {}),
    };
  }

  async createJob(job: NewJob): Promise<Job> {
    const { bundle, bundles, auditEvents: audits, ...fields } = job;
    const rest: Omit<Job, 'seq'> = { ...fields, tenant: fields.tenant ?? DEFAULT_TENANT };
    const content = { jobContent: 1, bundles: { ...bundles, [CLINIC_TARGET]: bundle }, ...(audits ? { audits } : {}) };
    const sealedBundle = await this.cipher.seal(await gzip(JSON.stringify(content)), context.bundle(rest.id));
    // One statement: the job and its Bundle are stored together or not at all. The sequence
    // number is the row's own; it is read back from the column, never from the JSON.
    const row = await this.db
      .prepare(
        'INSERT INTO jobs (id, episode_key, parent_key, status, job, bundle, created_at, updated_at, caller, tenant) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING seq',
      )
      .bind(
        rest.id,
        rest.episodeKey,
        rest.parentKey,
        rest.status,
        JSON.stringify(await this.storedJob(rest)),
        sealedBundle,
        rest.createdAt,
        rest.updatedAt,
        rest.caller ?? null,
        rest.tenant,
      )
      .first<{ seq: number }>();
    if (!row) throw new Error('job was not stored');
    return { ...rest, seq: row.seq };
  }

  async getJob(id: string): Promise<Job | undefined> {
    const row = await this.db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?1`).bind(id).first<JobRow>();
    return row ? this.readJob(row) : undefined;
  }

  async getBundle(id: string): Promise<Bundle | undefined> {
    return (await this.getContent(id))?.bundles[CLINIC_TARGET];
  }

  async getContent(id: string): Promise<JobContent | undefined> {
    const row = await this.db
      .prepare('SELECT bundle, purged_at FROM jobs WHERE id = ?1')
      .bind(id)
      .first<{ bundle: string | ArrayBuffer | number[]; purged_at: string | null }>();
    if (!row || row.purged_at) return undefined;
    // A row from before encryption holds the gzip bytes themselves.
    const gz = isJwe(row.bundle) ? await this.cipher.open(row.bundle, context.bundle(id)) : (row.bundle as ArrayBuffer | number[]);
    const stored = JSON.parse(await gunzip(gz)) as (JobContent & { jobContent: 1 }) | Bundle;
    // A row from before per-target content holds the clinic's Bundle itself.
    if ('resourceType' in stored) return { bundles: { [CLINIC_TARGET]: stored } };
    const { jobContent: _v, ...content } = stored;
    return content;
  }

  async saveJob(job: Job): Promise<void> {
    // caller, tenant and purged_at are never changed by a save: they are set once, in their own columns.
    const { seq: _s, ...rest } = job;
    await this.db
      .prepare('UPDATE jobs SET status = ?1, job = ?2, updated_at = ?3 WHERE id = ?4')
      .bind(job.status, JSON.stringify(await this.storedJob(rest)), job.updatedAt, job.id)
      .run();
  }

  async listJobs(filter: { tenant: string; status?: JobStatus[]; limit?: number }): Promise<Job[]> {
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000);
    const statuses = filter.status ?? [];
    const byStatus = statuses.length ? ` AND status IN (${statuses.map((_, i) => `?${i + 2}`).join(', ')})` : '';
    const { results } = await this.db
      .prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE tenant = ?1${byStatus} ORDER BY seq LIMIT ${limit}`)
      .bind(filter.tenant, ...statuses)
      .all<JobRow>();
    return Promise.all(results.map((r) => this.readJob(r)));
  }

  async listStale(filter: { queuedBefore: string; retryDueBefore: string; limit: number }): Promise<Job[]> {
    const { results } = await this.db
      .prepare(
        `SELECT ${JOB_COLUMNS} FROM jobs
         WHERE (status = 'queued' AND updated_at < ?1)
            OR (status = 'retrying' AND COALESCE(json_extract(job, '$.nextAttemptAt'), updated_at) < ?2)
         ORDER BY seq LIMIT ?3`,
      )
      .bind(filter.queuedBefore, filter.retryDueBefore, filter.limit)
      .all<JobRow>();
    return Promise.all(results.map((r) => this.readJob(r)));
  }

  async purgeBundles(filter: { finishedBefore: string; at: string; limit: number }): Promise<number> {
    // One statement, so a job cannot change state between being chosen and being purged.
    const r = await this.db.prepare(PURGE_SQL).bind(filter.at, filter.finishedBefore, filter.limit).run();
    return r.meta.changes ?? 0;
  }

  async getLedger(tenant: string, episodeKey: string, target: string): Promise<LedgerRecord | undefined> {
    const row = await this.db
      .prepare('SELECT record FROM ledger WHERE tenant = ?1 AND episode_key = ?2 AND target = ?3')
      .bind(tenant, episodeKey, target)
      .first<{ record: string }>();
    if (!row) return undefined;
    // A record from before encryption is clear JSON.
    const text = isJwe(row.record) ? await this.cipher.openText(row.record, context.ledger({ tenant, episodeKey, target })) : row.record;
    return { ...(JSON.parse(text) as LedgerRecord), tenant };
  }

  async putLedger(record: LedgerRecord): Promise<void> {
    const sealed = await this.cipher.seal(JSON.stringify(record), context.ledger(record));
    await this.db
      .prepare(
        'INSERT INTO ledger (tenant, episode_key, target, record) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant, episode_key, target) DO UPDATE SET record = excluded.record',
      )
      .bind(record.tenant, record.episodeKey, record.target, sealed)
      .run();
  }

  async putCoordination(record: CoordinationRecord): Promise<void> {
    await this.db
      .prepare(
        'INSERT INTO coordination (tenant, episode_key, target, read_at, requests) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant, episode_key, target) DO UPDATE SET read_at = excluded.read_at, requests = excluded.requests',
      )
      .bind(record.tenant, record.episodeKey, record.target, record.readAt, JSON.stringify(record.requests))
      .run();
  }

  async listCoordinationDue(filter: { readBefore: string; limit: number }): Promise<CoordinationRecord[]> {
    // `requests` is plain JSON (no personal data, not encrypted), so SQLite's JSON functions see
    // the statuses: rows whose requests are all final never come back.
    const final = FINAL_REQUEST_STATUSES.map((_, i) => `?${i + 3}`).join(', ');
    const { results } = await this.db
      .prepare(
        `SELECT tenant, episode_key, target, read_at, requests FROM coordination WHERE read_at < ?1 AND EXISTS (SELECT 1 FROM json_each(coordination.requests) AS q WHERE json_extract(q.value, '$.status') NOT IN (${final})) ORDER BY read_at, tenant, episode_key, target LIMIT ?2`,
      )
      .bind(filter.readBefore, filter.limit, ...FINAL_REQUEST_STATUSES)
      .all<{ tenant: string; episode_key: string; target: string; read_at: string; requests: string }>();
    return results.map((r) => ({
      tenant: r.tenant,
      episodeKey: r.episode_key,
      target: r.target,
      readAt: r.read_at,
      requests: JSON.parse(r.requests) as CoordinationRecord['requests'],
    }));
  }

  async replaceCoordination(record: CoordinationRecord, readAt: string): Promise<void> {
    await this.db
      .prepare('UPDATE coordination SET read_at = ?4, requests = ?5 WHERE tenant = ?1 AND episode_key = ?2 AND target = ?3 AND read_at = ?6')
      .bind(record.tenant, record.episodeKey, record.target, record.readAt, JSON.stringify(record.requests), readAt)
      .run();
  }

  async listCoordination(tenant: string): Promise<CoordinationRecord[]> {
    const { results } = await this.db
      .prepare('SELECT episode_key, target, read_at, requests FROM coordination WHERE tenant = ?1 ORDER BY episode_key, target')
      .bind(tenant)
      .all<{ episode_key: string; target: string; read_at: string; requests: string }>();
    return results.map((r) => ({
      tenant,
      episodeKey: r.episode_key,
      target: r.target,
      readAt: r.read_at,
      requests: JSON.parse(r.requests) as CoordinationRecord['requests'],
    }));
  }

  async putEpisode(e: StoredEpisode): Promise<void> {
    const sealed = await this.cipher.seal(JSON.stringify(e.episode), context.episode(e));
    await this.db
      .prepare(
        `INSERT INTO episodes (tenant, episode_key, episode_id, person_key, stored_at, kept_until, episode) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant, episode_key) DO UPDATE SET person_key = excluded.person_key, stored_at = excluded.stored_at, kept_until = excluded.kept_until, episode = excluded.episode`,
      )
      .bind(e.tenant, e.episodeKey, episodeIdOf(e.episodeKey), e.personKey, e.storedAt, episodeKeptUntil(e.episode, e.storedAt) ?? null, sealed)
      .run();
  }

  private async readEpisode(row: EpisodeRow): Promise<StoredEpisode> {
    const where = { tenant: row.tenant, episodeKey: row.episode_key };
    const episode = JSON.parse(await this.cipher.openText(row.episode, context.episode(where))) as Episode;
    return { ...where, personKey: row.person_key, episode, storedAt: row.stored_at };
  }

  async getEpisode(tenant: string, episodeKey: string): Promise<StoredEpisode | undefined> {
    const row = await this.db
      .prepare(`SELECT ${EPISODE_COLUMNS} FROM episodes WHERE tenant = ?1 AND episode_key = ?2`)
      .bind(tenant, episodeKey)
      .first<EpisodeRow>();
    return row ? this.readEpisode(row) : undefined;
  }

  async findEpisodesByPerson(personKey: string): Promise<StoredEpisode[]> {
    const { results } = await this.db
      .prepare(`SELECT ${EPISODE_COLUMNS} FROM episodes WHERE person_key = ?1 ORDER BY tenant, episode_key`)
      .bind(personKey)
      .all<EpisodeRow>();
    return Promise.all(results.map((r) => this.readEpisode(r)));
  }

  async findEpisodes(tenant: string, episodeId: string): Promise<StoredEpisode[]> {
    const { results } = await this.db
      .prepare(`SELECT ${EPISODE_COLUMNS} FROM episodes WHERE tenant = ?1 AND episode_id = ?2 ORDER BY episode_key`)
      .bind(tenant, episodeId)
      .all<EpisodeRow>();
    return Promise.all(results.map((r) => this.readEpisode(r)));
  }

  async purgeEpisodes(filter: { keptUntilBefore: string; limit: number }): Promise<number> {
    const r = await this.db.prepare(PURGE_EPISODES_SQL).bind(filter.keptUntilBefore, filter.limit).run();
    return r.meta.changes ?? 0;
  }

  async deliveryHealth(tenant: string, now: number): Promise<DeliveryHealth> {
    const [waiting, perTarget] = await this.db.batch<Record<string, unknown>>([
      this.db.prepare(HEALTH_WAITING_SQL).bind(tenant),
      this.db.prepare(HEALTH_TARGETS_SQL).bind(tenant),
    ]);
    const w = waiting?.results[0] as { depth: number; oldest: string | null } | undefined;
    const targets: DeliveryHealth['targets'] = {};
    for (const r of (perTarget?.results ?? []) as { target: string; status: 'dead' | 'failed'; n: number }[]) {
      targets[r.target] ??= { dead: 0, failed: 0 };
      targets[r.target]![r.status] = r.n;
    }
    return { queueDepth: w?.depth ?? 0, oldestWaitingSeconds: w?.oldest ? ageSeconds(w.oldest, now) : null, targets };
  }
}
