/**
 * The coordination requests of each episode as the servers hold them (shared contract
 * `sharing.md`, "Coordination requests"): the bridge's Tasks on the primary team's server
 * (started, risk follow-up, ended) and, on the clinic's own server, the Tasks telling the
 * therapist that a risk was not shared. The clinic sees what the primary team has done with
 * each request and which are overdue.
 *
 * `summariseRequests` is pure (Tasks and the time in, rows out), for the CLI and the HTTP route
 * alike; `searchTasks` does the reading through an injected client.
 */
import type { Bundle, Task } from '@medplum/fhirtypes';
import { codeSystemUrl } from '../fhir/systems.ts';
import type { FhirTargetClient } from '../sync/client.ts';
import type { RequestOccasion } from './primary-content.ts';

/** Every occasion of CodeSystem coordination-request, in the order an episode meets them. */
export type Occasion = RequestOccasion | 'risk-not-shared';

export const OCCASIONS: readonly Occasion[] = ['guidance-started', 'risk-follow-up', 'risk-not-shared', 'guidance-ended'];

/** The code system of every coordination request (mappings/CodeSystem-coordination-request.json). */
export const COORDINATION_REQUEST_SYSTEM = codeSystemUrl('coordination-request');

/**
 * Task statuses in which the request still waits for someone to act: past its due date, such a
 * request is overdue (https://hl7.org/fhir/R4/valueset-task-status.html). A request the primary
 * team completed, rejected or put on hold, or the clinic cancelled, is never overdue.
 */
export const OPEN_STATUSES: ReadonlySet<string> = new Set(['requested', 'received', 'accepted', 'in-progress']);

/** One coordination request as its server holds it. */
export interface RequestRow {
  occasion: Occasion;
  /** The assessment with the positive self-harm item (risk-follow-up, risk-not-shared). */
  assessmentId?: string;
  /** Whose server holds it: risk-not-shared lives on the clinic's own server, every other request on the primary team's. */
  server: 'primary' | 'clinic';
  /** `Task.status` as the server has it now (the primary team's own word once they act). */
  status: string;
  /** `Task.statusReason.text`, e.g. why the clinic cancelled it. */
  statusReason?: string;
  /** `Task.priority` (`urgent` for risks, otherwise `routine`). */
  priority?: string;
  /** `Task.restriction.period.end`: the due date (a date or a date-time). */
  due?: string;
  /** The due date has passed and the request is still open (see OPEN_STATUSES). */
  overdue: boolean;
  /** `meta.lastUpdated`: when the server last saw it change. */
  lastModified?: string;
  /** `Task/{id}` on its server. */
  task?: string;
}

/** The coordination requests of one episode. */
export interface EpisodeRequests {
  /** Organisation number of the clinic that runs the episode. */
  clinicOrg: string;
  episodeId: string;
  /** In the order of OCCASIONS, then by assessment. */
  requests: RequestRow[];
  /** How many of `requests` are overdue. */
  overdue: number;
}

/** What the bridge's identifier of a coordination request says. */
export interface RequestKey {
  clinicOrg: string;
  episodeId: string;
  occasion: Occasion;
  assessmentId?: string;
}

// Episode and assessment ids are 1–64 of A–Z a–z 0–9 . _ - (episode format), so `/` separates.
const ID = '[A-Za-z0-9._-]{1,64}';
const VALUE = new RegExp(`^(${ID})/(?:(guidance-started|guidance-ended)|(risk-follow-up|risk-not-shared)/(${ID}))$`);
const SYSTEM = /\/([^/]+)\/coordination-request$/;

/**
 * Reads the bridge's identifier of a coordination request
 * (`{namespace}/{clinic org}/coordination-request` | `{episodeId}/{occasion}[/{assessmentId}]`),
 * or undefined when the Task has none.
 */
export function parseRequestIdentifier(task: Task): RequestKey | undefined {
  for (const id of task.identifier ?? []) {
    const org = id.system?.match(SYSTEM)?.[1];
    const v = id.value?.match(VALUE);
    if (!org || !v) continue;
    const [, episodeId, plain, withAssessment, assessmentId] = v;
    return plain
      ? { clinicOrg: org, episodeId: episodeId as string, occasion: plain as Occasion }
      : { clinicOrg: org, episodeId: episodeId as string, occasion: withAssessment as Occasion, assessmentId };
  }
  return undefined;
}

/**
 * Whether a request is overdue at `now` (ISO 8601). A due date without a time is a calendar day:
 * due today is not overdue, due yesterday is. Days are compared as written, in the offset of
 * `now` (as the gate compares consent dates).
 */
export function isOverdue(status: string | undefined, due: string | undefined, now: string): boolean {
  if (!status || !OPEN_STATUSES.has(status) || !due) return false;
  // A date of year, month or day precision has passed once `now` is in a later one.
  if (!due.includes('T')) return due < now.slice(0, due.length);
  const dueMs = Date.parse(due);
  const nowMs = Date.parse(now);
  return !Number.isNaN(dueMs) && !Number.isNaN(nowMs) && dueMs < nowMs;
}

const byNumber = new Intl.Collator('en', { numeric: true });

/**
 * Groups coordination-request Tasks by episode (clinic organisation and episode id, read from
 * the bridge's identifier), with status, priority, due date, overdue flag and last change of
 * each. Tasks without the bridge's identifier are left out (`parseRequestIdentifier` tells which).
 * Episodes come sorted by clinic and episode id.
 */
