/**
 * Outcomes over time. Expected numbers are worked out by hand from the cited values in
 * src/instruments/norms.ts (Jacobson & Truax 1991: SE = SD·√(1 − r), Sdiff = √2·SE,
 * RCI = (x2 − x1) / Sdiff, reliable when |RCI| ≥ 1.96):
 *
 * PHQ-9  SD 3.5 (Kocalevent et al. 2013), r 0.86 (Kroenke et al. 2001):
 *        SE = 3.5·√0.14 = 3.5·0.374166 = 1.309580, Sdiff = 1.414214·1.309580 = 1.852026,
 *        1.96·Sdiff = 3.6300 points; cut-off ≥ 10.
 * GAD-7  r 0.83 (Spitzer et al. 2006); SD women 3.5, men 3.2 (Löwe et al. 2008):
 *        women: SE = 3.5·√0.17 = 3.5·0.412311 = 1.443087, Sdiff = 2.040833, 1.96·Sdiff = 4.00003;
 *        men:   SE = 3.2·0.412311 = 1.319394, Sdiff = 1.865905, 1.96·Sdiff = 3.6572; cut-off ≥ 10.
 * EPDS   reliable change = 4 points (Matthey 2004), cut-off 12/13 (≥ 13 clinical); no RCI value.
 */
import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { parseEpisode } from '../../src/domain/parse.ts';
import { hasErrors } from '../../src/fhir/outcome.ts';
import { validateFhir } from '../../src/fhir/validate.ts';
import { episodeOutcomes, type InstrumentOutcome, outcomesParameters } from '../../src/instruments/outcomes.ts';
import { activeFather, completed } from '../fixtures/examples.ts';

const CLASSIFICATION = 'https://imh-bridge.example.no/fhir/CodeSystem/change-classification';
const SCORE = 'https://imh-bridge.example.no/fhir/CodeSystem/instrument-score';
const LOINC = 'http://loinc.org';

const byMeasure = (outcomes: InstrumentOutcome[], instrument: string, measure = 'total') => {
  const o = outcomes.find((x) => x.instrument === instrument && x.measure === measure);
  if (!o) throw new Error(`no outcome for ${instrument} ${measure}`);
  return o;
};

const answers = (values: number[]): Record<string, number> => Object.fromEntries(values.map((v, i) => [String(i + 1), v]));

