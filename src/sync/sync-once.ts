/**
 * Delivers one episode straight to a FHIR base URL, for integrators trying a server by
 * hand: the same mapping, conditional writes and retry policy as the queue, without the
 * ledger (every run writes the whole episode). With a primary treatment server, what the
 * consent allows goes there too and is audited on the clinic's server. So that its counts can say what a run
 * changed, it first reads the versions the server holds of the episode's resources and
 * gives them to the delivery as the previous versions.
 */
import type { Bundle } from '@medplum/fhirtypes';
import type { IdentityOptions } from '../fhir/identity.ts';
import { OperationOutcomeError } from '../fhir/outcome.ts';
import { entryKey, findOne } from './apply.ts';
import { FhirTargetClient, TargetError, TIME_IS_UP } from './client.ts';
import { attemptJob, CLINIC_TARGET, submitEpisode } from './deliver.ts';
import { MemoryStore } from './memory-store.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.ts';
import type { Job, LedgerRecord } from './types.ts';

export interface SyncOptions {
  baseUrl: string;
  bearer?: string;
  /**
   * The primary treatment team's FHIR server for the episode's primary organisation: what the
   * consent allows goes there (src/coordination/share.ts), and each disclosure or refusal is
   * audited on `baseUrl`. Without it no primary target is configured and nothing is shared.
   */
  primary?: { baseUrl: string; bearer?: string };
  allowSyntheticIds?: boolean;
  /** The deployment's identifier namespace and pseudonym secret (fhir/identity.ts). */
  identity?: IdentityOptions;
  policy?: RetryPolicy;
  /**
   * Longest time the whole delivery may take, in milliseconds (the CLI's `--timeout`): each
   * request waits at most what is left, and no retry starts that would end after it. Then the
   * run gives up and says so (`gaveUp`); what reached the server stays there, and a later run
   * writes the same resources again without duplicating them (conditional writes).
   */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Progress lines (never carrying personal data or the token). */
  log?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
  /** The clock (the sharing gate is evaluated at submission). */
  now?: () => number;
}

/** One target's outcome: its base URL and the job's result for it (for a primary target with the coordination requests read back). */
export interface SyncTargetReport {
  url: string;
  result: Job['targets'][string];
}

export interface SyncResult {
  delivered: boolean;
  report: {
    episode: string;
    status: Job['status'];
    attempts: number;
    /** The clinic target's base URL and result (as before primary targets). */
    target: string;
    result: Job['targets'][string];
    /** Every target of the job by name (`clinic`, `primary.<orgNumber>`). */
    targets: Record<string, SyncTargetReport>;
    /** The disclosures and consent refusals audited on the clinic's server. */
    audits: NonNullable<Job['audits']>;
    /** Why the run stopped retrying before the retry policy did (the `timeoutMs` bound). */
    gaveUp?: string;
  };
}

