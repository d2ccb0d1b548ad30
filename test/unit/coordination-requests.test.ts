/**
 * The clinic's view of the coordination requests (shared contract sharing.md, "Coordination
 * requests"): grouping by episode, the overdue rule at its edges, paging of the search.
 */
import type { Bundle, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { clinicSharing, evaluateGate } from '../../src/coordination/gate.ts';
import {
  COORDINATION_REQUEST_SYSTEM,
  formatRequestsTable,
  isOverdue,
  OPEN_STATUSES,
  parseRequestIdentifier,
  requestQuery,
  searchTasks,
  summariseRequests,
} from '../../src/coordination/requests.ts';
import { sharePrimaryParsed } from '../../src/coordination/share.ts';
import { parseEpisode } from '../../src/domain/parse.ts';
import { DEV_IDENTITY } from '../../src/fhir/identity.ts';
import { mapParsedEpisode } from '../../src/mapping/bundle.ts';
import { resources } from '../fixtures/bundle.ts';
import { activeFather, completed } from '../fixtures/examples.ts';

const AT = '2026-05-10T10:00:00Z';
const TASK_STATUSES = [
  'draft',
  'requested',
  'received',
  'accepted',
  'rejected',
  'ready',
  'cancelled',
  'in-progress',
  'on-hold',
  'failed',
  'completed',
  'entered-in-error',
] as const;

/** The mother's episode with a positive PHQ-9 self-harm item (A2), as the bridge would send it. */
function motherTasks(status: 'active' | 'finished'): Task[] {
  const e = completed();
  e.assessments[1].answers['9'] = 1;
  e.status = status;
  if (status === 'active') {
    delete e.period.end;
    delete e.closing;
  }
  const { bundle } = sharePrimaryParsed(parseEpisode(e, {}), { at: AT, hasTarget: () => true });
  return resources(bundle, 'Task') as Task[];
}

/** The father's risk that may not be shared, as the clinic's server holds it. */
function fatherClinicTasks(): Task[] {
  const e = parseEpisode(activeFather(), {});
  const bundle = mapParsedEpisode(e, DEV_IDENTITY, clinicSharing(evaluateGate(e, AT, () => true)));
  return resources(bundle, 'Task') as Task[];
}

const stored = (t: Task, id: string, lastUpdated: string, change: Partial<Task> = {}): Task => ({ ...t, ...change, id, meta: { ...t.meta, lastUpdated } });

describe('isOverdue', () => {
  it('a due date is a calendar day: due today is not overdue, due yesterday is', () => {
    expect(isOverdue('requested', '2026-01-13', '2026-01-13T23:59:59Z')).toBe(false);
    expect(isOverdue('requested', '2026-01-13', '2026-01-13')).toBe(false);
    expect(isOverdue('requested', '2026-01-13', '2026-01-14T00:00:00Z')).toBe(true);
    expect(isOverdue('requested', '2026-01-13', '2026-01-14')).toBe(true);
    expect(isOverdue('requested', '2026-01-13', '2026-01-12T10:00:00Z')).toBe(false);
  });

  it('reads the day in the offset of now (just after midnight in Oslo is the next day there)', () => {
    expect(isOverdue('requested', '2026-01-13', '2026-01-14T00:30:00+01:00')).toBe(true);
    // The same instant written in UTC is still the 13th.
    expect(isOverdue('requested', '2026-01-13', '2026-01-13T23:30:00Z')).toBe(false);
  });

  it('a due date-time is an instant; a month or year has passed once now is in a later one', () => {
    expect(isOverdue('requested', '2026-01-13T12:00:00Z', '2026-01-13T12:00:00Z')).toBe(false);
    expect(isOverdue('requested', '2026-01-13T12:00:00Z', '2026-01-13T12:00:01Z')).toBe(true);
    expect(isOverdue('requested', '2026-01-13T12:00:00+01:00', '2026-01-13T11:30:00Z')).toBe(true);
    expect(isOverdue('requested', '2026-01', '2026-01-31T23:00:00Z')).toBe(false);
    expect(isOverdue('requested', '2026-01', '2026-02-01')).toBe(true);
  });

  it('only a request still waiting for action is overdue; one acted on to an end or a pause is not', () => {
    const late = (s: string) => isOverdue(s, '2026-01-13', AT);
    expect(TASK_STATUSES.filter(late)).toEqual(['requested', 'received', 'accepted', 'in-progress']);
    expect([...OPEN_STATUSES].sort()).toEqual(['accepted', 'in-progress', 'received', 'requested']);
  });

  it('a request with no due date is never overdue', () => {
    expect(isOverdue('requested', undefined, AT)).toBe(false);
  });
});

describe('parseRequestIdentifier', () => {
  it("reads clinic, episode, occasion and assessment from the bridge's identifier", () => {
    const [risk] = motherTasks('finished').filter((t) => t.code?.coding?.[0]?.code === 'risk-follow-up');
    expect(parseRequestIdentifier(risk as Task)).toEqual({ clinicOrg: '974557746', episodeId: 'VG-2026-0042', occasion: 'risk-follow-up', assessmentId: 'A2' });
    const [notShared] = fatherClinicTasks();
    expect(parseRequestIdentifier(notShared as Task)).toMatchObject({ occasion: 'risk-not-shared', assessmentId: expect.any(String) });
  });

  it("ignores identifiers that are not the bridge's", () => {
    const t: Task = { resourceType: 'Task', status: 'requested', intent: 'order', identifier: [{ system: 'urn:other', value: 'VG-1/guidance-started' }] };
    expect(parseRequestIdentifier(t)).toBeUndefined();
    t.identifier = [{ system: `${DEV_IDENTITY.namespace}/974557746/coordination-request`, value: 'VG-1/something-else' }];
    expect(parseRequestIdentifier(t)).toBeUndefined();
  });
});

describe('summariseRequests', () => {
  it('groups the requests of both servers by episode, each with status, priority, due, overdue and last change', () => {
    const [started, risk] = motherTasks('active');
    expect(started?.code?.coding?.[0]?.code).toBe('guidance-started');
    expect(risk?.code?.coding?.[0]?.code).toBe('risk-follow-up');
    const [notShared] = fatherClinicTasks();
    const father = parseRequestIdentifier(notShared as Task);
    const tasks = [
      stored(notShared as Task, 'c1', '2026-05-10T08:00:00Z'),
      stored(risk as Task, 'p2', '2026-01-12T15:00:00Z', { status: 'accepted' }),
      stored(started as Task, 'p1', '2026-01-12T09:00:00Z'),
    ];
    const rows = summariseRequests(tasks, '2026-01-13T10:00:00+01:00');
    expect(rows.map((e) => [e.clinicOrg, e.episodeId])).toEqual(
      [
        ['974557746', 'VG-2026-0042'],
        [father?.clinicOrg, father?.episodeId],
      ].sort((a, b) => `${a[0]}|${a[1]}`.localeCompare(`${b[0]}|${b[1]}`)),
    );
    const mother = rows.find((e) => e.episodeId === 'VG-2026-0042');
    expect(mother).toEqual({
      clinicOrg: '974557746',
      episodeId: 'VG-2026-0042',
      overdue: 0,
      requests: [
        {
          occasion: 'guidance-started',
          server: 'primary',
          status: 'requested',
          priority: 'routine',
          overdue: false,
          lastModified: '2026-01-12T09:00:00Z',
          task: 'Task/p1',
        },
        {
          occasion: 'risk-follow-up',
          assessmentId: 'A2',
          server: 'primary',
          status: 'accepted',
          priority: 'urgent',
          due: '2026-01-13',
          overdue: false,
          lastModified: '2026-01-12T15:00:00Z',
          task: 'Task/p2',
        },
      ],
    });
    const fatherRow = rows.find((e) => e.episodeId === father?.episodeId);
    expect(fatherRow?.requests).toEqual([
      {
        occasion: 'risk-not-shared',
        assessmentId: father?.assessmentId,
        server: 'clinic',
        status: 'requested',
        priority: 'urgent',
        overdue: false,
        lastModified: '2026-05-10T08:00:00Z',
        task: 'Task/c1',
      },
    ]);
    // A day later the accepted risk follow-up is overdue: accepting is not following up.
    const later = summariseRequests(tasks, '2026-01-14T10:00:00+01:00').find((e) => e.episodeId === 'VG-2026-0042');
    expect(later?.overdue).toBe(1);
    expect(later?.requests.map((r) => r.overdue)).toEqual([false, true]);
  });

  it("a risk follow-up the primary team completed is not overdue; the clinic's cancellation reason is shown", () => {
    const [, risk] = motherTasks('active');
    const done = summariseRequests([stored(risk as Task, 'p2', AT, { status: 'completed' })], AT);
    expect(done[0]?.requests[0]).toMatchObject({ status: 'completed', overdue: false });
    expect(done[0]?.overdue).toBe(0);
    const cancelled = summariseRequests(
      [stored(risk as Task, 'p2', AT, { status: 'cancelled', statusReason: { text: 'Cancelled by the infant mental health clinic: withdrawn.' } })],
      AT,
    );
    expect(cancelled[0]?.requests[0]).toMatchObject({
      status: 'cancelled',
      overdue: false,
      statusReason: 'Cancelled by the infant mental health clinic: withdrawn.',
    });
  });

  it("orders requests as an episode meets them, assessments by number; leaves out Tasks without the bridge's identifier", () => {
    const [risk] = motherTasks('finished').filter((t) => t.code?.coding?.[0]?.code === 'risk-follow-up');
    const [ended] = motherTasks('finished').filter((t) => t.code?.coding?.[0]?.code === 'guidance-ended');
    const other = (id: string): Task => ({
      ...(risk as Task),
      identifier: [{ ...(risk as Task).identifier?.[0], value: `VG-2026-0042/risk-follow-up/${id}` }],
    });
    const foreign: Task = {
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      code: { coding: [{ system: COORDINATION_REQUEST_SYSTEM, code: 'risk-follow-up' }] },
    };
    const [episode, ...more] = summariseRequests([ended as Task, other('A10'), foreign, risk as Task, other('A9')], AT);
    expect(more).toEqual([]);
    expect(episode?.requests.map((r) => `${r.occasion} ${r.assessmentId ?? ''}`.trim())).toEqual([
      'risk-follow-up A2',
      'risk-follow-up A9',
      'risk-follow-up A10',
      'guidance-ended',
    ]);
    expect(episode?.overdue).toBe(3);
  });

  it('is empty for no Tasks', () => {
    expect(summariseRequests([], AT)).toEqual([]);
  });
});

describe('formatRequestsTable', () => {
  it('one line per request under a header, overdue ones marked', () => {
    const [started, risk] = motherTasks('active');
    const text = formatRequestsTable(
      summariseRequests([stored(started as Task, 'p1', '2026-01-12T09:00:00Z'), stored(risk as Task, 'p2', '2026-01-12T09:00:00Z')], AT),
    );
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CLINIC\s+EPISODE\s+REQUEST\s+SERVER\s+STATUS\s+PRIORITY\s+DUE\s+OVERDUE\s+LAST MODIFIED$/);
    expect(lines[1]).toMatch(/^974557746\s+VG-2026-0042\s+guidance-started\s+primary\s+requested\s+routine\s+-\s+-\s+2026-01-12T09:00:00Z$/);
    expect(lines[2]).toMatch(/^974557746\s+VG-2026-0042\s+risk-follow-up A2\s+primary\s+requested\s+urgent\s+2026-01-13\s+OVERDUE\s+2026-01-12T09:00:00Z$/);
    // Columns line up.
    expect(lines[1]?.indexOf('primary')).toBe(lines[0]?.indexOf('SERVER'));
  });

  it('says so when there is nothing', () => {
    expect(formatRequestsTable([])).toBe('no coordination requests found\n');
  });
});

