/**
 * The bridge's coordination requests (Task) on a primary treatment server (shared contract
 * `sharing.md`, "Coordination requests"): cancelling those still open when a consent is
 * withdrawn or has expired, reading their status back after each delivery and on a schedule,
 * and listing the latest read-back per episode for the clinic.
 */
import type { Bundle, Resource, Task } from '@medplum/fhirtypes';
import { isOverdue } from '../coordination/requests.ts';
import { findMatches } from './apply.ts';
import { type FhirTargetClient, TargetError, type TargetResponse } from './client.ts';
import { type CoordinationRecord, type CoordinationRequest, type DeliveryStore, FINAL_REQUEST_STATUSES } from './types.ts';

/** What cancelling one request did. */
export interface Cancellation {
  /** The request's conditional URL (`Task?identifier=…`). */
  key: string;
  /** Server id, when the Task exists there. */
  id?: string;
  versionId?: string;
  /** cancelled now; left (the primary team has acted on it, or it was cancelled already); absent (never created). */
  result: 'cancelled' | 'left' | 'absent';
}

const CONFLICT = new Set([400, 409, 412, 422]);
const NO_PATCH = new Set([405, 501]);

const decodeBase64 = (data: string): string => new TextDecoder().decode(Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));

const etagVersion = (etag: string | null | undefined): string | undefined => (etag ? (/W\/"([^"]+)"/.exec(etag)?.[1] ?? undefined) : undefined);

/**
 * Applies a `batch` of conditional JSON Patches (what `sharePrimaryParsed` gives when a consent
 * that was active is withdrawn or has expired) entry by entry, so that only requests still
 * `requested` change: each Task is found by its identifier; absent → nothing to do; any other
 * status → left as the primary team has it; `requested` → the patch, under `If-Match` of the
 * version read (https://hl7.org/fhir/R4/http.html#patch). A concurrent change (412, or a failed
 * `test`: 400/409/422) means read again. A server without PATCH (405, 501) gets a read and a
 * PUT under `If-Match` that changes only `status` and `statusReason`. A repeat after a lost
 * answer reads `cancelled` and writes nothing.
 */
export async function applyCancellations(client: FhirTargetClient, bundle: Bundle): Promise<Cancellation[]> {
  const out: Cancellation[] = [];
  for (const entry of bundle.entry ?? []) {
    const url = entry.request?.url;
    const binary = entry.resource as { resourceType?: string; data?: string } | undefined;
    if (entry.request?.method !== 'PATCH' || !url?.startsWith('Task?') || binary?.resourceType !== 'Binary' || !binary.data) {
      throw new Error('a cancellation batch holds only conditional JSON Patches of Tasks');
    }
    const ops = JSON.parse(decodeBase64(binary.data)) as { op: string; path: string; value?: unknown }[];
    const statusReason = ops.find((o) => o.op === 'add' && o.path === '/statusReason')?.value as Task['statusReason'];
    out.push(...(await cancelOne(client, url, ops, statusReason)));
  }
  return out;
}

async function cancelOne(client: FhirTargetClient, key: string, ops: unknown[], statusReason: Task['statusReason']): Promise<Cancellation[]> {
  const found = await findMatches<Task>(client, key);
  if (!found.length) return [{ key, result: 'absent' }];
  const results: Cancellation[] = [];
  for (let task of found) {
    for (let tries = 0; ; tries++) {
      const version = task.meta?.versionId;
      if (task.status !== 'requested') {
        results.push({ key, id: task.id, ...(version ? { versionId: version } : {}), result: 'left' });
        break;
      }
      const path = `Task/${task.id}`;
      const guard: Record<string, string> = version ? { 'if-match': `W/"${version}"` } : {};
      try {
        let answer: TargetResponse<Resource>;
        try {
          answer = await client.request<Resource>('PATCH', path, ops, { 'content-type': 'application/json-patch+json', ...guard });
        } catch (e) {
          if (!(e instanceof TargetError && e.status !== undefined && NO_PATCH.has(e.status))) throw e;
          // No PATCH here: the same change as a whole-resource update, guarded the same way.
          answer = await client.request<Resource>('PUT', path, { ...task, status: 'cancelled', ...(statusReason ? { statusReason } : {}) }, guard);
        }
        const v = answer.body?.meta?.versionId ?? etagVersion(answer.headers.get('etag'));
        results.push({ key, id: task.id, ...(v ? { versionId: v } : {}), result: 'cancelled' });
        break;
      } catch (e) {
        if (e instanceof TargetError && e.status !== undefined && CONFLICT.has(e.status) && tries < 3) {
          task = (await client.request<Task & { id: string }>('GET', path)).body;
          continue;
        }
        throw e;
      }
    }
  }
  return results;
}

