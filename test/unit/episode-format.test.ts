import type { OperationOutcome } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { parseEpisode } from '../../src/domain/parse.ts';
import { OperationOutcomeError } from '../../src/fhir/outcome.ts';
import { activeFather, completed, example, exampleNames, plannedMinimal } from '../fixtures/examples.ts';

/** Parses and returns the OperationOutcome of a rejected episode. */
function rejection(input: unknown, options = {}): OperationOutcome {
  try {
    parseEpisode(input, options);
  } catch (e) {
    expect(e).toBeInstanceOf(OperationOutcomeError);
    return (e as OperationOutcomeError).outcome;
  }
  throw new Error('episode was accepted');
}

const pointers = (o: OperationOutcome) => o.issue.map((i) => i.expression?.[0]);
const textAt = (o: OperationOutcome, pointer: string) => o.issue.find((i) => i.expression?.[0] === pointer)?.details?.text ?? '';

describe('episode format 1.0', () => {
  it.each(exampleNames())('accepts the contract example %s', (name) => {
    expect(parseEpisode(example(name)).episodeId).toMatch(/^VG-/);
  });

  it('lists every problem at once, each with the JSON pointer of its field', () => {
    const e = completed();
    e.assessments[0].answers['3'] = 7;
    delete e.assessments[0].answers['4'];
    e.assessments[0].answers['11'] = 1;
    e.parent.nationalId = '02839440093';
    e.surprise = true;
    e.clinic.orgNumber = '974557747';
    const o = rejection(e);
    expect(pointers(o).sort()).toEqual(
      ['/assessments/0/answers/11', '/assessments/0/answers/3', '/assessments/0/answers/4', '/clinic/orgNumber', '/parent/nationalId', '/surprise'].sort(),
    );
    expect(textAt(o, '/assessments/0/answers/3')).toBe('assessment A1 (EPDS): item 3 must be between 0 and 3');
    expect(textAt(o, '/assessments/0/answers/4')).toBe('assessment A1 (EPDS): item 4 is required');
    expect(textAt(o, '/assessments/0/answers/11')).toMatch(/assessment A1 \(EPDS\): item "11" does not exist/);
    expect(textAt(o, '/surprise')).toMatch(/unknown field/);
    expect(o.issue.every((i) => i.severity === 'error')).toBe(true);
  });

  it('rejects unknown fields at any depth', () => {
    const e = completed();
    e.sessions[1].clips[0].thumbnail = 'x';
    expect(pointers(rejection(e))).toEqual(['/sessions/1/clips/0/thumbnail']);
  });

  it('rejects another major schema version with a clear message', () => {
    const e = plannedMinimal();
    e.schemaVersion = '2.0';
    const o = rejection(e);
    expect(pointers(o)).toEqual(['/schemaVersion']);
    expect(textAt(o, '/schemaVersion')).toMatch(/"2.0" is not supported/);
  });

  it('checks answer ranges per instrument (PRFQ is 1–7, PDI-RF −1…9)', () => {
    const e = completed();
    e.assessments[3].answers['5'] = 0;
    e.assessments[4].score = 10;
    expect(pointers(rejection(e)).sort()).toEqual(['/assessments/3/answers/5', '/assessments/4/score']);
  });

  it('rejects fractional answers and unknown instruments', () => {
    const e = completed();
    e.assessments[1].answers['2'] = 1.5;
    e.assessments[2].instrument = 'BDI-II';
    expect(pointers(rejection(e)).sort()).toEqual(['/assessments/1/answers/2', '/assessments/2/instrument']);
  });

  it('requires date-times with an offset and real calendar dates', () => {
    const e = completed();
    e.sessions[0].start = '2026-01-12T09:00:00';
    e.goals[0].startOn = '2026-02-30';
    const o = rejection(e);
    expect(pointers(o).sort()).toEqual(['/goals/0/startOn', '/sessions/0/start']);
    expect(textAt(o, '/sessions/0/start')).toMatch(/offset/);
  });

  it('applies status-dependent requirements', () => {
    const e = completed();
    delete e.period.end;
    delete e.closing;
    expect(pointers(rejection(e)).sort()).toEqual(['/closing', '/period/end']);

    const a = activeFather();
    delete a.therapist;
    delete a.period;
    expect(pointers(rejection(a)).sort()).toEqual(['/period', '/therapist']);

    const p = plannedMinimal();
    p.closing = { closedOn: '2026-11-20', reason: 'moved' };
    expect(pointers(rejection(p))).toEqual(['/closing']);
  });

  it('requires unique ids within the episode', () => {
    const e = completed();
    e.sessions[2].sessionId = 'S1';
    e.assessments[1].assessmentId = 'A1';
    e.goals[1].goalId = 'G1';
    e.sessions[3].clips[0].clipId = 'C2-1';
    // Renaming C4-1 also leaves S6's review of C4-1 pointing at nothing.
    expect(pointers(rejection(e)).sort()).toEqual([
      '/assessments/1/assessmentId',
      '/goals/1/goalId',
      '/sessions/2/sessionId',
      '/sessions/3/clips/0/clipId',
      '/sessions/5/reviewsClips/0',
    ]);
  });

  it('checks clip references: existing clips from earlier filming sessions only', () => {
    const e = completed();
    e.sessions[2].reviewsClips = ['C2-1', 'NOPE'];
    e.sessions[5].reviewsClips = ['C6-1']; // S6 (23 Feb) cannot review a clip filmed on 16 Mar
    const o = rejection(e);
    expect(pointers(o).sort()).toEqual(['/sessions/2/reviewsClips/1', '/sessions/5/reviewsClips/0']);
    expect(textAt(o, '/sessions/2/reviewsClips/1')).toMatch(/no clip "NOPE"/);
  });

  it('keeps clips on filming sessions and cancellation reasons on cancelled sessions', () => {
    const e = completed();
    e.sessions[2].clips = e.sessions[1].clips.map((c: { clipId: string }) => ({ ...c, clipId: `${c.clipId}x` }));
    e.sessions[0].cancellationReason = 'clinic';
    expect(pointers(rejection(e)).sort()).toEqual(['/sessions/0/cancellationReason', '/sessions/2/clips']);
  });

  it('needs primaryTreatment when consent names it as recipient', () => {
    const e = completed();
    delete e.primaryTreatment;
    expect(pointers(rejection(e))).toEqual(['/consent/recipient']);
  });

  it('refuses synthetic national ids where the deployment does not allow them', () => {
    const o = rejection(completed(), { allowSyntheticIds: false });
    expect(pointers(o).sort()).toEqual(['/infants/0/nationalId', '/parent/nationalId']);
    expect(textAt(o, '/parent/nationalId')).toMatch(/synthetic/);
  });

  it('accepts an infant without a national id, but not an infant without a birth date', () => {
    expect(parseEpisode(plannedMinimal()).infants[0]?.nationalId).toBeUndefined();
    const p = plannedMinimal();
    delete p.infants[0].birthDate;
    expect(pointers(rejection(p))).toEqual(['/infants/0/birthDate']);
  });

  it('rejects input that is not an object', () => {
    expect(rejection('hello').issue).toHaveLength(1);
    expect(rejection(null).issue).toHaveLength(1);
  });

  it('keeps Norwegian letters unchanged', () => {
    expect(parseEpisode(activeFather()).parent.given).toEqual(['Per', 'Øyvind']);
  });
});