export function summariseRequests(tasks: readonly Task[], now: string): EpisodeRequests[] {
  const episodes = new Map<string, EpisodeRequests>();
  for (const task of tasks) {
    const key = parseRequestIdentifier(task);
    if (!key) continue;
    const id = `${key.clinicOrg}|${key.episodeId}`;
    let episode = episodes.get(id);
    if (!episode) episodes.set(id, (episode = { clinicOrg: key.clinicOrg, episodeId: key.episodeId, requests: [], overdue: 0 }));
    const due = task.restriction?.period?.end;
    const overdue = isOverdue(task.status, due, now);
    const row: RequestRow = {
      occasion: key.occasion,
      ...(key.assessmentId ? { assessmentId: key.assessmentId } : {}),
      server: key.occasion === 'risk-not-shared' ? 'clinic' : 'primary',
      status: task.status,
      ...(task.statusReason?.text ? { statusReason: task.statusReason.text } : {}),
      ...(task.priority ? { priority: task.priority } : {}),
      ...(due ? { due } : {}),
      overdue,
      ...(task.meta?.lastUpdated ? { lastModified: task.meta.lastUpdated } : {}),
      ...(task.id ? { task: `Task/${task.id}` } : {}),
    };
    episode.requests.push(row);
    if (overdue) episode.overdue++;
  }
  const out = [...episodes.values()].sort((a, b) => byNumber.compare(a.clinicOrg, b.clinicOrg) || byNumber.compare(a.episodeId, b.episodeId));
  for (const e of out) {
    e.requests.sort((a, b) => OCCASIONS.indexOf(a.occasion) - OCCASIONS.indexOf(b.occasion) || byNumber.compare(a.assessmentId ?? '', b.assessmentId ?? ''));
  }
  return out;
}

/** What a search read: the Tasks, and whether the server said it holds more than it returned. */
export interface SearchResult {
  tasks: Task[];
  /** The server's `total`, when it gave one larger than what its pages held. */
  missing?: number;
}

/**
 * Every Task matching `query` (e.g. `Task?code=…`), following the searchset's `next` links
 * (https://hl7.org/fhir/R4/http.html#paging). A `next` link must stay on the client's base URL:
 * the client's credentials go with each request, so a link elsewhere is refused.
 */
export async function searchTasks(client: Pick<FhirTargetClient, 'baseUrl' | 'request'>, query: string, maxPages = 100): Promise<SearchResult> {
  const tasks: Task[] = [];
  let total: number | undefined;
  let path: string | undefined = query;
  for (let page = 0; path !== undefined; page++) {
    if (page === maxPages) throw new Error(`more than ${maxPages} pages of results`);
    const { body }: { body: Bundle | undefined } = await client.request<Bundle>('GET', path);
    if (body?.resourceType !== 'Bundle') throw new Error('the server answered a search with something other than a Bundle');
    if (page === 0 && typeof body.total === 'number') total = body.total;
    for (const entry of body.entry ?? []) {
      const r = entry.resource;
      if (r?.resourceType === 'Task' && entry.search?.mode !== 'include' && entry.search?.mode !== 'outcome') tasks.push(r);
    }
    const next: string | undefined = body.link?.find((l) => l.relation === 'next')?.url;
    path = next === undefined ? undefined : relativeToBase(client.baseUrl, next);
  }
  return { tasks, ...(total !== undefined && total > tasks.length ? { missing: total - tasks.length } : {}) };
}

/** A `next` link as a path under `baseUrl`; throws when it points anywhere else. */
function relativeToBase(baseUrl: string, link: string): string {
  const base = new URL(baseUrl.replace(/\/+$/, '') + '/');
  let u: URL;
  try {
    u = new URL(link, base);
  } catch {
    throw new Error('the server gave a next link that is not a URL');
  }
  if (u.origin !== base.origin || !u.pathname.startsWith(base.pathname)) {
    throw new Error(`the server gave a next link outside its base URL (${u.origin}); not followed, so that the token stays with ${base.origin}`);
  }
  return u.pathname.slice(base.pathname.length) + u.search;
}

/** Search for the bridge's coordination requests of some occasions (all of them when none are named). */
export function requestQuery(occasions: readonly Occasion[] = []): string {
  const codes = occasions.length ? occasions.map((o) => `${COORDINATION_REQUEST_SYSTEM}|${o}`) : [`${COORDINATION_REQUEST_SYSTEM}|`];
  return `Task?code=${codes.map(encodeURIComponent).join(',')}&_count=100`;
}

const COLUMNS = ['CLINIC', 'EPISODE', 'REQUEST', 'SERVER', 'STATUS', 'PRIORITY', 'DUE', 'OVERDUE', 'LAST MODIFIED'] as const;

/** The rows as a plain-text table for people, one line per request, overdue ones marked. */
export function formatRequestsTable(episodes: readonly EpisodeRequests[]): string {
  if (!episodes.length) return 'no coordination requests found\n';
  const lines: string[][] = [[...COLUMNS]];
  for (const e of episodes) {
    for (const r of e.requests) {
      lines.push([
        e.clinicOrg,
        e.episodeId,
        r.assessmentId ? `${r.occasion} ${r.assessmentId}` : r.occasion,
        r.server,
        r.status,
        r.priority ?? '-',
        r.due ?? '-',
        r.overdue ? 'OVERDUE' : '-',
        r.lastModified ?? '-',
      ]);
    }
  }
  const widths = COLUMNS.map((_, i) => Math.max(...lines.map((l) => (l[i] as string).length)));
  return lines.map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i] as number))).join('  ')).join('\n') + '\n';
}
