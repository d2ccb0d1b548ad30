/**
 * One delivery attempt of a job to its targets, and submission of new jobs. Everything
 * with side effects (store, HTTP, clock, randomness) comes in through `DeliveryDeps`, so
 * the same code runs in a queue consumer in workerd and in Node.
 *
 * A job has a target per server it writes to: always the clinic's own (`clinic`), and the
 * parent's primary treatment team's (`primary.<orgNumber>`) when the sharing gate
 * (src/coordination/) gives something to send there. Targets are independent: each has its
 * own result, retries and ledger, and a fault on one never blocks or fails another. Each
 * disclosure to a primary server, and each refusal because of consent, is audited on the
 * clinic's server once its outcome is known (`Job.audits`).
 */
import type { AuditEvent, Bundle, DocumentReference } from '@medplum/fhirtypes';
import type { JWK } from 'jose';
import { disclosureAuditEvent, withOutcome } from '../coordination/audit.ts';
import type { ClosedReason } from '../coordination/gate.ts';
import { clinicSharing } from '../coordination/gate.ts';
import { SUMMARY_DOCUMENT_KIND } from '../coordination/primary-content.ts';
import { sharePrimaryParsed, summaryToDeliver } from '../coordination/share.ts';
import { signSummary } from '../coordination/summary.ts';
import { parseEpisode } from '../domain/parse.ts';
import { DEV_IDENTITY, pseudonym } from '../fhir/identity.ts';
import { MASTER_DATA_TYPES } from '../fhir/write-semantics.ts';
import { errorKind, log } from '../log.ts';
import { MAPPING_VERSION, type MapOptions, mapParsedEpisode } from '../mapping/bundle.ts';
import { applyOrdered, applyTransaction, capabilities, countWrites, entryKey, RETRACTABLE_TYPES, retract, supplementMasterData } from './apply.ts';
import { type FhirTargetClient, TargetError } from './client.ts';
import { applyCancellations, readRequests } from './coordination.ts';
import { personKey } from './episodes.ts';
import { ensureMappedValid } from './mapped-validity.ts';
import { redactOutcome } from './redact.ts';
import { DEFAULT_RETRY_POLICY, decide, type RetryPolicy } from './retry.ts';
import {
  CLINIC_TARGET,
  type DeliveryStore,
  type Job,
  type JobAudit,
  type JobContent,
  type LedgerRecord,
  primaryTargetName,
  type TargetResult,
} from './types.ts';

export { CLINIC_TARGET, primaryTargetName } from './types.ts';

export interface DeliveryDeps {
  store: DeliveryStore;
  clientFor(target: string): FhirTargetClient;
  now(): number;
  random(): number;
  newId(): string;
  policy?: RetryPolicy;
}

/** Lowercase hex SHA-256 of a string (WebCrypto: same in workerd and Node). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export interface Submission {
  job: Job;
}

export interface SubmitOptions extends MapOptions {
  /**
   * The FHIR base URL of the target configured for a primary treatment organisation number,
   * or undefined when none is (the gate's "a target is configured for that organisation").
   * Absent: no primary targets.
   */
  primaryEndpoint?: (orgNumber: string) => string | undefined;
  /** Who submits (recorded in the AuditEvents of the job's disclosures); never a token. */
  caller?: string;
  /**
   * The bridge's private signing keys (BRIDGE_PRIVATE_JWKS): the coordination summary delivered
   * to the primary team is signed with the first. Without them it is delivered unsigned.
   */
  signingKeys?: { keys: readonly JWK[] };
}

/**
 * Gate reasons that are refusals because of consent (audited). A gate closed because no
 * primary organisation is named or no target is configured for it refuses nothing.
 */
const CONSENT_REFUSALS: ReadonlySet<ClosedReason> = new Set(['consent-declined', 'consent-withdrawn', 'consent-expired', 'consent-not-yet-decided']);

/**
 * Validates and maps an episode (and validates the Bundles it would write: src/sync/mapped-validity.ts), evaluates the sharing gate at the time of submission, then
 * records a job for it: the clinic's Bundle (with a Task for the therapist where a risk may not
 * be shared), the primary team's Bundle when the gate gives one with entries (with the signed
 * coordination summary once the episode has ended, when `summary` is shared), and the
 * AuditEvents of the disclosure or consent refusal. Then keeps the parsed episode as the
 * tenant's latest version of it (src/sync/episodes.ts), which the summary route reads. Throws the
 * OperationOutcomeError of a bad episode before anything is stored.
 */
