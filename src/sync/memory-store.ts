/** In-memory DeliveryStore for Node (CLI, local runs, tests). */
import type { Bundle } from '@medplum/fhirtypes';
import type { DeliveryStore, Job, JobStatus, LedgerRecord, NewJob } from './types.ts';

const copy = <T>(v: T): T => structuredClone(v);

export class MemoryStore implements DeliveryStore {
  private seq = 0;
  private readonly jobs = new Map<string, Job>();
  private readonly bundles = new Map<string, Bundle>();
  private readonly ledger = new Map<string, LedgerRecord>();

  async createJob(job: NewJob): Promise<Job> {
    const { bundle, ...rest } = job;
    const stored: Job = { ...copy(rest), seq: ++this.seq };
    this.jobs.set(stored.id, stored);
    this.bundles.set(stored.id, copy(bundle));
    return copy(stored);
  }
  async getJob(id: string) {
    const j = this.jobs.get(id);
    return j && copy(j);
  }
  async getBundle(id: string) {
    const b = this.bundles.get(id);
    return b && copy(b);
  }
  async saveJob(job: Job) {
    if (!this.jobs.has(job.id)) throw new Error('unknown job');
    this.jobs.set(job.id, copy(job));
  }
  async listJobs(filter: { status?: JobStatus[]; limit?: number }) {
    return [...this.jobs.values()]
      .filter((j) => !filter.status || filter.status.includes(j.status))
      .sort((a, b) => a.seq - b.seq)
      .slice(0, filter.limit ?? 100)
      .map(copy);
  }
  async getLedger(episodeKey: string, target: string) {
    const r = this.ledger.get(`${episodeKey}|${target}`);
    return r && copy(r);
  }
  async putLedger(record: LedgerRecord) {
    this.ledger.set(`${record.episodeKey}|${record.target}`, copy(record));
  }
}