/** The coordination-request occasion of a Task (its code from the bridge's CodeSystem). */
const occasionOf = (t: Task): string =>
  t.code?.coding?.find((c) => c.system?.endsWith('/coordination-request'))?.code ?? t.code?.coding?.[0]?.code ?? 'unknown';

/** The request as the clinic sees it: no personal data. */
export function requestView(t: Task, identifier: string): CoordinationRequest {
  return {
    occasion: occasionOf(t),
    identifier,
    status: t.status,
    ...(t.priority ? { priority: t.priority } : {}),
    ...(t.restriction?.period?.end ? { due: t.restriction.period.end } : {}),
    ...(t.authoredOn ? { authoredOn: t.authoredOn } : {}),
    ...(t.meta?.lastUpdated ? { lastModified: t.meta.lastUpdated } : {}),
  };
}

/**
 * Reads the bridge's own Tasks back from a primary server by the server ids the ledger holds
 * for them (`key` is the request's conditional URL, `Task?identifier=system|value`). A Task no
 * longer there is listed as `not-found`.
 */
export async function readRequests(client: FhirTargetClient, tasks: { key: string; id: string }[]): Promise<CoordinationRequest[]> {
  const out: CoordinationRequest[] = [];
  for (const t of tasks) {
    const identifier = identifierValue(t.key);
    try {
      const { body } = await client.request<Task>('GET', `Task/${t.id}`);
      out.push(requestView(body, identifier));
    } catch (e) {
      if (e instanceof TargetError && (e.status === 404 || e.status === 410))
        out.push({ occasion: occasionFromIdentifier(identifier), identifier, status: 'not-found' });
      else throw e;
    }
  }
  return out.sort((a, b) => (a.identifier < b.identifier ? -1 : a.identifier > b.identifier ? 1 : 0));
}

/** The identifier value of a conditional URL `Task?identifier=system|value`. */
function identifierValue(key: string): string {
  const raw = new URLSearchParams(key.slice(key.indexOf('?') + 1)).get('identifier') ?? '';
  return raw.slice(raw.indexOf('|') + 1);
}

/** `{episodeId}/coordination-request/{occasion}[/…]` → occasion (when the Task itself is gone). */
function occasionFromIdentifier(value: string): string {
  return /(guidance-started|risk-follow-up|guidance-ended)/.exec(value)?.[1] ?? 'unknown';
}

/** A request as `listCoordination` lists it. */
export interface CoordinationRequestView extends CoordinationRequest {
  /**
   * Its due date has passed and it still waits for someone to act (`requested`, `received`,
   * `accepted`, `in-progress`): the same rule as `imh-bridge coordination` (`isOverdue`).
   */
  overdue: boolean;
}

/** One episode's requests on one primary target, as last read. */
export interface CoordinationEntry {
  /** `{clinic org number}/{episodeId}` */
  episodeKey: string;
  /** `primary.<org number>` */
  target: string;
  /** When the requests were read from the primary server. */
  readAt: string;
  requests: CoordinationRequestView[];
}

/**
 * The latest read-back of every episode's coordination requests of `tenant`, ordered by
 * episode key and target, with each request's overdue flag computed against `now` (ms since the
 * epoch) by `isOverdue`: a due date (the bridge writes calendar days) has passed once `now` is in
 * a later day, so a request due `2026-05-05` is overdue from `2026-05-06` on while it is open.
 */