export async function submitEpisode(input: unknown, deps: Pick<DeliveryDeps, 'store' | 'now' | 'newId'>, options: SubmitOptions = {}): Promise<Job> {
  const episode = parseEpisode(input, options);
  const identity = options.identity ?? DEV_IDENTITY;
  const at = new Date(deps.now()).toISOString();
  const endpoint = options.primaryEndpoint ?? (() => undefined);
  const hasTarget = (org: string) => endpoint(org) !== undefined;
  // Signed here, not in share.ts: signing is asynchronous and needs the key; share.ts stays pure.
  let summary = summaryToDeliver(episode, { at, hasTarget, identity });
  if (summary && options.signingKeys?.keys.length) summary = await signSummary(summary, options.signingKeys);
  const shared = sharePrimaryParsed(episode, { at, hasTarget, identity, ...(summary ? { summary } : {}) });
  const bundle = mapParsedEpisode(episode, identity, clinicSharing(shared.gate));
  const id = deps.newId();

  const targets: Job['targets'] = { [CLINIC_TARGET]: { status: 'pending' } };
  const bundles: Record<string, Bundle> = {};
  const audits: JobAudit[] = [];
  const auditEvents: Record<string, AuditEvent> = {};
  const org = episode.primaryTreatment?.organization.orgNumber;
  if (org) {
    const target = primaryTargetName(org);
    if (shared.bundle.entry?.length) {
      targets[target] = { status: 'pending' };
      bundles[target] = shared.bundle;
    }
    const gate = shared.gate;
    const refusal = !gate.open && CONSENT_REFUSALS.has(gate.reason);
    if (gate.open || refusal) {
      const key = `${id}|${target}`;
      const reason = gate.open ? undefined : gate.text;
      audits.push({ key, target, kind: gate.open ? 'disclosure' : 'refusal', status: 'waiting', round: 0, attempts: 0, ...(reason ? { reason, at } : {}) });
      auditEvents[key] = disclosureAuditEvent({
        key,
        at,
        episode,
        identity,
        caller: options.caller,
        recipient: { orgNumber: org, ...(endpoint(org) ? { endpoint: endpoint(org) } : {}) },
        sent: gate.open ? shared.bundle : undefined,
        outcome: gate.open ? 'success' : 'refused',
        reason,
      });
    }
  }

  // What would be written is valid FHIR, or nothing is stored (a mapping defect, refused here
  // rather than by a server); a Bundle already known valid is not validated again.
  const contentHash = await sha256Hex(JSON.stringify(bundle));
  await ensureMappedValid(bundle, MAPPING_VERSION, contentHash);
  for (const b of Object.values(bundles)) await ensureMappedValid(b, MAPPING_VERSION, await sha256Hex(JSON.stringify(b)));

  const episodeKey = `${episode.clinic.orgNumber}/${episode.episodeId}`;
  const job = await deps.store.createJob({
    id,
    episodeKey,
    // Keyed, so that the key in queues, Durable Object names and storage reveals no national id.
    parentKey: pseudonym(identity, `parent|${episode.clinic.orgNumber}|${episode.parent.nationalId}`),
    contentHash,
    mappingVersion: MAPPING_VERSION,
    status: 'queued',
    attempts: 0,
    createdAt: at,
    updatedAt: at,
    targets,
    ...(audits.length ? { audits } : {}),
    bundle,
    ...(Object.keys(bundles).length ? { bundles } : {}),
    ...(audits.length ? { auditEvents } : {}),
  });
  // The job's tenant is the store's word (the service stamps the caller's tenant on creation).
  await deps.store.putEpisode({ tenant: job.tenant, episodeKey, personKey: personKey(identity, episode.parent.nationalId), episode, storedAt: at });
  return job;
}

export type AttemptResult = { done: true; job: Job } | { done: false; job: Job; delayMs: number };

const FINAL = new Set(['delivered', 'failed', 'dead']);

/** Target states as job states; an audit as the state of a target. */
const AUDIT_AS_TARGET: Record<JobAudit['status'], TargetResult['status']> = {
  waiting: 'pending',
  retrying: 'retrying',
  written: 'delivered',
  skipped: 'delivered',
  failed: 'failed',
  dead: 'dead',
};

/**
 * Runs one attempt of a job. Idempotent: a job already finished is left alone (a queue may
 * deliver a message twice). Returns whether to try again, and when.
 */
