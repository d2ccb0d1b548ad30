/** DeliveryStore on Cloudflare D1 (the Worker's durable storage). */
import type { Bundle } from '@medplum/fhirtypes';
import type { DeliveryStore, Job, JobStatus, LedgerRecord, NewJob } from './types.ts';

async function gzip(text: string): Promise<ArrayBuffer> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Response(stream).arrayBuffer();
}

async function gunzip(data: ArrayBuffer | Uint8Array | number[]): Promise<string> {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : Uint8Array.from(data as ArrayLike<number>);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).text();
}

type JobRow = { seq: number; job: string; caller: string | null; purged_at: string | null };
/** Columns a job is read from. `caller` and `purged_at` are authoritative over the JSON. */
const JOB_COLUMNS = 'seq, job, caller, purged_at';
const readJob = (row: JobRow): Job => {
  const { caller: _c, purgedAt: _p, ...job } = JSON.parse(row.job) as Omit<Job, 'seq'>;
  return { ...job, seq: row.seq, ...(row.caller ? { caller: row.caller } : {}), ...(row.purged_at ? { purgedAt: row.purged_at } : {}) };
};
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

export class D1Store implements DeliveryStore {
  private readonly db: D1Database;

  constructor(db: D1Database) {
    this.db = db;
  }

  async createJob(job: NewJob): Promise<Job> {
    const { bundle, ...rest } = job;
    // One statement: the job and its Bundle are stored together or not at all. The sequence
    // number is the row's own; it is read back from the column, never from the JSON.
    const row = await this.db
      .prepare(
        'INSERT INTO jobs (id, episode_key, parent_key, status, job, bundle, created_at, updated_at, caller) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING seq',
      )
      .bind(rest.id, rest.episodeKey, rest.parentKey, rest.status, JSON.stringify(rest), await gzip(JSON.stringify(bundle)), rest.createdAt, rest.updatedAt, rest.caller ?? null)
      .first<{ seq: number }>();
    if (!row) throw new Error('job was not stored');
    return { ...rest, seq: row.seq };
  }

  async getJob(id: string): Promise<Job | undefined> {
    const row = await this.db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?1`).bind(id).first<JobRow>();
    return row ? readJob(row) : undefined;
  }

  async getBundle(id: string): Promise<Bundle | undefined> {
    const row = await this.db.prepare('SELECT bundle, purged_at FROM jobs WHERE id = ?1').bind(id).first<{ bundle: ArrayBuffer | number[]; purged_at: string | null }>();
    return row && !row.purged_at ? (JSON.parse(await gunzip(row.bundle)) as Bundle) : undefined;
  }

  async saveJob(job: Job): Promise<void> {
    // caller and purged_at are never changed by a save: they are set once, in their own columns.
    const { caller: _c, purgedAt: _p, ...rest } = job;
    await this.db.prepare('UPDATE jobs SET status = ?1, job = ?2, updated_at = ?3 WHERE id = ?4').bind(job.status, JSON.stringify(rest), job.updatedAt, job.id).run();
  }

  async listJobs(filter: { status?: JobStatus[]; limit?: number }): Promise<Job[]> {
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000);
    const statuses = filter.status ?? [];
    const where = statuses.length ? `WHERE status IN (${statuses.map((_, i) => `?${i + 1}`).join(', ')})` : '';
    const { results } = await this.db
      .prepare(`SELECT ${JOB_COLUMNS} FROM jobs ${where} ORDER BY seq LIMIT ${limit}`)
      .bind(...statuses)
      .all<JobRow>();
    return results.map(readJob);
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
    return results.map(readJob);
  }

  async purgeBundles(filter: { finishedBefore: string; at: string; limit: number }): Promise<number> {
    // One statement, so a job cannot change state between being chosen and being purged.
    const r = await this.db
      .prepare(PURGE_SQL)
      .bind(filter.at, filter.finishedBefore, filter.limit)
      .run();
    return r.meta.changes ?? 0;
  }

  async getLedger(episodeKey: string, target: string): Promise<LedgerRecord | undefined> {
    const row = await this.db.prepare('SELECT record FROM ledger WHERE episode_key = ?1 AND target = ?2').bind(episodeKey, target).first<{ record: string }>();
    return row ? (JSON.parse(row.record) as LedgerRecord) : undefined;
  }

  async putLedger(record: LedgerRecord): Promise<void> {
    await this.db
      .prepare('INSERT INTO ledger (episode_key, target, record) VALUES (?1, ?2, ?3) ON CONFLICT (episode_key, target) DO UPDATE SET record = excluded.record')
      .bind(record.episodeKey, record.target, JSON.stringify(record))
      .run();
  }
}