describe('structural and cross-field problems together', () => {
  it('are listed in one answer', () => {
    const e = completed();
    e.assessments[0].answers['3'] = 9; // structural
    e.sessions[2].reviewsClips = ['NOPE']; // cross-field
    delete e.closing; // status-dependent
    const o = rejection(e);
    expect(pointers(o).sort()).toEqual(['/assessments/0/answers/3', '/closing', '/sessions/2/reviewsClips/0']);
  });

  it('do not invent cross-field problems from fields that are themselves broken', () => {
    const e = completed();
    e.status = 'paused';
    e.sessions[0].sessionId = 7;
    const o = rejection(e);
    expect(pointers(o).sort()).toEqual(['/sessions/0/sessionId', '/status']);
  });

  it('do not call a broken field missing', () => {
    const e = completed();
    e.closing.reason = 'bored';
    e.period.end = '2026-13-01';
    expect(pointers(rejection(e)).sort()).toEqual(['/closing/reason', '/period/end']);
  });

  it('report each problem once', () => {
    const e = completed();
    e.goals[1].goalId = 'G1';
    const o = rejection(e);
    expect(pointers(o)).toEqual(['/goals/1/goalId']);
  });
});

describe('national id months in episodes', () => {
  it('names the field of a national id whose month is impossible, and maps nothing', () => {
    const e = completed();
    e.parent.nationalId = '15259400020'; // valid check digits, month 25
    let error: unknown;
    try {
      parseEpisode(e);
    } catch (x) {
      error = x;
    }
    expect(error).toBeInstanceOf(OperationOutcomeError);
    const issues = (error as OperationOutcomeError).outcome.issue;
    const issue = issues.find((i) => i.expression?.includes('/parent/nationalId'));
    expect(issue?.details?.text).toMatch(/month digits are not a month/);
  });
});
