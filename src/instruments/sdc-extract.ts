/**
 * SDC extraction (https://hl7.org/fhir/uv/sdc/extraction.html#observation-based-extraction)
 * for our Questionnaires: a QuestionnaireResponse in, a transaction Bundle of the
 * response and its score Observations (and a Flag for a positive self-harm item) out —
 * built by the same code as the episode path, so both give the same resources.
 *
 * Responses come in two forms:
 * - as the episode path writes them, with the bridge's assessment identifier
 *   (`…/sid/<clinic org number>/assessment`, `<episodeId>/<assessmentId>`): the scores get
 *   the same identities as from the episode;
 * - as a form renderer (LHC-Forms, CSIRO Smart Forms) exports them, plus a `subject`: the
 *   identity is derived from the response's own `identifier`, else its `id`, else
 *   questionnaire + subject + `authored`, so sending the same response twice gives the same
 *   Bundle. The stored response carries `…/sid/sdc/assessment` with that UUID (R4 allows one
 *   identifier, and the profile requires the bridge's), so it can be sent again as it is.
 *
 * Calculated items (totals, subscale means) are never stored as submitted: the stored
 * response carries the value the bridge computes, and a submitted value that disagrees is
 * reported as a warning. Only elements R4 defines for QuestionnaireResponse are copied
 * (https://hl7.org/fhir/R4/questionnaireresponse.html); modifier elements the bridge cannot
 * honour (`modifierExtension`, `implicitRules`) are refused.
 *
 * It sits with the instruments, named after the SDC operation (`$extract`), because it is
 * the instruments' FHIR form: it needs their Questionnaires, answer scores and scoring, and
 * adds the same score resources (score-resources.ts) as episode mapping. Placed in fhir/, the
 * FHIR building blocks would depend on the instruments, which depend on them.
 */
import type {
  Bundle,
  Identifier,
  OperationOutcomeIssue,
  Parameters,
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
  Reference,
} from '@medplum/fhirtypes';
import { checkNationalId } from '../domain/identifiers.ts';
import { BundleScope, keyedUuid, type Ref } from '../fhir/bundle-scope.ts';
import { DEV_IDENTITY, type IdentityOptions } from '../fhir/identity.ts';
import { issue, OperationOutcomeError, outcome } from '../fhir/outcome.ts';
import { findBadStrings } from '../fhir/strings.ts';
import { NO } from '../fhir/systems.ts';
import { answerCoding, rawAnswer } from './answers.ts';
import { INSTRUMENTS, type InstrumentId } from './definitions.ts';
import { EXT, instrumentForQuestionnaire, questionnaireForUrl } from './questionnaires.ts';
import { addScores } from './score-resources.ts';
import { score } from './scoring.ts';

/** `{namespace}/{clinic org number}/assessment`: the episode path's response identifiers. */
const assessmentSystem = (identity: IdentityOptions): RegExp =>
  new RegExp(`^${identity.namespace.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(\\d{9})/assessment$`);
/**
 * Scope of responses that come from a form renderer rather than a clinic's journal: their
 * identifiers live under `…/sid/sdc/…` (never an organisation number, which has 9 digits).
 */
const RENDERER_SCOPE = 'sdc';
const RENDERER_EPISODE = 'qr';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PATIENT_REFERENCE = /^(urn:uuid:[0-9a-f-]{36}|(https?:\/\/[^\s/]+(\/[^\s/]+)*\/)?Patient\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?)$/;
const NATIONAL_ID_SYSTEMS: Record<string, 'fnr' | 'dnr'> = { [NO.fnr]: 'fnr', [NO.dnr]: 'dnr' };

const at = (path: string) => `QuestionnaireResponse.${path}`;

export interface ExtractOptions {
  /** Accept synthetic national ids (month + 80) in `subject.identifier`; as the episode path. Default true. */
  allowSyntheticIds?: boolean;
  /** The deployment's identifier namespace and pseudonym secret (fhir/identity.ts). */
  identity?: IdentityOptions;
}

