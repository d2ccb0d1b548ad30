/**
 * What the HTTP routes ask of delivery: submit an episode, read and list jobs, replay the
 * dead. Implemented over a store and a queue, so the Worker (D1 + Queues) and Node
 * (memory + LocalQueue) share the routes.
 */

import type { Bundle } from '@medplum/fhirtypes';
import { signSummary } from '../coordination/summary.ts';
import type { MapOptions } from '../mapping/bundle.ts';
import { type CoordinationEntry, listCoordination } from './coordination.ts';
import { resetForReplay, type SubmitOptions, submitEpisode } from './deliver.ts';
import type { CoordinationRecord, DeliveryHealth, DeliveryStore, Job, JobStatus, NewJob, StoredEpisode } from './types.ts';

export interface DeliveryQueue {
  /** Asks for attempts of these jobs, in order. */
  send(messages: { jobId: string; parentKey: string }[]): Promise<void>;
}

/**
 * Who submits: the caller recorded on the job (see `Job.caller`, never a token) and the
 * tenant it belongs to (see `Job.tenant`).
 */
export interface Owner {
  caller: string;
  tenant: string;
}

/** Whether a tenant may write now; when not, how many seconds to wait (`Retry-After`). */
export type Admission = { ok: true } | { ok: false; retryAfterSeconds: number };

/** A rate limit on the write routes, per tenant (the Worker's rate-limiting binding). */
export interface WriteLimiter {
  admit(tenant: string): Promise<Admission>;
}

export interface DeliveryService {
  /** Records the job for `owner` (the default tenant `local` when absent). */
  submit(input: unknown, owner?: Owner): Promise<Job>;
  /** Validates and records many episodes, sending them to the queue in batches. */
  submitMany(inputs: unknown[], owner?: Owner): Promise<({ ok: true; job: Job } | { ok: false; error: unknown })[]>;
  /** The job if it belongs to `tenant`; undefined for another tenant's job, as for none. */
  getJob(id: string, tenant: string): Promise<Job | undefined>;
  /** `tenant`'s jobs only. */
  listJobs(tenant: string, status: JobStatus[] | undefined, limit: number): Promise<Job[]>;
  /**
   * Replays a dead or failed job of `tenant` (undefined for another tenant's job, as for
   * none); `replayed` is false for a job in any other state, and for one whose content was
   * purged (`job.purgedAt`): that episode has to be sent again.
   */
  replay(id: string, tenant: string): Promise<{ job: Job; replayed: boolean } | undefined>;
  /**
   * `tenant`'s episodes with the coordination requests last read back from their primary
   * treatment servers, each with its overdue flag as of now (`listCoordination`).
   */
  listCoordination(tenant: string): Promise<CoordinationEntry[]>;
  /** Whether `tenant` may write now (rate limit); absent where writes are not limited. */
  admit?(tenant: string): Promise<Admission>;
  /** `tenant`'s latest stored versions of the episode with this id (one per clinic organisation that used it). */
  findEpisodes?(tenant: string, episodeId: string): Promise<StoredEpisode[]>;
  /** The coordination requests last read back from primary servers for one of `tenant`'s episodes (`{clinic org}/{episodeId}`). */
  requestsOf?(tenant: string, episodeKey: string): Promise<CoordinationRecord[]>;
  /** `tenant`'s queue depth, oldest waiting job and dead/failed jobs per target; absent where the store cannot tell. */
  deliveryHealth?(tenant: string): Promise<DeliveryHealth>;
  /** Signs a coordination summary document with the bridge's key; undefined where none is configured. */
  signSummary?(document: Bundle): Promise<Bundle>;
}

/** The store as `submitEpisode` sees it, with every new job stamped with its caller and tenant. */
function stampingOwner(store: DeliveryStore, owner: Owner | undefined): DeliveryStore {
  if (owner === undefined) return store;
  const stamped: DeliveryStore = Object.create(store);
  stamped.createJob = (job: NewJob) => store.createJob({ ...job, caller: owner.caller, tenant: owner.tenant });
  return stamped;
}

/**
 * The delivery service over a store and a queue. `primaryEndpoint` says which primary
 * treatment organisations have a target configured (their FHIR base URL): the sharing gate
 * opens only for those (shared contract `sharing.md`).
 */
export function createDeliveryService(
  store: DeliveryStore,
  queue: DeliveryQueue,
  opts: MapOptions & Pick<SubmitOptions, 'primaryEndpoint' | 'signingKeys'> & { now?: () => number; newId?: () => string; limiter?: WriteLimiter } = {},
): DeliveryService {
  const deps = { store, now: opts.now ?? Date.now, newId: opts.newId ?? (() => crypto.randomUUID()) };
  const base: SubmitOptions = {
    allowSyntheticIds: opts.allowSyntheticIds,
    identity: opts.identity,
    primaryEndpoint: opts.primaryEndpoint,
    signingKeys: opts.signingKeys,
  };
  const parse = (owner: Owner | undefined): SubmitOptions => (owner ? { ...base, caller: owner.caller } : base);
  return {
    async submit(input, owner) {
      const job = await submitEpisode(input, { ...deps, store: stampingOwner(store, owner) }, parse(owner));
      await queue.send([{ jobId: job.id, parentKey: job.parentKey }]);
      return job;
    },
    async submitMany(inputs, owner) {
      const stamped = { ...deps, store: stampingOwner(store, owner) };
      const results: ({ ok: true; job: Job } | { ok: false; error: unknown })[] = [];
      for (const input of inputs) {
        try {
          results.push({ ok: true, job: await submitEpisode(input, stamped, parse(owner)) });
        } catch (error) {
          results.push({ ok: false, error });
        }
      }
      const messages = results.flatMap((r) => (r.ok ? [{ jobId: r.job.id, parentKey: r.job.parentKey }] : []));
      if (messages.length) await queue.send(messages);
      return results;
    },
    async getJob(id, tenant) {
      const job = await store.getJob(id);
      return job?.tenant === tenant ? job : undefined;
    },
    listJobs: (tenant, status, limit) => store.listJobs({ tenant, status, limit }),
    listCoordination: (tenant) => listCoordination(store, tenant, deps.now()),
    async replay(id, tenant) {
      const current = await store.getJob(id);
      if (!current || current.tenant !== tenant) return undefined;
      if (current.purgedAt) return { job: current, replayed: false };
      const r = await resetForReplay(id, store, deps.now());
      if (r?.replayed) await queue.send([{ jobId: r.job.id, parentKey: r.job.parentKey }]);
      return r;
    },
    ...(opts.limiter ? { admit: (tenant: string) => opts.limiter!.admit(tenant) } : {}),
    findEpisodes: (tenant, episodeId) => store.findEpisodes(tenant, episodeId),
    requestsOf: async (tenant, episodeKey) => (await store.listCoordination(tenant)).filter((r) => r.episodeKey === episodeKey),
    ...(store.deliveryHealth ? { deliveryHealth: (tenant: string) => store.deliveryHealth!(tenant, deps.now()) } : {}),
    ...(opts.signingKeys?.keys.length ? { signSummary: (document: Bundle) => signSummary(document, opts.signingKeys!) } : {}),
  };
}
