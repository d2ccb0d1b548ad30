/**
 * Assessments as QuestionnaireResponse, scores as Observations, self-harm items as Flags.
 * `addScores` is shared with SDC extraction ($extract), so both paths produce the same
 * resources from the same answers.
 */
import type { Flag, Observation, QuestionnaireResponse } from '@medplum/fhirtypes';
import type { Assessment } from '../domain/episode.ts';
import { UCUM, questionnaireUrl } from '../fhir/systems.ts';
import { INSTRUMENTS, type InstrumentId } from '../instruments/definitions.ts';
import { answerCoding } from '../instruments/answers.ts';
import { score } from '../instruments/scoring.ts';
import type { BundleScope, Ref } from '../fhir/bundle-scope.ts';
import type { MappingContext } from './context.ts';
import { mapClinician } from './people.ts';
import { coding } from '../fhir/terminology.ts';

const SURVEY = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey', display: 'Survey' }] };

export interface AssessmentRefs {
  parent: Ref;
  therapist?: Ref;
  episodeOfCare?: Ref;
}

export function mapAssessments(ctx: MappingContext, r: AssessmentRefs): void {
  for (const a of ctx.episode.assessments ?? []) mapAssessment(ctx, a, r);
}

const dayOf = (dateOrTime: string): string => dateOrTime.slice(0, 10);

/**
 * When a positive self-harm item of `a` stops being current: the first later administration of
 * the same instrument that scores 0 on that item, else the end of the episode (finished or
 * cancelled); undefined while neither has happened.
 */
export function selfHarmResolvedOn(episode: MappingContext['episode'], a: Assessment): string | undefined {
  const later = (episode.assessments ?? [])
    .filter((b) => b.instrument === a.instrument && b.assessmentId !== a.assessmentId && dayOf(b.completedOn) > dayOf(a.completedOn))
    .sort((x, y) => (dayOf(x.completedOn) < dayOf(y.completedOn) ? -1 : dayOf(x.completedOn) > dayOf(y.completedOn) ? 1 : 0));
  for (const b of later) {
    if ('answers' in b && !score(b.instrument, b.answers, undefined).selfHarm) return b.completedOn;
  }
  if (episode.status === 'finished' || episode.status === 'cancelled') {
    const end = episode.closing?.closedOn ?? episode.period?.end;
    // Never before the flag started (clinician ratings may be coded after the episode ends).
    if (end) return dayOf(end) < dayOf(a.completedOn) ? a.completedOn : end;
  }
  return undefined;
}

/**
 * QuestionnaireResponse items for answers as the episode format sends them: each answer is
 * the answer option of the published Questionnaire (which carries its score).
 */
export function responseItems(instrument: InstrumentId, answers: Record<string, number> | undefined, rating: number | undefined): QuestionnaireResponse['item'] {
  const def = INSTRUMENTS[instrument];
  return answers
    ? def.items.map((linkId) => ({ linkId, answer: [{ valueCoding: answerCoding(instrument, linkId, answers[linkId] as number) }] }))
    : [{ linkId: 'rf-score', answer: [{ valueInteger: rating as number }] }];
}

function mapAssessment(ctx: MappingContext, a: Assessment, r: AssessmentRefs): void {
  const def = INSTRUMENTS[a.instrument];
  // Who answered: the parent, or the clinician who rated (rater, else the therapist).
  const clinician = a.rater ? mapClinician(ctx, a.rater).practitioner : r.therapist;
  const author = a.respondent === 'parent' ? r.parent : clinician;
  const answers = 'answers' in a ? a.answers : undefined;
  const rating = 'score' in a ? a.score : undefined;

  const qrId = ctx.episodeId('assessment', a.assessmentId);
  const qr = ctx.add<QuestionnaireResponse>(
    {
      resourceType: 'QuestionnaireResponse',
      identifier: qrId,
      questionnaire: questionnaireUrl(def.questionnaireId),
      status: 'completed',
      subject: r.parent,
      authored: a.completedOn,
      author,
      source: author,
      item: responseItems(a.instrument, answers, rating),
    },
    { profile: 'imh-questionnaire-response', identifier: qrId, clinical: true },
  );
  addScores(ctx, {
    instrument: a.instrument,
    assessmentId: a.assessmentId,
    answers,
    rating,
    response: qr,
    subject: r.parent,
    author,
    date: a.completedOn,
    episodeOfCare: r.episodeOfCare,
    selfHarmResolvedOn: selfHarmResolvedOn(ctx.episode, a),
  });
}

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
  const episodeLink = s.episodeOfCare ? [{ url: 'http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare', valueReference: s.episodeOfCare }] : undefined;
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

/** Assessments with a positive self-harm item, in the episode's order. */
export function selfHarmAssessments(e: MappingContext['episode']): Assessment[] {
  return (e.assessments ?? []).filter((a) => score(a.instrument, 'answers' in a ? a.answers : undefined, 'score' in a ? a.score : undefined).selfHarm);
}

/** The reference to the self-harm Flag of an assessment (whether or not it is added yet). */
export const selfHarmFlagRef = (scope: BundleScope, assessmentId: string): Ref => scope.ref('Flag', scope.episodeId('flag', assessmentId, 'self-harm'));