/** What extraction gives: the transaction Bundle, and warnings about what was not taken as sent. */
export interface Extraction {
  bundle: Bundle;
  /** Warnings only (errors throw): e.g. a submitted total that the answers contradict. */
  issues: OperationOutcomeIssue[];
}

interface Identity {
  scope: BundleScope;
  /** The key the scores hang off (assessmentId in the episode path). */
  assessmentId: string;
  /** The stored response's identifier. */
  identifier: Identifier;
}

type Problems = {
  errors: OperationOutcomeIssue[];
  warnings: OperationOutcomeIssue[];
  bad: (path: string, message: string, code?: OperationOutcomeIssue['code']) => void;
};

function problems(): Problems {
  const p: Problems = {
    errors: [],
    warnings: [],
    bad: (path, message, code = 'invalid') => void p.errors.push(issue(code, message, undefined, 'error', at(path))),
  };
  return p;
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** A Reference with only the elements R4 defines for it (no extensions). */
function cleanReference(r: unknown): Ref | undefined {
  if (!r || typeof r !== 'object') return undefined;
  const x = r as Reference;
  const out: Ref = {};
  if (isString(x.reference)) out.reference = x.reference;
  if (isString(x.type)) out.type = x.type;
  if (x.identifier && isString(x.identifier.system) && isString(x.identifier.value))
    out.identifier = { system: x.identifier.system, value: x.identifier.value };
  if (isString(x.display)) out.display = x.display;
  return Object.keys(out).length ? out : undefined;
}

/**
 * The subject as stored: a reference to a Patient, or — for a national id — a conditional
 * reference (`Patient?identifier=…`) that the FHIR server resolves in the transaction
 * (R4 http.html#trules, "conditional references").
 */
function subjectOf(qr: QuestionnaireResponse, p: Problems, opts: ExtractOptions): { ref: Reference; key: string } | undefined {
  const s = qr.subject;
  if (!s || typeof s !== 'object' || (!s.reference && !s.identifier)) {
    p.bad(
      'subject',
      'subject is required: {reference: "Patient/<id>"} or {identifier: {system: "urn:oid:2.16.578.1.12.4.1.4.1", value: "<national id>"}}',
      'required',
    );
    return undefined;
  }
  if (s.reference !== undefined) {
    if (!isString(s.reference) || !PATIENT_REFERENCE.test(s.reference)) {
      p.bad('subject.reference', 'subject.reference must point to a Patient ("Patient/<id>", an absolute URL to one, or a urn:uuid in the same Bundle)');
      return undefined;
    }
    return { ref: { reference: s.reference }, key: s.reference };
  }
  const { system, value } = s.identifier ?? {};
  const kind = system ? NATIONAL_ID_SYSTEMS[system] : undefined;
  if (!kind) {
    p.bad('subject.identifier.system', `subject.identifier.system must be ${NO.fnr} (fødselsnummer) or ${NO.dnr} (D-number)`);
    return undefined;
  }
  const info = checkNationalId(typeof value === 'string' ? value : '');
  // Never repeat the national id in a message.
  if (typeof info === 'string') p.bad('subject.identifier.value', `subject.identifier.value is not a valid national id: ${info}`);
  else if (info.kind !== kind)
    p.bad('subject.identifier.value', `subject.identifier.value is a ${info.kind === 'dnr' ? 'D-number' : 'fødselsnummer'}: use system ${NO[info.kind]}`);
  else if (info.synthetic && opts.allowSyntheticIds === false) p.bad('subject.identifier.value', 'synthetic national ids are not accepted by this deployment');
  else return { ref: { reference: `Patient?identifier=${system}|${value}` }, key: `${system}|${value}` };
  return undefined;
}

/** Where the scores get their identities (see the module comment). */
function identityOf(
  qr: QuestionnaireResponse,
  questionnaireUrl: string,
  subjectKey: string | undefined,
  p: Problems,
  identity: IdentityOptions,
): Identity | undefined {
  const id = qr.identifier;
  const ASSESSMENT_ID = assessmentSystem(identity);
  /** Identifier systems under this prefix are the bridge's own; callers may not invent new ones there. */
  const BRIDGE_SID = `${identity.namespace}/`;
  const rendererScope = new BundleScope(RENDERER_SCOPE, RENDERER_EPISODE, identity);
  // `…/sid/sdc/assessment`: the kind the QuestionnaireResponse profile requires (imh-bid-assessment).
  const rendererSystem = rendererScope.id('assessment', '').system as string;
  const fromUuid = (uuid: string): Identity => ({ scope: rendererScope, assessmentId: uuid, identifier: rendererScope.id('assessment', uuid) });

  if (id !== undefined) {
    if (!id || typeof id !== 'object' || !isString(id.system) || !isString(id.value)) {
      p.bad('identifier', 'identifier needs a system and a value (or leave it out: the response is then identified by questionnaire, subject and authored)');
      return undefined;
    }
    const m = ASSESSMENT_ID.exec(id.system);
    if (m) {
      const parts = id.value.split('/');
      if (parts.length !== 2 || !parts[0] || !parts[1]) {
        p.bad('identifier.value', `an identifier in ${id.system} has the value "<episodeId>/<assessmentId>"`);
        return undefined;
      }
      const scope = new BundleScope(m[1] as string, parts[0], identity);
      return { scope, assessmentId: parts[1], identifier: scope.episodeId('assessment', parts[1]) };
    }
    if (id.system === rendererSystem) {
      // A response the bridge stored before, sent again: the same identity.
      if (!UUID.test(id.value)) p.bad('identifier.value', `an identifier in ${id.system} is the UUID the bridge derived`);
      return UUID.test(id.value) ? fromUuid(id.value) : undefined;
    }
    if (id.system.startsWith(BRIDGE_SID)) {
      p.bad('identifier.system', `identifier systems under ${BRIDGE_SID} are the bridge's own: use your own system, or leave the identifier out`);
      return undefined;
    }
    // R4 allows one identifier and the profile wants the bridge's: the caller's is the key of it.
    return fromUuid(keyedUuid(identity, `QuestionnaireResponse|identifier|${id.system}|${id.value}`));
  }
  if (isString(qr.id)) return fromUuid(keyedUuid(identity, `QuestionnaireResponse|id|${qr.id}`));
  if (!subjectKey || !isString(qr.authored)) return undefined; // already reported
  // Keyed: the subject may be a national id.
  return fromUuid(keyedUuid(identity, `QuestionnaireResponse|derived|${questionnaireUrl}|${subjectKey}|${qr.authored}`));
}

/** The calculated (readOnly, calculatedExpression) items of a Questionnaire. */
const isCalculated = (q: QuestionnaireItem) => !!q.readOnly && !!q.extension?.some((e) => e.url === EXT.calculatedExpression);

const ext = (q: QuestionnaireItem, url: string) => q.extension?.find((e) => e.url === url)?.valueInteger;

/** One answer checked against its Questionnaire item; the answer as stored, or undefined after reporting. */
function checkAnswer(q: QuestionnaireItem, a: QuestionnaireResponseItemAnswer, path: string, p: Problems): QuestionnaireResponseItemAnswer | undefined {
  if (!a || typeof a !== 'object') return void p.bad(path, `item ${q.linkId}: an answer must be an object`);
  if ((a as { item?: unknown }).item !== undefined) return void p.bad(`${path}.item`, `item ${q.linkId} has no nested items`);
  switch (q.type) {
    case 'choice': {
      const c = a.valueCoding;
      const option = c && q.answerOption?.find((o) => o.valueCoding?.system === c.system && o.valueCoding?.code === c.code)?.valueCoding;
      if (!c) return void p.bad(path, `item ${q.linkId} needs a valueCoding from its answer options`);
      if (!option) return void p.bad(path, `answer ${c.system}|${c.code} is not among the options of item ${q.linkId}`);
      // Stored as the Questionnaire states it (no renderer extensions, the published display).
      return { valueCoding: { system: option.system, code: option.code, display: option.display } };
    }
    case 'integer': {
      if (!Number.isInteger(a.valueInteger)) return void p.bad(path, `item ${q.linkId} needs a valueInteger`);
      const v = a.valueInteger as number;
      const [min, max] = [ext(q, EXT.minValue), ext(q, EXT.maxValue)];
      if ((min !== undefined && v < min) || (max !== undefined && v > max)) return void p.bad(path, `item ${q.linkId} must be between ${min} and ${max}`);
      return { valueInteger: v };
    }
    case 'date':
      if (!isString(a.valueDate) || !/^\d{4}(-\d{2}(-\d{2})?)?$/.test(a.valueDate)) return void p.bad(path, `item ${q.linkId} needs a valueDate (YYYY-MM-DD)`);
      return { valueDate: a.valueDate };
    case 'string':
      if (!isString(a.valueString)) return void p.bad(path, `item ${q.linkId} needs a valueString`);
      return { valueString: a.valueString };
    default:
      return void p.bad(path, `item ${q.linkId} (${q.type}) takes no answer`);
  }
}

interface CheckedItems {
  items: QuestionnaireResponseItem[];
  /** Raw answers as the episode format has them, for scored instruments. */
  answers: Record<string, number>;
  rating?: number;
  /** Indexes (into `items`) of calculated items, filled in once the scores are known. */
  calculated: { index: number; path: string; q: QuestionnaireItem; submitted?: QuestionnaireResponseItemAnswer }[];
}

/** Checks every item against the Questionnaire; keeps only what R4 defines for an item. */
function checkItems(qr: QuestionnaireResponse, questionnaire: Questionnaire, instrument: InstrumentId | undefined, p: Problems): CheckedItems {
  const byLinkId = new Map<string, QuestionnaireItem>();
  const walk = (items: QuestionnaireItem[] | undefined) => items?.forEach((it) => (byLinkId.set(it.linkId as string, it), walk(it.item)));
  walk(questionnaire.item);

  const out: CheckedItems = { items: [], answers: {}, calculated: [] };
  const seen = new Set<string>();
  if (qr.item !== undefined && !Array.isArray(qr.item)) {
    p.bad('item', 'item must be an array');
    return out;
  }
  (qr.item ?? []).forEach((item: QuestionnaireResponseItem, i) => {
    const path = `item[${i}]`;
    if (!item || typeof item !== 'object') return p.bad(path, 'an item must be an object');
    const q = byLinkId.get(item.linkId as string);
    if (!q) return p.bad(`${path}.linkId`, `item ${JSON.stringify(item.linkId)} is not in ${questionnaire.title ?? questionnaire.id}`);
    if (seen.has(q.linkId as string)) return p.bad(`${path}.linkId`, `item ${q.linkId} is answered more than once`);
    seen.add(q.linkId as string);
    if (item.item !== undefined) return p.bad(`${path}.item`, `item ${q.linkId} has no nested items`);
    if ((item as { modifierExtension?: unknown }).modifierExtension !== undefined)
      return p.bad(`${path}.modifierExtension`, 'modifier extensions are not understood by the bridge');
    const base: QuestionnaireResponseItem = { linkId: q.linkId as string, ...(isString(item.text) ? { text: item.text } : {}) };
    const list = Array.isArray(item.answer) ? item.answer : item.answer === undefined ? [] : null;
    if (list === null) return p.bad(`${path}.answer`, 'answer must be an array');
    if (isCalculated(q)) {
      // Computed by the bridge from the answers; what was sent is only compared.
      out.calculated.push({ index: out.items.length, path: `${path}.answer[0]`, q, submitted: list[0] });
      out.items.push(base);
      return;
    }
    if (!list.length) return;
    if (list.length > 1 && !q.repeats) return p.bad(`${path}.answer[1]`, `item ${q.linkId} takes one answer`);
    const answers = list.map((a, j) => checkAnswer(q, a, `${path}.answer[${j}]`, p));
    if (answers.some((a) => !a)) return;
    if (instrument && q.type === 'choice') {
      const raw = rawAnswer(instrument, q.linkId as string, answers[0]?.valueCoding ?? {});
      if (raw !== undefined) {
        out.answers[q.linkId as string] = raw;
        // The episode path's coding for the same answer, so both paths store the same thing.
        answers[0] = { valueCoding: answerCoding(instrument, q.linkId as string, raw) };
      }
    }
    if (instrument && q.type === 'integer') out.rating = answers[0]?.valueInteger;
    out.items.push({ ...base, answer: answers as QuestionnaireResponseItemAnswer[] });
  });
  for (const q of byLinkId.values()) {
    const answered = (qr.item ?? []).some((it) => it?.linkId === q.linkId && Array.isArray(it.answer) && it.answer.length > 0);
    if (q.required && !isCalculated(q) && !answered) p.bad('item', `required item ${q.linkId} is not answered`, 'required');
  }
  return out;
}

/** Writes the computed value into each calculated item, warning where the submitted one differs. */
function fillCalculated(checked: CheckedItems, instrument: InstrumentId, p: Problems): void {
  const result = score(instrument, INSTRUMENTS[instrument].rating ? undefined : checked.answers, checked.rating);
  for (const c of checked.calculated) {
    const linkId = c.q.linkId as string;
    const value = linkId === 'total' ? result.total?.value : result.subscales?.find((s) => s.code === linkId)?.value;
    if (value === undefined) continue;
    const answer: QuestionnaireResponseItemAnswer = c.q.type === 'integer' ? { valueInteger: value } : { valueDecimal: value };
    const sent = c.submitted?.valueInteger ?? c.submitted?.valueDecimal;
    if (c.submitted !== undefined && sent !== value) {
      p.warnings.push(
        issue(
          'business-rule',
          `item ${linkId} (calculated): the response says ${sent === undefined ? 'something that is not a number' : sent}, the answers give ${value}; stored with ${value}`,
          undefined,
          'warning',
          at(c.path),
        ),
      );
    }
    (checked.items[c.index] as QuestionnaireResponseItem).answer = [answer];
  }
}

/**
 * Extracts a QuestionnaireResponse to a transaction Bundle. Throws an OperationOutcomeError
 * (expressions point into the response) when it does not fit its Questionnaire; nothing is
 * extracted then. Warnings (a calculated value that disagrees with the answers) come back
 * beside the Bundle.
 */
export function extract(input: unknown, opts: ExtractOptions = {}): Extraction {
  const qr = input as QuestionnaireResponse;
  if (!qr || typeof qr !== 'object' || qr.resourceType !== 'QuestionnaireResponse') {
    throw new OperationOutcomeError(
      outcome([issue('invalid', 'body must be a QuestionnaireResponse', '/resourceType', 'error', 'QuestionnaireResponse')]),
      400,
    );
  }
  // R4's string rule over everything sent, before anything is read from it: such a string
  // would be refused downstream, or copied into what is written.
  const badStrings = findBadStrings(qr, { base: 'QuestionnaireResponse', style: 'fhirpath' });
  if (badStrings.length) {
    throw new OperationOutcomeError(
      outcome(badStrings.map((b) => issue('invalid', `${b.inKey ? '' : 'string '}${b.problem}`, undefined, 'error', b.path))),
      400,
    );
  }
  const p = problems();
  const questionnaire = isString(qr.questionnaire) ? questionnaireForUrl(qr.questionnaire) : undefined;
  if (!qr.questionnaire) p.bad('questionnaire', "questionnaire is required: the canonical URL of one of the bridge's Questionnaires", 'required');
  else if (!questionnaire) {
    p.bad(
      'questionnaire',
      `unknown questionnaire ${qr.questionnaire}: only the bridge's Questionnaires can be extracted (GET /v1/Questionnaire lists them)`,
      'not-found',
    );
    throw new OperationOutcomeError(outcome(p.errors), 400);
  }
  const instrument = questionnaire ? instrumentForQuestionnaire(qr.questionnaire as string) : undefined;
  if ((qr as { modifierExtension?: unknown }).modifierExtension !== undefined)
    p.bad('modifierExtension', 'modifier extensions are not understood by the bridge');
  if (qr.implicitRules !== undefined) p.bad('implicitRules', 'implicitRules are not understood by the bridge');
  if (qr.status !== 'completed' && qr.status !== 'amended') p.bad('status', `only completed responses are extracted, not ${qr.status ?? 'one without status'}`);
  if (!isString(qr.authored) || !/^\d{4}-\d{2}-\d{2}/.test(qr.authored))
    p.bad('authored', 'authored (when the instrument was completed) is required', 'required');
  const subject = subjectOf(qr, p, opts);
  const identity = questionnaire ? identityOf(qr, questionnaire.url as string, subject?.key, p, opts.identity ?? DEV_IDENTITY) : undefined;
  const checked = questionnaire ? checkItems(qr, questionnaire, instrument, p) : undefined;
  if (p.errors.length || !questionnaire || !checked || !identity || !subject) throw new OperationOutcomeError(outcome(p.errors), 400);
  if (instrument) fillCalculated(checked, instrument, p);

  const { scope, identifier, assessmentId } = identity;
  const author = cleanReference(qr.author);
  const source = cleanReference(qr.source);
  const refs = (list: unknown) => (Array.isArray(list) ? list.map(cleanReference).filter((r): r is Ref => !!r) : []);
  const [basedOn, partOf] = [refs(qr.basedOn), refs(qr.partOf)];
  const response = scope.add<QuestionnaireResponse>(
    {
      resourceType: 'QuestionnaireResponse',
      ...(isString(qr.language) ? { language: qr.language } : {}),
      identifier,
      ...(basedOn.length ? { basedOn } : {}),
      ...(partOf.length ? { partOf } : {}),
      questionnaire: qr.questionnaire,
      status: qr.status,
      subject: subject.ref,
      encounter: cleanReference(qr.encounter),
      authored: qr.authored,
      author,
      source,
      item: checked.items,
    },
    { profile: 'imh-questionnaire-response', identifier, clinical: true },
  );
  if (instrument) {
    addScores(scope, {
      instrument,
      assessmentId,
      answers: INSTRUMENTS[instrument].rating ? undefined : checked.answers,
      rating: checked.rating,
      response,
      subject: subject.ref,
      author,
      date: qr.authored as string,
    });
  }
  return { bundle: { resourceType: 'Bundle', type: 'transaction', entry: scope.list() }, issues: p.warnings };
}

/** The transaction Bundle alone (warnings dropped); throws as `extract` does. */
export function extractResponse(input: unknown, opts: ExtractOptions = {}): Bundle {
  return extract(input, opts).bundle;
}

/**
 * The body of an `$extract` answer, following the SDC OperationDefinition
 * (https://hl7.org/fhir/uv/sdc/OperationDefinition-QuestionnaireResponse-extract.html): the Bundle
 * itself when there is nothing to warn about (a single `return` resource is the body), else a
 * Parameters resource with `return` (the Bundle) and `issues` (an OperationOutcome of warnings).
 */
export function extractionBody(x: Extraction): Bundle | Parameters {
  if (!x.issues.length) return x.bundle;
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'return', resource: x.bundle },
      { name: 'issues', resource: outcome(x.issues) },
    ],
  };
}
