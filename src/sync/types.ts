/** Delivery jobs, per-target results and the ledger, as stored. */
import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import type { WriteCounts, WrittenResource } from './apply.ts';

export type JobStatus = 'queued' | 'retrying' | 'delivered' | 'failed' | 'dead';
export type TargetStatus = 'pending' | 'retrying' | 'delivered' | 'failed' | 'dead';

export interface TargetResult {
  status: TargetStatus;
  /** Resources written by the last successful delivery. */
  written?: number;
  /** Resources marked entered-in-error because they left the episode. */
  retracted?: number;
  /** Nothing changed since the last delivery: nothing was written. */
  unchanged?: boolean;
  /**
   * Per resource of the bundle, what the last successful delivery did on the server:
   * created, updated (including master data the bridge added to), or left unchanged
   * (existing master data with nothing to add, an update the server kept at the version the
   * ledger had, every entry of a re-send the ledger short-circuited).
   */
  counts?: WriteCounts;
  /** A later send of the same episode was delivered first: this one wrote nothing. */
  superseded?: boolean;
  deliveredAt?: string;
  /** Last failure, in words that carry no personal data. */
  error?: string;
  httpStatus?: number;
  /** The server's OperationOutcome when it refused. */
  outcome?: OperationOutcome;
}

export interface Job {
  id: string;
  /** Order of arrival across all jobs (assigned by the store). */
  seq: number;
  /** `{clinic org number}/{episodeId}`. */
  episodeKey: string;
  /** Pseudonymous key of the parent (hash), for serialising writes per person. */
  parentKey: string;
  contentHash: string;
  mappingVersion: string;
  status: JobStatus;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  nextAttemptAt?: string;
  targets: Record<string, TargetResult>;
  /**
   * Who submitted the job: a JWT's client id (`client_id`, `azp`) or subject, a static
   * API token's configured name, or `local` where the API is open. Never a token.
   */
  caller?: string;
  /**
   * Whose job this is: the tenant of its caller (src/auth/tenants.ts). Only that tenant reads,
   * lists or replays it; its ledger is that tenant's too.
   */
  tenant: string;
  /**
   * When the stored Bundle was purged (retention). The job, its hashes, per-target results
   * and the ledger stay; the content cannot be replayed any more.
   */
  purgedAt?: string;
}

/** A job to store; without a tenant it belongs to the default tenant (`local`). */
export interface NewJob extends Omit<Job, 'seq' | 'tenant'> {
  tenant?: string;
  bundle: Bundle;
}

/**
 * What was delivered of one episode to one target, per tenant: an episode id is unique within
 * a tenant, so two tenants sending the same clinic and episode id never share a ledger.
 */
export interface LedgerRecord {
  tenant: string;
  episodeKey: string;
  target: string;
  /** seq of the job whose content this is. */
  seq: number;
  contentHash: string;
  mappingVersion: string;
  deliveredAt: string;
  resources: (WrittenResource & { retracted?: boolean })[];
}

/** Durable storage of jobs and the ledger: D1 in the Worker, memory in Node. */
export interface DeliveryStore {
  createJob(job: NewJob): Promise<Job>;
  getJob(id: string): Promise<Job | undefined>;
  getBundle(id: string): Promise<Bundle | undefined>;
  saveJob(job: Job): Promise<void>;
  /** One tenant's jobs, in order of arrival. */
  listJobs(filter: { tenant: string; status?: JobStatus[]; limit?: number }): Promise<Job[]>;
  getLedger(tenant: string, episodeKey: string, target: string): Promise<LedgerRecord | undefined>;
  putLedger(record: LedgerRecord): Promise<void>;
  /**
   * Jobs that should have been attempted by now: `queued` and not touched since
   * `queuedBefore`, or `retrying` with a `nextAttemptAt` before `retryDueBefore`. Oldest first.
   */
  listStale(filter: { queuedBefore: string; retryDueBefore: string; limit: number }): Promise<Job[]>;
  /**
   * Drops the stored Bundles of finished jobs (delivered, failed, dead) last updated before
   * `finishedBefore`, longest finished first, at most `limit`; marks each job `purgedAt = at`. Jobs
   * that are not finished are never touched. Returns how many were purged.
   */
  purgeBundles(filter: { finishedBefore: string; at: string; limit: number }): Promise<number>;
}

/** Job states after which no attempt runs unless the job is replayed. */
export const FINISHED_STATUSES: readonly JobStatus[] = ['delivered', 'failed', 'dead'];
