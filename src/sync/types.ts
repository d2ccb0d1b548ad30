/** Delivery jobs, per-target results and the ledger, as stored. */
import type { AuditEvent, Bundle, OperationOutcome } from '@medplum/fhirtypes';
import type { Episode } from '../domain/episode.ts';
import type { WriteCounts, WrittenResource } from './apply.ts';

/** The target that receives every episode: the clinic's own FHIR server. */
export const CLINIC_TARGET = 'clinic';

/** The job target name of the primary treatment team with this organisation number. */
export const primaryTargetName = (orgNumber: string): string => `primary.${orgNumber}`;

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
  /**
   * Primary treatment targets only: the bridge's own coordination requests (Task) for this
   * episode as the primary server holds them, read back after the last successful delivery.
   */
  requests?: CoordinationRequest[];
  /** When `requests` was read (absent when the read-back failed or was never done). */
  requestsReadAt?: string;
}

/**
 * One coordination request (Task) of the bridge on a primary treatment server, as read back
 * (shared contract `sharing.md`, "Coordination requests"). Carries no personal data.
 */
export interface CoordinationRequest {
  /** `guidance-started`, `risk-follow-up` or `guidance-ended` (CodeSystem coordination-request). */
  occasion: string;
  /** The request's business identifier value (`{episodeId}/…`), as the bridge wrote it. */
  identifier: string;
  /** Task.status on the primary server; `not-found` when the Task is no longer there. */
  status: string;
  /** Task.priority (`routine`, `urgent`). */
  priority?: string;
  /** Task.restriction.period.end: when the request is due (risk follow-up: a day after the assessment). */
  due?: string;
  authoredOn?: string;
  /** Task.meta.lastUpdated on the primary server. */
  lastModified?: string;
}

/**
 * A disclosure to a primary treatment target, or a refusal because of consent, to be audited
 * on the clinic's own server (src/coordination/audit.ts): written (`PUT AuditEvent/{id}`) only
 * once the outcome it records is known, retried like any write, never duplicated.
 */
export interface JobAudit {
  /** Names the stored AuditEvent of the job content (`{job id}|{target}`). */
  key: string;
  /** The primary target (`primary.<orgNumber>`) the disclosure or refusal concerns. */
  target: string;
  kind: 'disclosure' | 'refusal';
  /**
   * waiting: the outcome is not known yet (its target has not finished); retrying: the write
   * failed and is tried again; written; skipped: nothing was sent (an unchanged or superseded
   * send), so nothing was disclosed; failed/dead: the write was refused or gave up.
   */
  status: 'waiting' | 'retrying' | 'written' | 'skipped' | 'failed' | 'dead';
  /** Replays of the job after this audit was written: each later outcome gets its own AuditEvent. */
  round: number;
  /** The outcome recorded, fixed once known so that a retried write sends the same event. */
  outcome?: 'success' | 'failed' | 'refused';
  /** When the outcome happened (the AuditEvent's `recorded`). */
  at?: string;
  /** Why it failed or was refused, in words without personal data. */
  reason?: string;
  /** Write attempts of this audit (its own retry budget). */
  attempts: number;
  writtenAt?: string;
  /** Last failure of the write, in words without personal data. */
  error?: string;
  httpStatus?: number;
}

/**
 * What a job sends: one Bundle per target (`clinic`, `primary.<orgNumber>`) and the
 * AuditEvents of its disclosures (by `JobAudit.key`, outcome still to be set). Patient data:
 * stored encrypted where the store is durable.
 */
export interface JobContent {
  bundles: Record<string, Bundle>;
  audits?: Record<string, AuditEvent>;
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
  /** Disclosures and consent refusals to audit on the clinic's server (see JobAudit). */
  audits?: JobAudit[];
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
  /** The clinic target's Bundle. */
  bundle: Bundle;
  /** Bundles of the other targets (`primary.<orgNumber>`), by target name. */
  bundles?: Record<string, Bundle>;
  /** AuditEvents to write once their outcome is known, by `JobAudit.key`. */
  auditEvents?: Record<string, AuditEvent>;
}

/**
 * The latest coordination requests read back for one episode from one primary target, per
 * tenant (what `listCoordination` lists). No personal data.
 */