export async function attemptJob(jobId: string, deps: DeliveryDeps): Promise<AttemptResult | undefined> {
  const policy = deps.policy ?? DEFAULT_RETRY_POLICY;
  const job = await deps.store.getJob(jobId);
  if (!job) return undefined;
  if (FINAL.has(job.status)) return { done: true, job };
  const content = await deps.store.getContent(jobId);
  if (!content) throw new Error('job has no bundle');

  job.attempts += 1;
  let retryIn: number | undefined;
  for (const [target, result] of Object.entries(job.targets)) {
    if (FINAL.has(result.status)) continue;
    const bundle = content.bundles[target];
    if (!bundle) {
      job.targets[target] = { status: 'failed', error: 'the job holds no Bundle for this target' };
      continue;
    }
    try {
      job.targets[target] = await deliverToTarget(job, bundle, target, deps);
    } catch (e) {
      const failure = e instanceof TargetError ? e : undefined;
      const decision = decide(
        failure ? { kind: failure.kind, status: failure.status, retryAfter: failure.retryAfter } : { kind: 'network' },
        job.attempts,
        policy,
        deps.now(),
        deps.random,
      );
      const base: TargetResult = {
        status: decision.retry
          ? 'retrying'
          : failure?.kind === 'http' && failure.status !== undefined && failure.status < 500 && failure.status !== 429
            ? 'failed'
            : 'dead',
        error: failure ? failure.message : 'internal error while delivering',
        ...(failure?.status !== undefined ? { httpStatus: failure.status } : {}),
        // Kept capped and without the national ids, names and phone numbers a server may quote.
        ...(failure?.outcome ? { outcome: redactOutcome(failure.outcome, bundle) } : {}),
        // What was last read back of the requests stays shown while the target retries.
        ...(result.requests ? { requests: result.requests, ...(result.requestsReadAt ? { requestsReadAt: result.requestsReadAt } : {}) } : {}),
      };
      job.targets[target] = base;
      if (decision.retry) retryIn = Math.max(retryIn ?? 0, decision.delayMs);
      if (!failure) log('delivery.attempt_failed', { jobId: job.id, target, error: errorKind(e) });
    }
  }
  const auditRetry = await writeAudits(job, content, deps, policy);
  if (auditRetry !== undefined) retryIn = Math.max(retryIn ?? 0, auditRetry);

  const statuses = [...Object.values(job.targets).map((t) => t.status), ...(job.audits ?? []).map((a) => AUDIT_AS_TARGET[a.status])];
  job.status = statuses.includes('retrying') ? 'retrying' : statuses.includes('dead') ? 'dead' : statuses.includes('failed') ? 'failed' : 'delivered';
  job.updatedAt = new Date(deps.now()).toISOString();
  if (retryIn !== undefined && job.status === 'retrying') job.nextAttemptAt = new Date(deps.now() + retryIn).toISOString();
  else delete job.nextAttemptAt;
  await deps.store.saveJob(job);
  return job.status === 'retrying' ? { done: false, job, delayMs: retryIn ?? 0 } : { done: true, job };
}

