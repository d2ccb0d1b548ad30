/**
 * What the HTTP routes ask of delivery: submit an episode, read and list jobs, replay the
 * dead. Implemented over a store and a queue, so the Worker (D1 + Queues) and Node
 * (memory + LocalQueue) share the routes.
 */
import type { MapOptions } from '../mapping/bundle.ts';
import { resetForReplay, submitEpisode } from './deliver.ts';
import type { DeliveryStore, Job, JobStatus } from './types.ts';

export interface DeliveryQueue {
  /** Asks for attempts of these jobs, in order. */
  send(messages: { jobId: string; parentKey: string }[]): Promise<void>;
}

export interface DeliveryService {
  submit(input: unknown): Promise<Job>;
  /** Validates and records many episodes, sending them to the queue in batches. */
  submitMany(inputs: unknown[]): Promise<({ ok: true; job: Job } | { ok: false; error: unknown })[]>;
  getJob(id: string): Promise<Job | undefined>;
  listJobs(status: JobStatus[] | undefined, limit: number): Promise<Job[]>;
  /** Replays a dead or failed job; `replayed` is false for a job in any other state. */
  replay(id: string): Promise<{ job: Job; replayed: boolean } | undefined>;
}

export function createDeliveryService(
  store: DeliveryStore,
  queue: DeliveryQueue,
  opts: MapOptions & { now?: () => number; newId?: () => string } = {},
): DeliveryService {
  const deps = { store, now: opts.now ?? Date.now, newId: opts.newId ?? (() => crypto.randomUUID()) };
  const parse: MapOptions = { allowSyntheticIds: opts.allowSyntheticIds, identity: opts.identity };
  return {
    async submit(input) {
      const job = await submitEpisode(input, deps, parse);
      await queue.send([{ jobId: job.id, parentKey: job.parentKey }]);
      return job;
    },
    async submitMany(inputs) {
      const results: ({ ok: true; job: Job } | { ok: false; error: unknown })[] = [];
      for (const input of inputs) {
        try {
          results.push({ ok: true, job: await submitEpisode(input, deps, parse) });
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
      const r = await resetForReplay(id, store, deps.now());
      if (r?.replayed) await queue.send([{ jobId: r.job.id, parentKey: r.job.parentKey }]);
      return r;
    },
  };
}