/** The completed example with its assessments replaced. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function withAssessments(assessments: any[], base = completed()) {
  base.assessments = assessments;
  return parseEpisode(base);
}

const parent = (id: string, instrument: string, completedOn: string, values: number[]) => ({
  assessmentId: id,
  instrument,
  completedOn,
  respondent: 'parent',
  answers: answers(values),
});

describe('the completed contract example', () => {
  const outcomes = episodeOutcomes(parseEpisode(completed()));

  it('has one outcome per measure given twice, in instrument order', () => {
    expect(outcomes.map((o) => `${o.instrument} ${o.measure}`)).toEqual([
      'EPDS total',
      'PHQ-9 total',
      'GAD-7 total',
      'PRFQ prfq-pre-mentalizing',
      'PRFQ prfq-certainty-about-mental-states',
      'PRFQ prfq-interest-and-curiosity',
      'PDI-RF pdi-rf',
    ]);
    expect(outcomes.every((o) => o.administrations === 2)).toBe(true);
  });

  it('EPDS 16 → 8: change −8 ≥ 4 points better, from ≥ 13 to < 13: recovered', () => {
    // A1: items 1,2,4 = 2+2+2 = 6; reversed 3,5–10 at positions 1,2,1,1,2,1,3 → 2+1+2+2+1+2+0 = 10; 16.
    // A6: items 1,2,4 = 1+1+1 = 3; reversed at positions 2,2,2,3,2,2,3 → 1+1+1+0+1+1+0 = 5; 8.
    expect(byMeasure(outcomes, 'EPDS')).toEqual({
      instrument: 'EPDS',
      measure: 'total',
      code: { system: LOINC, code: '99046-5', display: 'Total score [EPDS]' },
      administrations: 2,
      first: { assessmentId: 'A1', date: '2026-01-12', value: 16 },
      latest: { assessmentId: 'A6', date: '2026-05-04', value: 8 },
      change: -8,
      direction: 'lower-is-better',
      reliableChangeThreshold: 4,
      cutoff: 13,
      classification: 'recovered',
      source: 'matthey-2004, cox-holden-sagovsky-1987',
    });
  });

  it('PHQ-9 13 → 7: RCI −6 / 1.852026 = −3.2397, from ≥ 10 to < 10: recovered', () => {
    const o = byMeasure(outcomes, 'PHQ-9');
    expect(o).toMatchObject({
      code: { system: LOINC, code: '44261-6' },
      first: { assessmentId: 'A2', date: '2026-01-12', value: 13 }, // 2+2+1+2+2+2+1+1+0
      latest: { assessmentId: 'A7', date: '2026-05-04', value: 7 }, // 1+1+1+1+1+1+0+1+0
      change: -6,
      cutoff: 10,
      classification: 'recovered',
      source: 'kroenke-spitzer-williams-2001, kocalevent-hinz-brahler-2013',
    });
    expect(o.rci).toBeCloseTo(-3.2397, 4);
    expect(o.reliableChangeThreshold).toBeCloseTo(3.63, 4);
  });

  it('GAD-7 11 → 6 (mother: women’s SD 3.5): RCI −5 / 2.040833 = −2.4500, from ≥ 10 to < 10: recovered', () => {
    const o = byMeasure(outcomes, 'GAD-7');
    expect(o).toMatchObject({
      code: { system: LOINC, code: '70274-6' },
      first: { assessmentId: 'A3', value: 11 }, // 2+2+1+2+1+2+1
      latest: { assessmentId: 'A8', value: 6 }, // 1+1+1+1+0+1+1
      change: -5,
      cutoff: 10,
      classification: 'recovered',
      source: 'spitzer-2006, lowe-2008',
    });
    expect(o.rci).toBeCloseTo(-2.45, 4);
    expect(o.reliableChangeThreshold).toBeCloseTo(4.0, 4);
  });

  it('PRFQ subscales: change only, not classified', () => {
    // A4 pre-mentalizing 1,4,7,10,13,16 = 4,3,5,3,4,5 → 24/6 = 4;   A9: 2,2,3,1,2,2 → 12/6 = 2.
    // A4 certainty 2,5,8,11r,14,17 = 3,2,3,(8−6=2),3,3 → 16/6 = 2.67; A9: 4,4,4,(8−4=4),4,4 → 4.
    // A4 interest 3,6,9,12,15,18r = 4,3,4,3,4,(8−5=3) → 21/6 = 3.5; A9: 6,6,5,6,6,(8−2=6) → 35/6 = 5.83.
    const expected: [string, number, number, number, string][] = [
      ['prfq-pre-mentalizing', 4, 2, -2, 'lower-is-better'],
      ['prfq-certainty-about-mental-states', 2.67, 4, 1.33, 'higher-is-better'],
      ['prfq-interest-and-curiosity', 3.5, 5.83, 2.33, 'higher-is-better'],
    ];
    for (const [code, first, latest, change, direction] of expected) {
      const o = byMeasure(outcomes, 'PRFQ', code);
      expect(o).toEqual({
        instrument: 'PRFQ',
        measure: code,
        code: expect.objectContaining({ system: SCORE, code }),
        administrations: 2,
        first: { assessmentId: 'A4', date: '2026-01-12', value: first },
        latest: { assessmentId: 'A9', date: '2026-05-04', value: latest },
        change,
        direction,
        classification: 'not-classified',
      });
    }
  });

  it('PDI-RF 2 → 4: change +2, not classified', () => {
    expect(byMeasure(outcomes, 'PDI-RF', 'pdi-rf')).toEqual({
      instrument: 'PDI-RF',
      measure: 'pdi-rf',
      code: expect.objectContaining({ system: SCORE, code: 'pdi-rf' }),
      administrations: 2,
      first: { assessmentId: 'A5', date: '2026-01-14', value: 2 },
      latest: { assessmentId: 'A10', date: '2026-05-06', value: 4 },
      change: 2,
      direction: 'higher-is-better',
      classification: 'not-classified',
    });
  });

  it('is pure: the same episode gives the same outcomes', () => {
    expect(episodeOutcomes(parseEpisode(completed()))).toEqual(outcomes);
  });
});

describe('fewer than two administrations', () => {
  it('one administration per instrument gives no outcomes', () => {
    const e = completed();
    e.assessments = e.assessments.slice(0, 5); // A1–A5: EPDS, PHQ-9, GAD-7, PRFQ, PDI-RF once each
    expect(episodeOutcomes(parseEpisode(e))).toEqual([]);
  });

  it('no assessments give no outcomes, and a Parameters without parameters', () => {
    const e = completed();
    delete e.assessments;
    expect(episodeOutcomes(parseEpisode(e))).toEqual([]);
    const p = outcomesParameters(parseEpisode(e));
    expect(p).toEqual({ resourceType: 'Parameters' });
    expect(hasErrors(validateFhir(p))).toBe(false);
  });
});

describe('classification', () => {
  it('deterioration: EPDS 16 → 21 (+5 ≥ 4) and PHQ-9 4 → 9 (RCI 5 / 1.852026 = 2.6997)', () => {
    const outcomes = episodeOutcomes(
      withAssessments([
        parent('E1', 'EPDS', '2026-01-12', [2, 2, 1, 2, 2, 1, 1, 2, 1, 3]), // 16, as A1
        // items 1,2,4 = 3+3+3 = 9; item 3,5,6,7 at position 0 → 4·3 = 12; items 8,9,10 at position 3 → 0; 21
        parent('E2', 'EPDS', '2026-03-01', [3, 3, 0, 3, 0, 0, 0, 3, 3, 3]),
        parent('P1', 'PHQ-9', '2026-01-12', [1, 1, 1, 1, 0, 0, 0, 0, 0]), // 4
        parent('P2', 'PHQ-9', '2026-03-01', [1, 1, 1, 1, 1, 1, 1, 1, 1]), // 9
      ]),
    );
    expect(byMeasure(outcomes, 'EPDS')).toMatchObject({ first: { value: 16 }, latest: { value: 21 }, change: 5, classification: 'deteriorated' });
    const phq = byMeasure(outcomes, 'PHQ-9');
    expect(phq).toMatchObject({ change: 5, classification: 'deteriorated' });
    expect(phq.rci).toBeCloseTo(2.6997, 4);
  });

  it('improved without recovery, and unchanged', () => {
    const outcomes = episodeOutcomes(
      withAssessments([
        // EPDS 21 → 16: −5 ≥ 4 points better but still ≥ 13: improved
        parent('E1', 'EPDS', '2026-01-12', [3, 3, 0, 3, 0, 0, 0, 3, 3, 3]),
        parent('E2', 'EPDS', '2026-03-01', [2, 2, 1, 2, 2, 1, 1, 2, 1, 3]),
        // PHQ-9 12 → 9: RCI −3 / 1.852026 = −1.6198, |RCI| < 1.96: unchanged (although it crosses 10)
        parent('P1', 'PHQ-9', '2026-01-12', [2, 2, 2, 1, 1, 1, 1, 1, 1]), // 3·2 + 6·1 = 12
        parent('P2', 'PHQ-9', '2026-03-01', [1, 1, 1, 1, 1, 1, 1, 1, 1]), // 9
      ]),
    );
    expect(byMeasure(outcomes, 'EPDS')).toMatchObject({ change: -5, classification: 'improved' });
    const phq = byMeasure(outcomes, 'PHQ-9');
    expect(phq).toMatchObject({ change: -3, classification: 'unchanged' });
    expect(phq.rci).toBeCloseTo(-1.6198, 4);
  });

  it('EPDS reliable change is 4 points: a change of 3 is unchanged', () => {
    const outcomes = episodeOutcomes(
      withAssessments([
        parent('E1', 'EPDS', '2026-01-12', [2, 2, 1, 2, 2, 1, 1, 2, 1, 3]), // 16
        parent('E2', 'EPDS', '2026-03-01', [1, 1, 1, 1, 2, 1, 1, 2, 1, 3]), // 16 − 3 (items 1,2,4 one lower) = 13
      ]),
    );
    expect(byMeasure(outcomes, 'EPDS')).toMatchObject({ first: { value: 16 }, latest: { value: 13 }, change: -3, classification: 'unchanged' });
  });

  it('GAD-7 norms follow the parent’s gender: +4 is not reliable for a mother, reliable for a father', () => {
    const gad = [
      parent('G1', 'GAD-7', '2026-01-12', [1, 1, 1, 0, 0, 0, 0]), // 3
      parent('G2', 'GAD-7', '2026-03-01', [1, 1, 1, 1, 1, 1, 1]), // 7
    ];
    // Mother (SD 3.5): RCI = 4 / 2.040833 = 1.959984 < 1.96 → unchanged.
    const mother = byMeasure(episodeOutcomes(withAssessments(gad)), 'GAD-7');
    expect(mother.rci).toBeCloseTo(1.959984, 5);
    expect(mother.classification).toBe('unchanged');
    // Father (SD 3.2): RCI = 4 / 1.865905 = 2.1437 ≥ 1.96 → deteriorated.
    const father = byMeasure(episodeOutcomes(withAssessments(gad, activeFather())), 'GAD-7');
    expect(father.rci).toBeCloseTo(2.1437, 4);
    expect(father.reliableChangeThreshold).toBeCloseTo(3.6572, 4);
    expect(father.classification).toBe('deteriorated');
  });

  it('orders administrations by completedOn, then assessmentId; first and latest are the ends', () => {
    const outcomes = episodeOutcomes(
      withAssessments([
        parent('P3', 'PHQ-9', '2026-04-01', [0, 0, 0, 0, 0, 0, 0, 0, 0]), // 0, latest
        parent('P2', 'PHQ-9', '2026-01-12', [1, 1, 1, 1, 1, 1, 1, 1, 1]), // 9, same day as P1, after it by id
        parent('P1', 'PHQ-9', '2026-01-12', [2, 2, 2, 2, 2, 2, 2, 2, 2]), // 18, first
      ]),
    );
    // 0 − 18 = −18; RCI = −18 / 1.852026 = −9.7191; 18 ≥ 10 → 0 < 10: recovered
    expect(byMeasure(outcomes, 'PHQ-9')).toMatchObject({
      administrations: 3,
      first: { assessmentId: 'P1', value: 18 },
      latest: { assessmentId: 'P3', value: 0 },
      change: -18,
      classification: 'recovered',
    });
  });
});

describe('outcomesParameters', () => {
  const params = outcomesParameters(parseEpisode(completed()));
  const part = (p: ParametersParameter, name: string) => p.part?.find((x) => x.name === name);

  it('validates as FHIR R4 with no errors', () => {
    const result = validateFhir(params);
    expect(result.issue?.filter((i) => i.severity === 'error' || i.severity === 'fatal')).toEqual([]);
  });

  it('has one outcome parameter per outcome, with the parts', () => {
    const p = params as Parameters;
    expect(p.parameter?.map((x) => x.name)).toEqual(Array(7).fill('outcome'));
    const epds = p.parameter?.[0] as ParametersParameter;
    expect(part(epds, 'instrument')?.valueString).toBe('EPDS');
    expect(part(epds, 'measure')?.valueString).toBe('total');
    expect(part(epds, 'code')?.valueCoding).toEqual({ system: LOINC, code: '99046-5', display: 'Total score [EPDS]' });
    expect(part(epds, 'administrations')?.valueInteger).toBe(2);
    expect(part(epds, 'first')?.part).toEqual([
      { name: 'assessmentId', valueString: 'A1' },
      { name: 'date', valueDate: '2026-01-12' },
      { name: 'value', valueDecimal: 16 },
    ]);
    expect(part(epds, 'latest')?.part?.[2]).toEqual({ name: 'value', valueDecimal: 8 });
    expect(part(epds, 'change')?.valueDecimal).toBe(-8);
    expect(part(epds, 'rci')).toBeUndefined(); // EPDS: published 4-point criterion, no RCI value
    expect(part(epds, 'reliableChangeThreshold')?.valueDecimal).toBe(4);
    expect(part(epds, 'classification')?.valueCoding).toEqual({ system: CLASSIFICATION, code: 'recovered', display: 'Recovered' });
    expect(part(epds, 'source')?.valueString).toBe('matthey-2004, cox-holden-sagovsky-1987');

    const phq = p.parameter?.[1] as ParametersParameter;
    expect(part(phq, 'rci')?.valueDecimal).toBe(-3.24); // −3.2397 to two decimals, as the published norms warrant

    const pdi = p.parameter?.[6] as ParametersParameter;
    expect(part(pdi, 'classification')?.valueCoding?.code).toBe('not-classified');
    expect(part(pdi, 'rci')).toBeUndefined();
    expect(part(pdi, 'source')).toBeUndefined();
  });
});