export interface CoordinationRecord {
  tenant: string;
  episodeKey: string;
  target: string;
  readAt: string;
  requests: CoordinationRequest[];
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

/**
 * The latest version of an episode a tenant submitted, kept so that the coordination summary can
 * be built from it (`GET /v1/episodes/{id}/summary`, SMART launch). Patient data: stored
 * encrypted where the store is durable. Kept while the episode is planned or active or its
 * consent is valid, then purged with the retention period (src/sync/episodes.ts).
 */
export interface StoredEpisode {
  tenant: string;
  /** `{clinic org number}/{episodeId}`, as jobs use. */
  episodeKey: string;
  /** `personKey(identity, parent national id)` (src/sync/episodes.ts): a keyed pseudonym, indexed. */
  personKey: string;
  /** The latest parsed episode. */
  episode: Episode;
  /** When it was stored (ISO instant). */
  storedAt: string;
}

/** Durable storage of jobs and the ledger: D1 in the Worker, memory in Node. */
export interface DeliveryStore {
  createJob(job: NewJob): Promise<Job>;
  getJob(id: string): Promise<Job | undefined>;
  /** The clinic target's Bundle (undefined once purged). */
  getBundle(id: string): Promise<Bundle | undefined>;
  /** Every target's Bundle and the pending AuditEvents (undefined once purged). Jobs stored with one Bundle read as `{bundles: {clinic}}`. */
  getContent(id: string): Promise<JobContent | undefined>;
  saveJob(job: Job): Promise<void>;
  /** One tenant's jobs, in order of arrival. */
  listJobs(filter: { tenant: string; status?: JobStatus[]; limit?: number }): Promise<Job[]>;
  getLedger(tenant: string, episodeKey: string, target: string): Promise<LedgerRecord | undefined>;
  putLedger(record: LedgerRecord): Promise<void>;
  /** Keeps the requests just read back for an episode and target (replacing the previous read). */
  putCoordination(record: CoordinationRecord): Promise<void>;
  /** One tenant's latest read-backs, by episode key then target. */
  listCoordination(tenant: string): Promise<CoordinationRecord[]>;
  /**
   * Read-backs of every tenant last read before `readBefore` that still hold a request not in a
   * final status (FINAL_REQUEST_STATUSES), longest unread first, at most `limit` (the scheduled
   * refresh, `refreshCoordination`).
   */
  listCoordinationDue(filter: { readBefore: string; limit: number }): Promise<CoordinationRecord[]>;
  /**
   * Like putCoordination, but only while the stored read-back is still the one read at
   * `readAt`: a later read (a delivery's, meanwhile) is never replaced by an older one.
   */
  replaceCoordination(record: CoordinationRecord, readAt: string): Promise<void>;
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
  /** Keeps the latest version of an episode, replacing the tenant's previous one. */
  putEpisode(e: StoredEpisode): Promise<void>;
  getEpisode(tenant: string, episodeKey: string): Promise<StoredEpisode | undefined>;
  /** Every stored episode of a parent, across tenants (SMART launch lookup), by tenant then episode key. */
  findEpisodesByPerson(personKey: string): Promise<StoredEpisode[]>;
  /** A tenant's stored episodes with this episode id (one per clinic organisation that used it), by episode key. */
  findEpisodes(tenant: string, episodeId: string): Promise<StoredEpisode[]>;
  /**
   * Deletes stored episodes that stopped being kept (`episodeKeptUntil`) before `keptUntilBefore`,
   * at most `limit`. An episode still planned or active, or with a valid consent without an
   * expiry, is never purged. Returns how many were deleted.
   */
  purgeEpisodes(filter: { keptUntilBefore: string; limit: number }): Promise<number>;
  /** One tenant's delivery health as of `now` (GET /v1/health/deliveries); absent where the store cannot tell. */
  deliveryHealth?(tenant: string, now: number): Promise<DeliveryHealth>;
}

/**
 * What an operator watches for one tenant: counts, ages and target names only, no personal data.
 * `queueDepth`: jobs `queued` or `retrying`; `oldestWaitingSeconds`: age of the oldest of them by
 * its `createdAt` (null when none waits); `targets`: per target name, how many jobs left it
 * `dead` or `failed` (targets with neither are left out).
 */
/** Whole seconds from an ISO time to `now` (ms), never negative (a clock behind the stored time). */
export function ageSeconds(iso: string, now: number): number {
  return Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
}

export interface DeliveryHealth {
  queueDepth: number;
  oldestWaitingSeconds: number | null;
  targets: Record<string, { dead: number; failed: number }>;
}

/**
 * Task statuses after which the primary team will change nothing more
 * (https://hl7.org/fhir/R4/valueset-task-status.html), and `not-found` (the Task is gone): the
 * scheduled refresh does not read such requests again.
 */
export const FINAL_REQUEST_STATUSES: readonly string[] = ['completed', 'cancelled', 'rejected', 'failed', 'entered-in-error', 'not-found'];

/** Job states after which no attempt runs unless the job is replayed. */
export const FINISHED_STATUSES: readonly JobStatus[] = ['delivered', 'failed', 'dead'];
