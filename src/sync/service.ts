/**
 * What the HTTP routes ask of delivery: submit an episode, read and list jobs, replay the
 * dead. Implemented over a store and a queue, so the Worker (D1 + Queues) and Node
 * (memory + LocalQueue) share the routes.
 */
import type { MapOptions } from '../mapping/bundle.ts';
import { resetForReplay, submitEpisode } from './deliver.ts';
import type { DeliveryStore, Job, JobStatus, NewJob } from './types.ts';

export interface DeliveryQueue {
  /** Asks for attempts of these jobs, in order. */
  send(messages: { jobId: string; parentKey: string }[]): Promise<void>;
}

export interface DeliveryService {
  /** `caller` is recorded on the job: who submitted it (see `Job.caller`), never a token. */
  submit(input: unknown, caller?: string): Promise<Job>;
  /** Validates and records many episodes, sending them to the queue in batches. */
  submitMany(inputs: unknown[], caller?: string): Promise<({ ok: true; job: Job } | { ok: false; error: unknown })[]>;
  getJob(id: string): Promise<Job | undefined>;
  listJobs(status: JobStatus[] | undefined, limit: number): Promise<Job[]>;
  /**
   * Replays a dead or failed job; `replayed` is false for a job in any other state, and for
   * one whose content was purged (`job.purgedAt`): that episode has to be sent again.
   */
  replay(id: string): Promise<{ job: Job; replayed: boolean } | undefined>;
}

/** The store as `submitEpisode` sees it, with every new job stamped with its caller. */
function stampingCaller(store: DeliveryStore, caller: string | undefined): DeliveryStore {
  if (caller === undefined) return store;
  const stamped: DeliveryStore = Object.create(store);
  stamped.createJob = (job: NewJob) => store.createJob({ ...job, caller });
  return stamped;
}

export function createDeliveryService(
  store: DeliveryStore,
  queue: DeliveryQueue,
  opts: MapOptions & { now?: () => number; newId?: () => string } = {},
): DeliveryService {
  const deps = { store, now: opts.now ?? Date.now, newId: opts.newId ?? (() => crypto.randomUUID()) };
  const parse: MapOptions = { allowSyntheticIds: opts.allowSyntheticIds, identity: opts.identity };
  return {
    async submit(input, caller) {
      const job = await submitEpisode(input, { ...deps, store: stampingCaller(store, caller) }, parse);
      await queue.send([{ jobId: job.id, parentKey: job.parentKey }]);
      return job;
    },
    async submitMany(inputs, caller) {
      const stamped = { ...deps, store: stampingCaller(store, caller) };
      const results: ({ ok: true; job: Job } | { ok: false; error: unknown })[] = [];
      for (const input of inputs) {
        try {
          results.push({ ok: true, job: await submitEpisode(input, stamped, parse) });
        } catch (error) {
          results.push({ ok: false, error });
        }
      }
      const messages = results.flatMap((r) => (r.ok ? [{ jobId: r.job.id, parentKey: r.job.parentKey }] : []));
      if (messages.length) await queue.send(messages);
      return results;
    },
    getJob: (id) => store.getJob(id),
    listJobs: (status, limit) => store.listJobs({ status, limit }),
    async replay(id) {
      const current = await store.getJob(id);
      if (!current) return undefined;
      if (current.purgedAt) return { job: current, replayed: false };
      const r = await resetForReplay(id, store, deps.now());
      if (r?.replayed) await queue.send([{ jobId: r.job.id, parentKey: r.job.parentKey }]);
      return r;
    },
  };
}
