/**
 * The FHIR resources of one scored administration: score Observations (totals with bands,
 * subscales, ratings; https://hl7.org/fhir/R4/observation.html) and the self-harm Flag
 * (https://hl7.org/fhir/R4/flag.html). Episode mapping and SDC extraction ($extract) both add
 * them through `addScores`, so both paths write the same resources from the same answers.
 *
 * They live with the instruments rather than in fhir/: they are built from the instrument
 * definitions and scoring, and fhir/ (which the instruments use) must not depend back on them.
 */
import type { Flag, Observation } from '@medplum/fhirtypes';
import type { BundleScope, Ref } from '../fhir/bundle-scope.ts';
import { UCUM } from '../fhir/systems.ts';
import { coding } from '../fhir/terminology.ts';
import { INSTRUMENTS, type InstrumentId } from './definitions.ts';
import { score } from './scoring.ts';

const SURVEY = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey', display: 'Survey' }] };

export interface ScoreInput {
  instrument: InstrumentId;
  assessmentId: string;
  /** Raw answers as the episode format has them (EPDS positions, PHQ-9/GAD-7 0–3, PRFQ 1–7). */
  answers?: Record<string, number>;
  /** Rating score (PDI-RF). */
  rating?: number;
  /**
   * The QuestionnaireResponse the scores derive from. Absent where the response itself does not
   * go (the primary team's view): then nothing points at it, and the resources claim no profile
   * of ours (which requires the link).
   */
  response?: Ref;
  subject: Ref;
  author?: Ref;
  /** When the instrument was completed (date or dateTime). */
  date: string;
  /** The episode the scores belong to (workflow-episodeOfCare), where there is one. */
  episodeOfCare?: Ref;
  /** When a positive self-harm item stopped being current: the Flag is then inactive, with this end. */
  selfHarmResolvedOn?: string;
  /** What to add: score Observations, the self-harm Flag (default both). */
  include?: { scores?: boolean; flag?: boolean };
}

/** Score Observations (totals with bands, subscales, ratings) and the self-harm Flag. */
export function addScores(scope: BundleScope, s: ScoreInput): void {
  const def = INSTRUMENTS[s.instrument];
  const result = score(s.instrument, s.answers, s.rating);
  const withScores = s.include?.scores ?? true;
  const withFlag = s.include?.flag ?? true;
  const profiled = (id: string) => (s.response ? id : undefined);
  const base = {
    status: 'final' as const,
    category: [SURVEY],
    subject: s.subject,
    effectiveDateTime: s.date,
    performer: s.author ? [s.author] : undefined,
    derivedFrom: s.response ? [s.response] : undefined,
  };
  const episodeLink = s.episodeOfCare
    ? [{ url: 'http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare', valueReference: s.episodeOfCare }]
    : undefined;
  const observe = (code: string, obs: Partial<Observation>) => {
    const identifier = scope.episodeId('score', s.assessmentId, code);
    if (!withScores) return;
    scope.add<Observation>({ resourceType: 'Observation', extension: episodeLink, ...base, identifier: [identifier], ...obs } as Observation, {
      profile: profiled('imh-score-observation'),
      identifier,
      clinical: true,
    });
  };
  if (result.total && def.total) {
    observe(def.total.code.code as string, {
      code: { coding: [{ ...def.total.code }] },
      valueInteger: result.total.value,
      interpretation: [{ coding: [coding('score-band', result.total.band)] }],
    });
  }
  for (const sub of result.subscales ?? []) {
    observe(sub.code, {
      code: { coding: [coding('instrument-score', sub.code)] },
      valueQuantity: { value: sub.value, unit: 'score', system: UCUM, code: '{score}' },
    });
  }
  if (result.rating) {
    observe(result.rating.code, { code: { coding: [coding('instrument-score', result.rating.code)] }, valueInteger: result.rating.value });
  }
  if (result.selfHarm && withFlag) {
    const identifier = scope.episodeId('flag', s.assessmentId, 'self-harm');
    scope.add<Flag>(
      {
        resourceType: 'Flag',
        identifier: [identifier],
        extension: s.response ? [{ url: 'http://hl7.org/fhir/StructureDefinition/flag-detail', valueReference: s.response }] : undefined,
        status: s.selfHarmResolvedOn ? 'inactive' : 'active',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/flag-category', code: 'clinical', display: 'Clinical' }] }],
        code: { coding: [coding('risk-flag', 'self-harm-item-positive')], text: `${s.instrument} item ${def.selfHarmItem} positive` },
        subject: s.subject,
        period: { start: s.date, ...(s.selfHarmResolvedOn ? { end: s.selfHarmResolvedOn } : {}) },
        author: s.author,
      },
      { profile: profiled('imh-self-harm-flag'), identifier, clinical: true },
    );
  }
}

/** The reference to the self-harm Flag of an assessment (whether or not it is added yet). */
export const selfHarmFlagRef = (scope: BundleScope, assessmentId: string): Ref => scope.ref('Flag', scope.episodeId('flag', assessmentId, 'self-harm'));