export async function listCoordination(store: DeliveryStore, tenant: string, now: number = Date.now()): Promise<CoordinationEntry[]> {
  const at = new Date(now).toISOString();
  return (await store.listCoordination(tenant)).map((r: CoordinationRecord) => ({
    episodeKey: r.episodeKey,
    target: r.target,
    readAt: r.readAt,
    requests: r.requests.map((q) => ({ ...q, overdue: isOverdue(q.status, q.due, at) })),
  }));
}

/** Most episodes whose requests one scheduled run reads back (each is a GET per open request). */
export const DEFAULT_REFRESH_LIMIT = 25;

export interface RefreshSettings {
  /** A read-back older than this is read again. */
  olderThanMs: number;
  /** Most episodes (per target) read in one run; the rest wait for the next. */
  limit?: number;
}

/** What one scheduled refresh did (counts only: no identifiers, no personal data). */
export interface RefreshResult {
  /** Episodes whose requests were read and stored. */
  refreshed: number;
  /** Episodes whose read failed (the server answered an error or not at all); kept as they were. */
  failed: number;
  /** Episodes left for a later run: their target is not configured, or failed earlier in this run. */
  skipped: number;
}

/**
 * The scheduled read-back (shared contract `sharing.md`: the bridge "reads the status back and
 * shows it to the clinic", not only when an episode is sent again): for episodes of every
 * tenant whose last read-back is older than `olderThanMs` and still holds a request not in a
 * final status (FINAL_REQUEST_STATUSES), the open requests are read again with `readRequests`,
 * by the server ids the ledger holds, exactly as after a delivery; final ones keep the status
 * last read. At most `limit` episodes are read per run, longest unread first. A target that
 * fails is not asked again in the same run (its other episodes wait), and a read that fails
 * leaves the stored read-back and its `readAt` as they were. The new read replaces the stored
 * one only if no delivery stored a newer one meanwhile (`replaceCoordination`).
 */
export async function refreshCoordination(
  deps: { store: DeliveryStore; clientFor(target: string): FhirTargetClient; now(): number },
  settings: RefreshSettings,
): Promise<RefreshResult> {
  const limit = settings.limit ?? DEFAULT_REFRESH_LIMIT;
  const readBefore = new Date(deps.now() - settings.olderThanMs).toISOString();
  // More candidates than reads, so that a target that is down does not hold up the others.
  const due = await deps.store.listCoordinationDue({ readBefore, limit: limit * 4 });
  const result: RefreshResult = { refreshed: 0, failed: 0, skipped: 0 };
  const down = new Set<string>();
  let reads = 0;
  for (const record of due) {
    if (reads >= limit) break;
    if (down.has(record.target)) {
      result.skipped++;
      continue;
    }
    let client: FhirTargetClient;
    try {
      client = deps.clientFor(record.target);
    } catch {
      // The target is no longer configured: nothing to read it from.
      down.add(record.target);
      result.skipped++;
      continue;
    }
    const ledger = await deps.store.getLedger(record.tenant, record.episodeKey, record.target);
    const last = new Map(record.requests.map((q) => [q.identifier, q]));
    const open = (ledger?.resources ?? []).filter((r) => {
      if (r.type !== 'Task' || !r.key.startsWith('Task?')) return false;
      const before = last.get(identifierValue(r.key));
      return !before || !FINAL_REQUEST_STATUSES.includes(before.status);
    });
    if (!open.length) {
      // The ledger names none of the open requests (it cannot, after a delivery stored them): nothing to read.
      result.skipped++;
      continue;
    }
    reads++;
    let read: CoordinationRequest[];
    try {
      read = await readRequests(client, open);
    } catch (e) {
      if (!(e instanceof TargetError)) throw e;
      down.add(record.target);
      result.failed++;
      continue;
    }
    const merged = new Map(last);
    for (const q of read) merged.set(q.identifier, q);
    const requests = [...merged.values()].sort((a, b) => (a.identifier < b.identifier ? -1 : a.identifier > b.identifier ? 1 : 0));
    await deps.store.replaceCoordination({ ...record, readAt: new Date(deps.now()).toISOString(), requests }, record.readAt);
    result.refreshed++;
  }
  return result;
}
