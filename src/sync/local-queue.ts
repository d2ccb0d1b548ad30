/**
 * The delivery queue for Node (local start-up, CLI, tests): the same attempt logic as the
 * Worker's queue consumer, with writes serialised per parent and retries on timers.
 */

import { errorKind, log } from '../log.ts';
import { attemptJob, type DeliveryDeps } from './deliver.ts';
import type { DeliveryQueue } from './service.ts';

export interface LocalQueueOptions {
  /** Multiplies every retry delay (tests shrink waits; 1 in real use). */
  delayScale?: number;
  /** Called after every attempt, for observers and tests. */
  onAttempt?: (jobId: string, result: Awaited<ReturnType<typeof attemptJob>>) => void;
}

export class LocalQueue implements DeliveryQueue {
  private readonly deps: DeliveryDeps;
  private readonly opts: LocalQueueOptions;
  /** Tail of the chain of work per parent: one attempt at a time for one person. */
  private readonly lanes = new Map<string, Promise<void>>();
  private pending = 0;
  private idle: (() => void)[] = [];
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  /** Delays the retry policy asked for, in order (for tests and reports). */
  readonly requestedDelays: number[] = [];

  constructor(deps: DeliveryDeps, opts: LocalQueueOptions = {}) {
    this.deps = deps;
    this.opts = opts;
  }

  /** DeliveryQueue: queues an attempt of each job now (the service and the sweep send here). */
  async send(messages: { jobId: string; parentKey: string }[]): Promise<void> {
    for (const m of messages) this.enqueue(m.jobId, m.parentKey);
  }

  /** Queues an attempt of `jobId` on the lane of `parentKey`. */
  enqueue(jobId: string, parentKey: string, delayMs = 0): void {
    this.pending += 1;
    const run = () => {
      const prev = this.lanes.get(parentKey) ?? Promise.resolve();
      const next = prev.then(() => this.attempt(jobId, parentKey));
      this.lanes.set(parentKey, next);
      void next.finally(() => {
        if (this.lanes.get(parentKey) === next) this.lanes.delete(parentKey);
      });
    };
    if (delayMs > 0) {
      const t = setTimeout(
        () => {
          this.timers.delete(t);
          run();
        },
        delayMs * (this.opts.delayScale ?? 1),
      );
      this.timers.add(t);
    } else run();
  }

  private async attempt(jobId: string, parentKey: string): Promise<void> {
    try {
      const result = await attemptJob(jobId, this.deps);
      this.opts.onAttempt?.(jobId, result);
      if (result && !result.done) {
        this.requestedDelays.push(result.delayMs);
        this.enqueue(jobId, parentKey, result.delayMs);
      }
    } catch (e) {
      log('queue.attempt_crashed', { jobId, error: errorKind(e) });
    } finally {
      this.pending -= 1;
      if (this.pending === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** Resolves when every queued attempt, including retries, has run. */
  drain(): Promise<void> {
    return this.pending === 0 ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  /** Stops pending retries (shutdown). */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
