/**
 * Assessments as QuestionnaireResponse; their scores and self-harm Flags come from
 * instruments/score-resources.ts, which SDC extraction ($extract) shares, so both paths
 * produce the same resources from the same answers.
 */
import type { QuestionnaireResponse } from '@medplum/fhirtypes';
import type { Assessment } from '../domain/episode.ts';
import type { Ref } from '../fhir/bundle-scope.ts';
import { questionnaireUrl } from '../fhir/systems.ts';
import { answerCoding } from '../instruments/answers.ts';
import { INSTRUMENTS, type InstrumentId } from '../instruments/definitions.ts';
import { addScores } from '../instruments/score-resources.ts';
import { score } from '../instruments/scoring.ts';
import type { MappingContext } from './context.ts';
import { mapClinician } from './people.ts';

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
export function responseItems(
  instrument: InstrumentId,
  answers: Record<string, number> | undefined,
  rating: number | undefined,
): QuestionnaireResponse['item'] {
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

/** Assessments with a positive self-harm item, in the episode's order. */
export function selfHarmAssessments(e: MappingContext['episode']): Assessment[] {
  return (e.assessments ?? []).filter((a) => score(a.instrument, 'answers' in a ? a.answers : undefined, 'score' in a ? a.score : undefined).selfHarm);
}
