/** In-memory DeliveryStore for Node (CLI, local runs, tests). */
import { DEFAULT_TENANT } from '../auth/tenants.ts';
import { episodeIdOf, episodeKeptUntil } from './episodes.ts';
import {
  ageSeconds,
  CLINIC_TARGET,
  type CoordinationRecord,
  type DeliveryHealth,
  type DeliveryStore,
  FINAL_REQUEST_STATUSES,
  FINISHED_STATUSES,
  type Job,
  type JobContent,
  type JobStatus,
  type LedgerRecord,
  type NewJob,
  type StoredEpisode,
} from './types.ts';

const copy = <T>(v: T): T => structuredClone(v);

export class MemoryStore implements DeliveryStore {
  private seq = 0;
  private readonly jobs = new Map<string, Job>();
  private readonly contents = new Map<string, JobContent>();
  private readonly ledger = new Map<string, LedgerRecord>();
  private readonly coordination = new Map<string, CoordinationRecord>();
  private readonly episodes = new Map<string, StoredEpisode>();

  async createJob(job: NewJob): Promise<Job> {
    const { bundle, bundles, auditEvents: audits, ...rest } = job;
    const stored: Job = { ...copy(rest), tenant: rest.tenant ?? DEFAULT_TENANT, seq: ++this.seq };
    this.jobs.set(stored.id, stored);
    this.contents.set(stored.id, copy({ bundles: { ...bundles, [CLINIC_TARGET]: bundle }, ...(audits ? { audits } : {}) }));
    return copy(stored);
  }
  async getContent(id: string) {
    if (this.jobs.get(id)?.purgedAt) return undefined;
    const c = this.contents.get(id);
    return c && copy(c);
  }
  async getJob(id: string) {
    const j = this.jobs.get(id);
    return j && copy(j);
  }
  async getBundle(id: string) {
    if (this.jobs.get(id)?.purgedAt) return undefined;
    const b = this.contents.get(id)?.bundles[CLINIC_TARGET];
    return b && copy(b);
  }
  async saveJob(job: Job) {
    const stored = this.jobs.get(job.id);
    if (!stored) throw new Error('unknown job');
    // A purge is final: a save from a copy read before it must not bring the mark back off.
    // The tenant is set once, when the job is created.
    this.jobs.set(job.id, { ...copy(job), tenant: stored.tenant, ...(stored.purgedAt ? { purgedAt: stored.purgedAt } : {}) });
  }
  async listJobs(filter: { tenant: string; status?: JobStatus[]; limit?: number }) {
    return [...this.jobs.values()]
      .filter((j) => j.tenant === filter.tenant && (!filter.status || filter.status.includes(j.status)))
      .sort((a, b) => a.seq - b.seq)
      .slice(0, filter.limit ?? 100)
      .map(copy);
  }
  async listStale(filter: { queuedBefore: string; retryDueBefore: string; limit: number }) {
    return [...this.jobs.values()]
      .filter(
        (j) =>
          (j.status === 'queued' && j.updatedAt < filter.queuedBefore) || (j.status === 'retrying' && (j.nextAttemptAt ?? j.updatedAt) < filter.retryDueBefore),
      )
      .sort((a, b) => a.seq - b.seq)
      .slice(0, filter.limit)
      .map(copy);
  }
  async purgeBundles(filter: { finishedBefore: string; at: string; limit: number }) {
    const due = [...this.jobs.values()]
      .filter((j) => !j.purgedAt && FINISHED_STATUSES.includes(j.status) && j.updatedAt < filter.finishedBefore)
      .sort((a, b) => (a.updatedAt < b.updatedAt ? -1 : a.updatedAt > b.updatedAt ? 1 : a.seq - b.seq))
      .slice(0, filter.limit);
    for (const j of due) {
      j.purgedAt = filter.at;
      this.contents.delete(j.id);
    }
    return due.length;
  }
  async getLedger(tenant: string, episodeKey: string, target: string) {
    const r = this.ledger.get(JSON.stringify([tenant, episodeKey, target]));
    return r && copy(r);
  }
  async putLedger(record: LedgerRecord) {
    this.ledger.set(JSON.stringify([record.tenant, record.episodeKey, record.target]), copy(record));
  }
  async putCoordination(record: CoordinationRecord) {
    this.coordination.set(JSON.stringify([record.tenant, record.episodeKey, record.target]), copy(record));
  }
  async listCoordinationDue(filter: { readBefore: string; limit: number }) {
    return [...this.coordination.values()]
      .filter((r) => r.readAt < filter.readBefore && r.requests.some((q) => !FINAL_REQUEST_STATUSES.includes(q.status)))
      .sort((a, b) => (a.readAt < b.readAt ? -1 : a.readAt > b.readAt ? 1 : 0))
      .slice(0, filter.limit)
      .map(copy);
  }
  async replaceCoordination(record: CoordinationRecord, readAt: string) {
    const key = JSON.stringify([record.tenant, record.episodeKey, record.target]);
    if (this.coordination.get(key)?.readAt === readAt) this.coordination.set(key, copy(record));
  }
  async listCoordination(tenant: string) {
    return [...this.coordination.values()]
      .filter((r) => r.tenant === tenant)
      .sort((a, b) => (a.episodeKey < b.episodeKey ? -1 : a.episodeKey > b.episodeKey ? 1 : a.target < b.target ? -1 : a.target > b.target ? 1 : 0))
      .map(copy);
  }
  async putEpisode(e: StoredEpisode) {
    this.episodes.set(JSON.stringify([e.tenant, e.episodeKey]), copy(e));
  }
  async getEpisode(tenant: string, episodeKey: string) {
    const e = this.episodes.get(JSON.stringify([tenant, episodeKey]));
    return e && copy(e);
  }
  private listEpisodes(pred: (e: StoredEpisode) => boolean): StoredEpisode[] {
    const order = (e: StoredEpisode) => JSON.stringify([e.tenant, e.episodeKey]);
    return [...this.episodes.values()]
      .filter(pred)
      .sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0))
      .map(copy);
  }
  async findEpisodesByPerson(personKey: string) {
    return this.listEpisodes((e) => e.personKey === personKey);
  }
  async findEpisodes(tenant: string, episodeId: string) {
    return this.listEpisodes((e) => e.tenant === tenant && episodeIdOf(e.episodeKey) === episodeId);
  }
  async purgeEpisodes(filter: { keptUntilBefore: string; limit: number }) {
    const due = [...this.episodes.entries()]
      .map(([k, e]) => ({ k, until: episodeKeptUntil(e.episode, e.storedAt) }))
      .filter((x): x is { k: string; until: string } => x.until !== undefined && x.until < filter.keptUntilBefore)
      .sort((a, b) => (a.until < b.until ? -1 : a.until > b.until ? 1 : 0))
      .slice(0, filter.limit);
    for (const x of due) this.episodes.delete(x.k);
    return due.length;
  }
  async deliveryHealth(tenant: string, now: number): Promise<DeliveryHealth> {
    const mine = [...this.jobs.values()].filter((j) => j.tenant === tenant);
    const waiting = mine.filter((j) => j.status === 'queued' || j.status === 'retrying');
    const oldest = waiting.reduce<string | undefined>((o, j) => (o === undefined || j.createdAt < o ? j.createdAt : o), undefined);
    const targets: DeliveryHealth['targets'] = {};
    // A dead or failed target makes its job dead or failed unless another target still retries (deliver.ts).
    for (const j of mine.filter((x) => x.status === 'dead' || x.status === 'failed')) {
      for (const [name, t] of Object.entries(j.targets)) {
        if (t.status !== 'dead' && t.status !== 'failed') continue;
        targets[name] ??= { dead: 0, failed: 0 };
        targets[name]![t.status]++;
      }
    }
    return { queueDepth: waiting.length, oldestWaitingSeconds: oldest === undefined ? null : ageSeconds(oldest, now), targets };
  }
}