describe('searchTasks', () => {
  const BASE = 'https://fhir.primary.example/fhir';
  const page = (tasks: string[], next?: string, total?: number): Bundle => ({
    resourceType: 'Bundle',
    type: 'searchset',
    ...(total !== undefined ? { total } : {}),
    ...(next ? { link: [{ relation: 'next', url: next }] } : {}),
    entry: tasks.map((id) => ({ search: { mode: 'match' }, resource: { resourceType: 'Task', id, status: 'requested', intent: 'order' } as Task })),
  });
  const client = (pages: Record<string, Bundle>) => {
    const asked: string[] = [];
    return {
      asked,
      baseUrl: BASE,
      request: async <T>(method: string, path: string) => {
        asked.push(`${method} ${path}`);
        const body = pages[path];
        if (!body) throw new Error(`unexpected ${path}`);
        return { status: 200, headers: new Headers(), body: body as T };
      },
    };
  };

  it('follows next links (absolute or relative) on the base URL until there are none', async () => {
    const c = client({
      'Task?code=x': page(['a', 'b'], `${BASE}/Task?code=x&_page=2`, 5),
      'Task?code=x&_page=2': page(['c', 'd'], 'Task?code=x&_page=3'),
      'Task?code=x&_page=3': page(['e']),
    });
    const r = await searchTasks(c, 'Task?code=x');
    expect(r.tasks.map((t) => t.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(r.missing).toBeUndefined();
    expect(c.asked).toEqual(['GET Task?code=x', 'GET Task?code=x&_page=2', 'GET Task?code=x&_page=3']);
  });

  it('refuses a next link to another server, so that the token goes nowhere else', async () => {
    const c = client({ 'Task?code=x': page(['a'], 'https://elsewhere.example/fhir/Task?page=2') });
    await expect(searchTasks(c, 'Task?code=x')).rejects.toThrow(/outside its base URL \(https:\/\/elsewhere\.example\)/);
    const up = client({ 'Task?code=x': page(['a'], 'https://fhir.primary.example/other/Task?page=2') });
    await expect(searchTasks(up, 'Task?code=x')).rejects.toThrow(/outside its base URL/);
    expect(up.asked).toHaveLength(1);
  });

  it('says how many requests a server held back when it gives a total but no next page', async () => {
    const r = await searchTasks(client({ 'Task?code=x': page(['a', 'b'], undefined, 7) }), 'Task?code=x');
    expect(r.missing).toBe(5);
  });

  it('refuses an answer that is not a Bundle', async () => {
    const c = { baseUrl: BASE, request: async <T>() => ({ status: 200, headers: new Headers(), body: { resourceType: 'OperationOutcome' } as T }) };
    await expect(searchTasks(c, 'Task?code=x')).rejects.toThrow(/other than a Bundle/);
  });
});

describe('requestQuery', () => {
  it('searches by the coordination-request code system, all of it or named occasions', () => {
    expect(decodeURIComponent(requestQuery())).toBe(`Task?code=${COORDINATION_REQUEST_SYSTEM}|&_count=100`);
    expect(decodeURIComponent(requestQuery(['risk-not-shared']))).toBe(`Task?code=${COORDINATION_REQUEST_SYSTEM}|risk-not-shared&_count=100`);
  });
});
