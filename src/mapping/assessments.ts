/** Assessments as QuestionnaireResponse, scores as Observations, self-harm items as Flags. */
import type { Flag, Observation, QuestionnaireResponse } from '@medplum/fhirtypes';
import type { Assessment } from '../domain/episode.ts';
import { questionnaireUrl } from '../fhir/systems.ts';
import { INSTRUMENTS } from '../instruments/definitions.ts';
import { score } from '../instruments/scoring.ts';
import { type MappingContext, type Ref } from './context.ts';
import { mapClinician } from './people.ts';
import { coding } from './terminology.ts';

const SURVEY = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey', display: 'Survey' }] };
const UCUM = 'http://unitsofmeasure.org';

export interface AssessmentRefs {
  parent: Ref;
  therapist?: Ref;
}

export function mapAssessments(ctx: MappingContext, r: AssessmentRefs): void {
  for (const a of ctx.episode.assessments ?? []) mapAssessment(ctx, a, r);
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
      item: answers
        ? def.items.map((linkId) => ({ linkId, answer: [{ valueInteger: answers[linkId] as number }] }))
        : [{ linkId: 'rf-score', answer: [{ valueInteger: rating as number }] }],
    },
    { profile: 'imh-questionnaire-response', identifier: qrId, clinical: true },
  );

  const result = score(a.instrument, answers, rating);
  const base = {
    resourceType: 'Observation' as const,
    status: 'final' as const,
    category: [SURVEY],
    subject: r.parent,
    effectiveDateTime: a.completedOn,
    performer: author ? [author] : undefined,
    derivedFrom: [qr],
  };
  const observe = (code: string, obs: Partial<Observation>) => {
    const identifier = ctx.episodeId('score', a.assessmentId, code);
    ctx.add<Observation>({ ...base, identifier: [identifier], ...obs } as Observation, { profile: 'imh-score-observation', identifier, clinical: true });
  };
  if (result.total && def.total) {
    observe(def.total.code.code as string, {
      code: { coding: [{ ...def.total.code }] },
      valueInteger: result.total.value,
      interpretation: [{ coding: [coding('score-band', result.total.band)] }],
    });
  }
  for (const s of result.subscales ?? []) {
    observe(s.code, {
      code: { coding: [coding('instrument-score', s.code)] },
      valueQuantity: { value: s.value, unit: 'score', system: UCUM, code: '{score}' },
    });
  }
  if (result.rating) {
    observe(result.rating.code, { code: { coding: [coding('instrument-score', result.rating.code)] }, valueInteger: result.rating.value });
  }
  if (result.selfHarm) {
    const identifier = ctx.episodeId('flag', a.assessmentId, 'self-harm');
    ctx.add<Flag>(
      {
        resourceType: 'Flag',
        identifier: [identifier],
        extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/flag-detail', valueReference: qr }],
        status: 'active',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/flag-category', code: 'clinical', display: 'Clinical' }] }],
        code: { coding: [coding('risk-flag', 'self-harm-item-positive')], text: `${a.instrument} item ${def.selfHarmItem} positive` },
        subject: r.parent,
        period: { start: a.completedOn },
        author: author,
      },
      { profile: 'imh-self-harm-flag', identifier, clinical: true },
    );
  }
}
