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

const readJob = (row: { seq: number; job: string }): Job => ({ ...(JSON.parse(row.job) as Omit<Job, 'seq'>), seq: row.seq });

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
        'INSERT INTO jobs (id, episode_key, parent_key, status, job, bundle, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING seq',
      )
      .bind(rest.id, rest.episodeKey, rest.parentKey, rest.status, JSON.stringify(rest), await gzip(JSON.stringify(bundle)), rest.createdAt, rest.updatedAt)
      .first<{ seq: number }>();
    if (!row) throw new Error('job was not stored');
    return { ...rest, seq: row.seq };
  }

  async getJob(id: string): Promise<Job | undefined> {
    const row = await this.db.prepare('SELECT seq, job FROM jobs WHERE id = ?1').bind(id).first<{ seq: number; job: string }>();
    return row ? readJob(row) : undefined;
  }

  async getBundle(id: string): Promise<Bundle | undefined> {
    const row = await this.db.prepare('SELECT bundle FROM jobs WHERE id = ?1').bind(id).first<{ bundle: ArrayBuffer | number[] }>();
    return row ? (JSON.parse(await gunzip(row.bundle)) as Bundle) : undefined;
  }

  async saveJob(job: Job): Promise<void> {
    await this.db.prepare('UPDATE jobs SET status = ?1, job = ?2, updated_at = ?3 WHERE id = ?4').bind(job.status, JSON.stringify(job), job.updatedAt, job.id).run();
  }

  async listJobs(filter: { status?: JobStatus[]; limit?: number }): Promise<Job[]> {
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000);
    const statuses = filter.status ?? [];
    const where = statuses.length ? `WHERE status IN (${statuses.map((_, i) => `?${i + 1}`).join(', ')})` : '';
    const { results } = await this.db
      .prepare(`SELECT seq, job FROM jobs ${where} ORDER BY seq LIMIT ${limit}`)
      .bind(...statuses)
      .all<{ seq: number; job: string }>();
    return results.map(readJob);
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