/** A UUID derived from a base id and a suffix (the AuditEvent of a later round of a replayed job). */
async function derivedUuid(base: string, suffix: string): Promise<string> {
  const h = await sha256Hex(`${base}|${suffix}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((Number.parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

/** What the refusal's AuditEvent says happened on the primary server (cancellations of open requests). */
function refusalText(a: JobAudit, target: TargetResult | undefined): string | undefined {
  if (!target) return a.reason;
  const what =
    target.status === 'delivered'
      ? `nothing new sent; open coordination requests cancelled there: ${target.counts?.updated ?? 0}`
      : `nothing new sent; cancelling the open coordination requests there ${target.status === 'failed' ? 'was refused by the server' : 'failed'}`;
  return a.reason ? `${a.reason}; ${what}` : what;
}

/**
 * Writes the AuditEvents whose outcome is now known to the clinic's server (`PUT
 * AuditEvent/{id}`: a repeat after a lost answer writes the same event again, never a second
 * one). A disclosure's outcome is known once its primary target has finished: success when it
 * was delivered, failed when it failed or gave up; a send that changed nothing on the primary
 * server (unchanged, superseded) disclosed nothing and is not audited. A refusal is written once
 * the cancellation of open requests, if any, has finished. Each audit has its own retry budget.
 * Returns the delay before the next try when one is needed.
 */
async function writeAudits(job: Job, content: JobContent, deps: DeliveryDeps, policy: RetryPolicy): Promise<number | undefined> {
  let retryIn: number | undefined;
  let client: FhirTargetClient | undefined;
  for (const a of job.audits ?? []) {
    if (a.status !== 'waiting' && a.status !== 'retrying') continue;
    const target = job.targets[a.target];
    if (target && !FINAL.has(target.status)) continue;
    if (a.outcome === undefined) {
      if (a.kind === 'refusal') {
        a.outcome = 'refused';
      } else {
        if (!target || (target.status === 'delivered' && (target.unchanged || target.superseded))) {
          a.status = 'skipped';
          continue;
        }
        a.outcome = target.status === 'delivered' ? 'success' : 'failed';
        a.at = target.deliveredAt ?? new Date(deps.now()).toISOString();
        if (a.outcome === 'failed') a.reason = `not delivered (${target.status}): ${target.error ?? 'error'}`;
      }
    }
    const template = content.audits?.[a.key];
    if (!template?.id) {
      a.status = 'failed';
      a.error = 'the job holds no AuditEvent for this disclosure';
      continue;
    }
    const id = a.round ? await derivedUuid(template.id, `round-${a.round}`) : template.id;
    const event = withOutcome(
      { ...template, id },
      a.outcome,
      a.at ?? new Date(deps.now()).toISOString(),
      a.kind === 'refusal' ? refusalText(a, target) : a.reason,
    );
    a.attempts += 1;
    try {
      client ??= deps.clientFor(CLINIC_TARGET);
      await client.request('PUT', `AuditEvent/${id}`, event);
      a.status = 'written';
      a.writtenAt = new Date(deps.now()).toISOString();
      delete a.error;
      delete a.httpStatus;
    } catch (e) {
      const failure = e instanceof TargetError ? e : undefined;
      const decision = decide(
        failure ? { kind: failure.kind, status: failure.status, retryAfter: failure.retryAfter } : { kind: 'network' },
        a.attempts,
        policy,
        deps.now(),
        deps.random,
      );
      a.status = decision.retry
        ? 'retrying'
        : failure?.kind === 'http' && failure.status !== undefined && failure.status < 500 && failure.status !== 429
          ? 'failed'
          : 'dead';
      a.error = failure ? failure.message : 'internal error while writing the audit';
      if (failure?.status !== undefined) a.httpStatus = failure.status;
      else delete a.httpStatus;
      if (decision.retry) retryIn = Math.max(retryIn ?? 0, decision.delayMs);
      if (!failure) log('delivery.audit_failed', { jobId: job.id, error: errorKind(e) });
    }
  }
  return retryIn;
}

/** Whether a target name is a primary treatment team's. */
const isPrimary = (target: string): boolean => target.startsWith('primary.');

async function deliverToTarget(job: Job, bundle: Bundle, target: string, deps: DeliveryDeps): Promise<TargetResult> {
  const at = () => new Date(deps.now()).toISOString();
  // The clinic's hash was taken at submission; another target's Bundle is hashed the same way.
  const contentHash = target === CLINIC_TARGET ? job.contentHash : await sha256Hex(JSON.stringify(bundle));
  const ledger = await deps.store.getLedger(job.tenant, job.episodeKey, target);
  if (ledger && ledger.seq > job.seq)
    return { status: 'delivered', superseded: true, written: 0, counts: { created: 0, updated: 0, unchanged: 0 }, deliveredAt: at() };
  if (ledger && ledger.contentHash === contentHash && ledger.mappingVersion === job.mappingVersion) {
    await deps.store.putLedger({ ...ledger, seq: job.seq });
    const entries = bundle.entry?.length ?? 0;
    const result: TargetResult = {
      status: 'delivered',
      unchanged: true,
      written: 0,
      retracted: 0,
      counts: { created: 0, updated: 0, unchanged: entries },
      deliveredAt: at(),
    };
    return isPrimary(target) ? withRequests(result, job, target, ledger.resources, deps) : result;
  }
  const client = deps.clientFor(target);
  if (bundle.type === 'batch') return deliverCancellations(job, bundle, target, contentHash, ledger, client, deps);
  const summary = isPrimary(target) ? linkSummaryVersions(bundle, ledger) : { bundle, replaced: [] };
  const sent = summary.bundle;
  const caps = await capabilities(client, deps.now());
  const applied = await supplementMasterData(client, sent, caps.transaction ? await applyTransaction(client, sent) : await applyOrdered(client, sent));
  const previous = new Map((ledger?.resources ?? []).filter((r) => !r.retracted).map((r) => [r.key, r.versionId]));
  const counts = countWrites(applied, previous);
  const written = applied.map(({ key, type, id, versionId }) => ({ key, type, id, ...(versionId ? { versionId } : {}) }));

  // What this episode had on the server but no longer has: withdraw it, never leave or delete
  // it. Master data is shared with other episodes and systems: it stays as it is. A
  // coordination request (Task) is never withdrawn (the receiver may have acted on it): it
  // stays in the ledger, so that its status is still read back.
  const current = new Set(written.map((w) => w.key));
  const kept: LedgerRecord['resources'] = [];
  let retracted = 0;
  for (const r of ledger?.resources ?? []) {
    if (current.has(r.key)) continue;
    if (r.type === 'Task') {
      kept.push(r);
      continue;
    }
    if (isSummaryDocumentKey(r.key)) {
      // A summary version is never withdrawn: the version this send replaces becomes `superseded`
      // (marked retracted in the ledger: no longer the current one); without a new version it stays.
      if (summary.replaced.some((p) => p.key === r.key)) {
        const done = await retract(client, r.type, r.id, SUPERSEDED);
        kept.push({ ...(done ?? r), key: r.key, retracted: true });
      } else kept.push(r);
      continue;
    }
    if (!RETRACTABLE_TYPES.has(r.type) || MASTER_DATA_TYPES.has(r.type)) continue;
    if (!r.retracted) {
      const done = await retract(client, r.type, r.id);
      retracted += 1;
      kept.push({ ...(done ?? r), key: r.key, retracted: true });
    } else kept.push(r);
  }
  const resources: LedgerRecord['resources'] = [...written, ...kept];
  const deliveredAt = await recordDelivery(job, target, contentHash, resources, deps);
  const result: TargetResult = { status: 'delivered', written: written.length, retracted, counts, deliveredAt };
  return isPrimary(target) ? withRequests(result, job, target, resources, deps, client) : result;
}

/** A replaced version of a document (https://hl7.org/fhir/R4/valueset-document-reference-status.html). */
const SUPERSEDED = { field: 'status', value: 'superseded' };

/** Whether a ledger key is the conditional URL of a version of the coordination summary (share.ts). */
function isSummaryDocumentKey(key: string): boolean {
  if (!key.startsWith('DocumentReference?identifier=')) return false;
  const system = decodeURIComponent(key.slice('DocumentReference?identifier='.length).split('|')[0] ?? '');
  return system.endsWith(`/${SUMMARY_DOCUMENT_KIND}`);
}

/**
 * Versions of the coordination summary on a primary server. Each version is its own
 * DocumentReference (identifier `{episodeId}/summary/{version}`, conditional update), so a re-send
 * of the same version rewrites nothing, and the Bundle built at submission stays pure. Which
 * version it replaces is what the primary target's ledger last holds as current: ledger records
 * are written in delivery order, one attempt at a time per parent, so they say what the server
 * really has, even when jobs were submitted faster than they were delivered. Here, at delivery,
 * the new version gets `relatesTo: [{code: replaces, target: DocumentReference/<server id>}]` of
 * each current version it replaces (one, normally); after the write, those are set `superseded`
 * (read, then written under If-Match) and kept in the ledger as no longer current. Nothing is
 * linked when the send carries no summary, or the same version as before.
 */
function linkSummaryVersions(bundle: Bundle, ledger: LedgerRecord | undefined): { bundle: Bundle; replaced: LedgerRecord['resources'] } {
  const i = (bundle.entry ?? []).findIndex((x) => x.resource?.resourceType === 'DocumentReference' && isSummaryDocumentKey(entryKey(x)));
  const entry = bundle.entry?.[i];
  if (!entry) return { bundle, replaced: [] };
  const key = entryKey(entry);
  const replaced = (ledger?.resources ?? []).filter((r) => isSummaryDocumentKey(r.key) && !r.retracted && r.key !== key && r.id);
  if (!replaced.length) return { bundle, replaced };
  const linked = structuredClone(bundle);
  (linked.entry?.[i]?.resource as DocumentReference).relatesTo = replaced.map((r) => ({
    code: 'replaces',
    target: { reference: `DocumentReference/${r.id}` },
  }));
  return { bundle: linked, replaced };
}

/** Records in the ledger what a delivery left on the target; returns when, as the result reports it too. */
async function recordDelivery(job: Job, target: string, contentHash: string, resources: LedgerRecord['resources'], deps: DeliveryDeps): Promise<string> {
  const deliveredAt = new Date(deps.now()).toISOString();
  await deps.store.putLedger({
    tenant: job.tenant,
    episodeKey: job.episodeKey,
    target,
    seq: job.seq,
    contentHash,
    mappingVersion: job.mappingVersion,
    deliveredAt,
    resources,
  });
  return deliveredAt;
}

/**
 * A consent that was active is withdrawn or has expired: cancel the bridge's requests still
 * open on the primary server (src/sync/coordination.ts) and nothing else. Nothing is retracted:
 * what the primary team received stays in their record. The ledger keeps what it knew, with the
 * cancelled Tasks' new versions.
 */
async function deliverCancellations(
  job: Job,
  bundle: Bundle,
  target: string,
  contentHash: string,
  ledger: LedgerRecord | undefined,
  client: FhirTargetClient,
  deps: DeliveryDeps,
): Promise<TargetResult> {
  const done = await applyCancellations(client, bundle);
  const resources = [...(ledger?.resources ?? [])];
  for (const c of done) {
    if (!c.id) continue;
    const i = resources.findIndex((r) => r.key === c.key);
    const entry = { key: c.key, type: 'Task', id: c.id, ...(c.versionId ? { versionId: c.versionId } : {}) };
    if (i >= 0) resources[i] = entry;
    else resources.push(entry);
  }
  const deliveredAt = await recordDelivery(job, target, contentHash, resources, deps);
  const cancelled = done.filter((c) => c.result === 'cancelled').length;
  const result: TargetResult = {
    status: 'delivered',
    written: cancelled,
    retracted: 0,
    counts: { created: 0, updated: cancelled, unchanged: done.length - cancelled },
    deliveredAt,
  };
  return withRequests(result, job, target, resources, deps, client);
}

/**
 * Adds the coordination requests read back from the primary server (the Tasks the ledger
 * knows) to a successful result, and keeps them for `listCoordination`. Best effort: the
 * delivery succeeded whatever the read gives; a failed read leaves the result without them.
 */
async function withRequests(
  result: TargetResult,
  job: Job,
  target: string,
  resources: LedgerRecord['resources'],
  deps: DeliveryDeps,
  client: FhirTargetClient = deps.clientFor(target),
): Promise<TargetResult> {
  const tasks = resources.filter((r) => r.type === 'Task' && r.key.startsWith('Task?'));
  try {
    const requests = await readRequests(client, tasks);
    const readAt = new Date(deps.now()).toISOString();
    await deps.store.putCoordination({ tenant: job.tenant, episodeKey: job.episodeKey, target, readAt, requests });
    return { ...result, requests, requestsReadAt: readAt };
  } catch (e) {
    if (!(e instanceof TargetError)) throw e;
    return result;
  }
}

/** Puts a finished (dead or failed) job back in the queue state; the caller enqueues it. */
export async function resetForReplay(jobId: string, store: DeliveryStore, nowMs: number): Promise<{ job: Job; replayed: boolean } | undefined> {
  const job = await store.getJob(jobId);
  if (!job) return undefined;
  if (job.status !== 'dead' && job.status !== 'failed') return { job, replayed: false };
  job.status = 'queued';
  job.attempts = 0;
  job.updatedAt = new Date(nowMs).toISOString();
  delete job.nextAttemptAt;
  const rerun = new Set<string>();
  for (const [name, t] of Object.entries(job.targets)) {
    if (t.status === 'dead' || t.status === 'failed') {
      t.status = 'pending';
      rerun.add(name);
    }
  }
  // An audit whose write gave up is written again; a disclosure whose target runs again gets
  // the new outcome: in a new AuditEvent when the earlier outcome was already written.
  const audits: JobAudit[] = [];
  for (const a of job.audits ?? []) {
    const again = rerun.has(a.target) && a.kind === 'disclosure';
    if (a.status === 'written' || a.status === 'skipped') {
      audits.push(a);
      const latest = !(job.audits ?? []).some((b) => b.key === a.key && b.round > a.round);
      if (again && latest) audits.push({ key: a.key, target: a.target, kind: a.kind, status: 'waiting', round: a.round + 1, attempts: 0 });
      continue;
    }
    const { error: _e, httpStatus: _h, ...rest } = a;
    audits.push({ ...rest, status: 'waiting', attempts: 0, ...(again ? { outcome: undefined, at: undefined, reason: undefined } : {}) });
  }
  if (job.audits) job.audits = audits.map((a) => JSON.parse(JSON.stringify(a)) as JobAudit);
  await store.saveJob(job);
  return { job, replayed: true };
}
