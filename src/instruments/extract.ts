/**
 * SDC extraction (https://hl7.org/fhir/uv/sdc/extraction.html#observation-based-extraction)
 * for our Questionnaires: a QuestionnaireResponse in, a transaction Bundle of the
 * response and its score Observations (and a Flag for a positive self-harm item) out —
 * built by the same code as the episode path, so both give the same resources.
 */
import type { Bundle, OperationOutcomeIssue, QuestionnaireItem, QuestionnaireResponse, QuestionnaireResponseItem, Reference } from '@medplum/fhirtypes';
import { OperationOutcomeError, issue, outcome } from '../fhir/outcome.ts';
import { CANONICAL_BASE } from '../fhir/systems.ts';
import { BundleScope } from '../mapping/context.ts';
import { addScores } from '../mapping/assessments.ts';
import { rawAnswer } from './answers.ts';
import { INSTRUMENTS, type InstrumentId } from './definitions.ts';
import { instrumentForQuestionnaire, questionnaireForUrl } from './questionnaires.ts';

const ASSESSMENT_ID = new RegExp(`^${CANONICAL_BASE.replace(/[.]/g, '\\.')}/sid/(\\d{9})/assessment$`);
const at = (path: string) => `QuestionnaireResponse.${path}`;

interface Checked {
  instrument: InstrumentId;
  answers?: Record<string, number>;
  rating?: number;
  clinicOrg: string;
  episodeId: string;
  assessmentId: string;
}

/** Checks a response against its Questionnaire; returns every problem at once. */
function check(qr: QuestionnaireResponse): Checked | OperationOutcomeIssue[] {
  const problems: OperationOutcomeIssue[] = [];
  const bad = (path: string, message: string, code: OperationOutcomeIssue['code'] = 'invalid') => problems.push(issue(code, message, undefined, 'error', at(path)));

  const questionnaire = qr.questionnaire ? questionnaireForUrl(qr.questionnaire) : undefined;
  const instrument = qr.questionnaire ? instrumentForQuestionnaire(qr.questionnaire) : undefined;
  if (!qr.questionnaire) bad('questionnaire', 'questionnaire is required: the canonical URL of one of the bridge\'s Questionnaires', 'required');
  else if (!questionnaire || !instrument) {
    bad('questionnaire', `unknown questionnaire ${qr.questionnaire}: only the bridge's scored instruments can be extracted (GET /v1/Questionnaire lists them)`, 'not-found');
    return problems;
  }
  if (qr.status !== 'completed' && qr.status !== 'amended') bad('status', `only completed responses are extracted, not ${qr.status ?? 'one without status'}`);
  if (!qr.subject?.reference) bad('subject', 'subject (the parent\'s Patient) is required', 'required');
  if (!qr.authored || !/^\d{4}-\d{2}-\d{2}/.test(qr.authored)) bad('authored', 'authored (when the instrument was completed) is required', 'required');

  const id = qr.identifier;
  const m = id?.system ? ASSESSMENT_ID.exec(id.system) : null;
  const parts = id?.value?.split('/') ?? [];
  if (!m || parts.length !== 2 || !parts[0] || !parts[1]) {
    bad('identifier', `identifier must be {system: "${CANONICAL_BASE}/sid/<clinic org number>/assessment", value: "<episodeId>/<assessmentId>"}: it gives the scores their identities`, 'required');
  }
  if (!questionnaire || !instrument) return problems;

  const def = INSTRUMENTS[instrument];
  const byLinkId = new Map<string, QuestionnaireItem>();
  const walk = (items: QuestionnaireItem[] | undefined) => items?.forEach((it) => (byLinkId.set(it.linkId as string, it), walk(it.item)));
  walk(questionnaire.item);

  const answers: Record<string, number> = {};
  let rating: number | undefined;
  const seen = new Set<string>();
  (qr.item ?? []).forEach((item: QuestionnaireResponseItem, i) => {
    const q = byLinkId.get(item.linkId as string);
    if (!q) return bad(`item[${i}].linkId`, `item ${JSON.stringify(item.linkId)} is not in ${questionnaire.title ?? questionnaire.id}`);
    if (seen.has(q.linkId as string)) return bad(`item[${i}].linkId`, `item ${q.linkId} is answered more than once`);
    seen.add(q.linkId as string);
    if (q.readOnly) return; // calculated items: the bridge computes them itself
    const list = item.answer ?? [];
    if (!list.length) return;
    if (list.length > 1 && !q.repeats) return bad(`item[${i}].answer[1]`, `item ${q.linkId} takes one answer`);
    const a = list[0]!;
    if (q.type === 'choice') {
      if (!a.valueCoding) return bad(`item[${i}].answer[0]`, `item ${q.linkId} needs a valueCoding from its answer options`);
      const raw = rawAnswer(instrument, q.linkId as string, a.valueCoding);
      if (raw === undefined) return bad(`item[${i}].answer[0]`, `answer ${a.valueCoding.system}|${a.valueCoding.code} is not among the options of item ${q.linkId}`);
      answers[q.linkId as string] = raw;
    } else if (q.type === 'integer') {
      if (typeof a.valueInteger !== 'number') return bad(`item[${i}].answer[0]`, `item ${q.linkId} needs a valueInteger`);
      const r = def.rating;
      if (r && (a.valueInteger < r.min || a.valueInteger > r.max)) return bad(`item[${i}].answer[0]`, `item ${q.linkId} must be between ${r.min} and ${r.max}`);
      rating = a.valueInteger;
    }
  });
  for (const q of byLinkId.values()) {
    if (q.required && !q.readOnly && !seen.has(q.linkId as string)) bad('item', `required item ${q.linkId} is not answered`, 'required');
  }
  if (problems.length) return problems;
  return {
    instrument,
    ...(def.rating ? { rating } : { answers }),
    clinicOrg: m?.[1] as string,
    episodeId: parts[0] as string,
    assessmentId: parts[1] as string,
  };
}

/**
 * Extracts a QuestionnaireResponse to a transaction Bundle. Throws an OperationOutcomeError
 * (expressions point into the response) when it does not fit its Questionnaire; nothing is
 * extracted then.
 */
export function extractResponse(input: unknown): Bundle {
  const qr = input as QuestionnaireResponse;
  if (!qr || typeof qr !== 'object' || qr.resourceType !== 'QuestionnaireResponse') {
    throw new OperationOutcomeError(outcome([issue('invalid', 'body must be a QuestionnaireResponse', '/resourceType', 'error', 'QuestionnaireResponse')]), 400);
  }
  const checked = check(qr);
  if (Array.isArray(checked)) throw new OperationOutcomeError(outcome(checked), 400);

  const scope = new BundleScope(checked.clinicOrg, checked.episodeId);
  const identifier = scope.episodeId('assessment', checked.assessmentId);
  const { id: _id, meta: _meta, ...rest } = qr;
  const response = scope.add<QuestionnaireResponse>({ ...rest, identifier }, { profile: 'imh-questionnaire-response', identifier, clinical: true });
  addScores(scope, {
    instrument: checked.instrument,
    assessmentId: checked.assessmentId,
    answers: checked.answers,
    rating: checked.rating,
    response,
    subject: qr.subject as Reference,
    author: qr.author,
    date: qr.authored as string,
  });
  return { resourceType: 'Bundle', type: 'transaction', entry: scope.list() };
}