/** Throws OperationOutcomeError for a bad episode (nothing is sent). */
export async function syncOnce(input: unknown, opts: SyncOptions): Promise<SyncResult> {
  const store = new MemoryStore();
  const fetchImpl = opts.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  // The client measures its timeouts with the wall clock, so the deadline is on it too.
  const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs;
  const clientOf = (baseUrl: string, bearer: string | undefined) =>
    new FhirTargetClient(baseUrl, { fetch: fetchImpl, deadline, authorization: async () => (bearer ? `Bearer ${bearer}` : undefined) });
  const client = clientOf(opts.baseUrl, opts.bearer);
  const primary = opts.primary ? clientOf(opts.primary.baseUrl, opts.primary.bearer) : undefined;
  const now = opts.now ?? Date.now;
  const deps = {
    store,
    // Every primary target is the one --primary names: it stands for the episode's primary organisation.
    clientFor: (name: string) => (name === CLINIC_TARGET ? client : (primary ?? client)),
    now,
    random: Math.random,
    newId: () => crypto.randomUUID(),
    policy: opts.policy ?? DEFAULT_RETRY_POLICY,
  };
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const job = await submitEpisode(input, deps, {
    allowSyntheticIds: opts.allowSyntheticIds,
    identity: opts.identity,
    caller: 'imh-bridge sync',
    ...(primary ? { primaryEndpoint: () => primary.baseUrl } : {}),
  });
  const content = await store.getContent(job.id);
  // A read that got no answer: when the delivery then runs out of time, this is the reason to give.
  const readFailures: string[] = [];
  for (const [target, bundle] of Object.entries(content?.bundles ?? {})) {
    const versions = await currentVersions(deps.clientFor(target), bundle, (message) => readFailures.push(`${target}: ${message}`));
    // Versions only: no content hash, so the run still writes everything, and only this
    // bundle's keys, so nothing is taken for a resource that left the episode.
    if (versions.length) {
      await store.putLedger({
        tenant: job.tenant,
        episodeKey: job.episodeKey,
        target,
        seq: 0,
        contentHash: '',
        mappingVersion: '',
        deliveredAt: '',
        resources: versions,
      });
    }
  }
  for (;;) {
    const r = await attemptJob(job.id, deps);
    if (!r)
      throw new OperationOutcomeError(
        { resourceType: 'OperationOutcome', issue: [{ severity: 'fatal', code: 'exception', details: { text: 'job vanished' } }] },
        500,
      );
    const failing = Object.entries(r.job.targets).filter(([, t]) => t.status === 'retrying');
    let why = failing.length ? failing.map(([name, t]) => `${name}: ${t.error ?? 'error'}`).join('; ') : 'audit write failed';
    if (failing.length && failing.every(([, t]) => t.error?.endsWith(TIME_IS_UP)) && readFailures.length) why = readFailures.join('; ');
    const outOfTime = !r.done && deadline !== undefined && Date.now() + r.delayMs >= deadline;
    if (r.done || outOfTime) {
      // Out of time: what is still retrying is reported as given up (dead), as the policy would at its last attempt.
      const settle = (t: Job['targets'][string]): Job['targets'][string] => (outOfTime && t.status === 'retrying' ? { ...t, status: 'dead' } : t);
      const targets = Object.fromEntries(Object.entries(r.job.targets).map(([name, t]) => [name, { url: deps.clientFor(name).baseUrl, result: settle(t) }]));
      const status = outOfTime ? (r.job.status === 'retrying' ? 'dead' : r.job.status) : r.job.status;
      return {
        delivered: status === 'delivered',
        report: {
          episode: r.job.episodeKey,
          status,
          attempts: r.job.attempts,
          target: client.baseUrl,
          result: settle(r.job.targets[CLINIC_TARGET] as Job['targets'][string]),
          targets,
          audits: r.job.audits ?? [],
          ...(outOfTime
            ? {
                gaveUp: `gave up after ${r.job.attempts} attempt${r.job.attempts === 1 ? '' : 's'}: the next retry would end after the ${Math.round((opts.timeoutMs as number) / 100) / 10} s timeout (${why})`,
              }
            : {}),
        },
      };
    }
    opts.log?.(`attempt ${r.job.attempts} failed (${why}); retrying in ${Math.round(r.delayMs / 100) / 10} s`);
    await sleep(r.delayMs);
  }
}

/**
 * What the server holds now of the bundle's conditionally updated entries: `Type/id` and
 * version per entry key. Best effort: a failed read ends it (the delivery then counts
 * those resources as updated), it never fails the run.
 */
async function currentVersions(client: FhirTargetClient, bundle: Bundle, failed: (message: string) => void): Promise<LedgerRecord['resources']> {
  const out: LedgerRecord['resources'] = [];
  for (const e of bundle.entry ?? []) {
    if (e.request?.method !== 'PUT') continue;
    const key = entryKey(e);
    try {
      if (key.includes('?')) {
        const found = await findOne(client, key);
        if (found) out.push({ key, ...found });
      } else {
        const { body } = await client.request<{ resourceType: string; id: string; meta?: { versionId?: string } }>('GET', key);
        if (body?.id) out.push({ key, type: body.resourceType, id: body.id, ...(body.meta?.versionId ? { versionId: body.meta.versionId } : {}) });
      }
    } catch (err) {
      if (err instanceof TargetError && (err.status === 404 || err.status === 410)) continue;
      if (err instanceof TargetError && err.kind !== 'http') failed(err.message);
      break;
    }
  }
  return out;
}
