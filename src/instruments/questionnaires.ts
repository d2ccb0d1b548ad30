/**
 * The Questionnaires the bridge publishes (profiles/Questionnaire-*.json), built from the
 * instrument definitions so that a form, its answer scores and the scoring engine cannot
 * disagree: every answerOption's score is `itemScore()` of the raw answer it stands for.
 *
 * Follows the Structured Data Capture IG (R4): https://hl7.org/fhir/uv/sdc/
 * - answer scores: the R4 core extension `ordinalValue` on the option's Coding
 *   (https://hl7.org/fhir/R4/extension-ordinalvalue.html, context Coding and
 *   Questionnaire.item.answerOption; SDC 3.0.0 behavior.html#ordinalValue), and the same value in
 *   `itemWeight` on the answerOption, the extension that replaced ordinalValue in SDC 4.0.0
 *   ("Changed ordinalValue to itemWeight and moved it to answer", FHIR-28611/FHIR-46056;
 *   https://hl7.org/fhir/extensions/StructureDefinition-itemWeight.html: "In questionnaires,
 *   this extension goes on answerOption where possible"). Engines of either version find a score.
 * - totals: SDC `calculatedExpression` in FHIRPath with the SDC supplement `weight()`
 *   (SDC 4.0.0 expressions.html#fhirpath-supplements; SDC 3.0.0 called it `ordinal()`; fhirpath.js
 *   implements both names and reads ordinalValue as well as itemWeight), and SDC
 *   `observationExtract` (extraction.html#observation-based-extraction).
 * - minValue/maxValue: R4 core extensions on Questionnaire.item.
 * - translations: R4 core extension `translation` on the `_text` of our own form only.
 * - every choice item lists its options inline (`answerOption`), never only an `answerValueSet`,
 *   so a renderer needs no terminology server (R4 Questionnaire.item.answerOption; que-4 forbids
 *   both at once). The R4 core extension `questionnaire-itemControl` asks for radio buttons or
 *   check boxes (https://hl7.org/fhir/R4/extension-questionnaire-itemcontrol.html), as on paper.
 */
import type { CodeSystem, Coding, Extension, Questionnaire, QuestionnaireItem, QuestionnaireItemAnswerOption } from '@medplum/fhirtypes';
import changeThemeSystem from '../../mappings/CodeSystem-change-process-theme.json' with { type: 'json' };
import focusElementSystem from '../../mappings/CodeSystem-marte-meo-focus-element.json' with { type: 'json' };
import { codeSystemUrl, questionnaireUrl } from '../fhir/systems.ts';
import { answerCoding, itemCode } from './answers.ts';
import { INSTRUMENTS, type InstrumentDefinition, type InstrumentId } from './definitions.ts';
import { itemScore } from './scoring.ts';

export const EXT = {
  ordinalValue: 'http://hl7.org/fhir/StructureDefinition/ordinalValue',
  itemWeight: 'http://hl7.org/fhir/StructureDefinition/itemWeight',
  minValue: 'http://hl7.org/fhir/StructureDefinition/minValue',
  maxValue: 'http://hl7.org/fhir/StructureDefinition/maxValue',
  translation: 'http://hl7.org/fhir/StructureDefinition/translation',
  calculatedExpression: 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression',
  observationExtract: 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-observationExtract',
  itemControl: 'http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl',
} as const;

/** R4 core `questionnaire-itemControl` with a code of http://hl7.org/fhir/questionnaire-item-control. */
const itemControl = (code: 'radio-button' | 'check-box'): Extension => ({
  url: EXT.itemControl,
  valueCodeableConcept: {
    coding: [{ system: 'http://hl7.org/fhir/questionnaire-item-control', code, display: code === 'radio-button' ? 'Radio Button' : 'Check-box' }],
  },
});

/** SDC FHIRPath supplement returning an answer's score (SDC 4.0.0 `weight()`, SDC 3.0.0 `ordinal()`). */
const WEIGHT_FN = 'weight()';

const VERSION = '1.0.0';
/** Fixed, so that building twice gives the same bytes; change it with the version. */
const DATE = '2026-11-26';
const PUBLISHER = 'imh-bridge';

/** One answerOption per concept of one of our CodeSystems (mappings/), in CodeSystem order. */
function codeSystemOptions(cs: CodeSystem): QuestionnaireItemAnswerOption[] {
  return (cs.concept ?? []).map((c) => ({ valueCoding: { system: cs.url as string, code: c.code, display: c.display as string } }));
}

/** Ids of the published Questionnaires, in publication order. */
export const QUESTIONNAIRE_IDS: readonly string[] = ['epds', 'phq-9', 'gad-7', 'prfq', 'pdi-rf', 'marte-meo-session-review'];

const instrumentByQuestionnaireId = new Map<string, InstrumentId>((Object.values(INSTRUMENTS) as InstrumentDefinition[]).map((d) => [d.questionnaireId, d.id]));

/**
 * Item texts shipped per instrument. PHQ-9 and GAD-7: the standard English wording of the
 * forms at phqscreeners.com ("Developed by Drs. Robert L. Spitzer, Janet B.W. Williams, Kurt
 * Kroenke and colleagues, with an educational grant from Pfizer Inc. No permission required to
 * reproduce, translate, display or distribute."). EPDS and PRFQ are copyrighted: placeholders.
 */
const FORM_TEXT: Partial<Record<InstrumentId, { stem: string; items: string[] }>> = {
  'PHQ-9': {
    stem: 'Over the last 2 weeks, how often have you been bothered by any of the following problems?',
    items: [
      'Little interest or pleasure in doing things',
      'Feeling down, depressed, or hopeless',
      'Trouble falling or staying asleep, or sleeping too much',
      'Feeling tired or having little energy',
      'Poor appetite or overeating',
      'Feeling bad about yourself — or that you are a failure or have let yourself or your family down',
      'Trouble concentrating on things, such as reading the newspaper or watching television',
      'Moving or speaking so slowly that other people could have noticed? Or the opposite — being so fidgety or restless that you have been moving around a lot more than usual',
      'Thoughts that you would be better off dead or of hurting yourself in some way',
    ],
  },
  'GAD-7': {
    stem: 'Over the last 2 weeks, how often have you been bothered by the following problems?',
    items: [
      'Feeling nervous, anxious or on edge',
      'Not being able to stop or control worrying',
      'Worrying too much about different things',
      'Trouble relaxing',
      'Being so restless that it is hard to sit still',
      'Becoming easily annoyed or irritable',
      'Feeling afraid as if something awful might happen',
    ],
  },
};

const PFIZER =
  'PHQ and GAD-7 screeners: developed by Drs. Robert L. Spitzer, Janet B.W. Williams, Kurt Kroenke and colleagues, with an educational grant from Pfizer Inc. No permission required to reproduce, translate, display or distribute. ';
const LOINC_NOTE =
  'This material contains content from LOINC (http://loinc.org). LOINC is copyright © Regenstrief Institute, Inc. and the Logical Observation Identifiers Names and Codes (LOINC) Committee and is available at no cost under the license at http://loinc.org/license.';

const COPYRIGHT: Record<InstrumentId, string> = {
  EPDS:
    'Edinburgh Postnatal Depression Scale © The Royal College of Psychiatrists 1987 (Cox, J.L., Holden, J.M. & Sagovsky, R. (1987). Detection of postnatal depression. British Journal of Psychiatry, 150, 782–786). ' +
    'This Questionnaire carries codes and scoring only: item texts are placeholders ("EPDS item 3") and answers are the position of the option ticked on the licensed form. Use the licensed form to ask the questions. ' +
    LOINC_NOTE,
  'PHQ-9': PFIZER + LOINC_NOTE,
  'GAD-7': PFIZER + LOINC_NOTE,
  PRFQ:
    'Parental Reflective Functioning Questionnaire © Luyten, P., Mayes, L.C., Nijssens, L. & Fonagy, P. (2017). The parental reflective functioning questionnaire: Development and preliminary validation. PLoS ONE 12(5): e0176218. ' +
    'This Questionnaire carries codes and scoring only: item texts are placeholders ("PRFQ item 3"). Use the authors\' form to ask the questions.',
  'PDI-RF':
    'Reflective functioning is rated on the Reflective Functioning Scale (Fonagy, Target, Steele & Steele 1998) from a Parent Development Interview (Aber, Slade et al.); neither the interview nor the coding manual is reproduced here.',
};

const DESCRIPTION: Record<InstrumentId, string> = {
  EPDS: 'Edinburgh Postnatal Depression Scale: 10 items answered by the position (0–3, top to bottom) of the option ticked; items 1, 2 and 4 score 0–3 in order, items 3 and 5–10 are reverse-scored (3 − position). Total 0–30; ≥10 possible, ≥13 probable depression; any non-zero score on item 10 (self-harm) is a risk flag.',
  'PHQ-9': 'Patient Health Questionnaire-9: 9 items scored 0–3; total 0–27 with band edges 5, 10, 15 and 20; any non-zero answer to item 9 is a risk flag.',
  'GAD-7': 'Generalized Anxiety Disorder 7-item scale: 7 items scored 0–3; total 0–21 with band edges 5, 10 and 15.',
  PRFQ: 'Parental Reflective Functioning Questionnaire: 18 items answered 1–7 (strongly disagree … strongly agree); items 11 and 18 are reverse-coded (8 − answer). Three subscale means: pre-mentalizing modes, certainty about mental states, interest and curiosity in mental states.',
  'PDI-RF':
    'Reflective functioning rated from a Parent Development Interview on the Reflective Functioning Scale, −1 to 9 (5 is ordinary reflective functioning).',
};

const NAME: Record<InstrumentId, string> = { EPDS: 'EPDS', 'PHQ-9': 'PHQ9', 'GAD-7': 'GAD7', PRFQ: 'PRFQ', 'PDI-RF': 'PDIRF' };

const decimal = (url: string, value: number): Extension => ({ url, valueDecimal: value });

/** The answerOptions of one item: one per raw answer, each with its score after reversal. */
function answerOptions(def: InstrumentDefinition, item: string): QuestionnaireItemAnswerOption[] {
  const out: QuestionnaireItemAnswerOption[] = [];
  for (let raw = def.min; raw <= def.max; raw++) {
    const score = itemScore(def.id, item, raw);
    out.push({
      extension: [decimal(EXT.itemWeight, score)],
      valueCoding: { extension: [decimal(EXT.ordinalValue, score)], ...answerCoding(def.id, item, raw) },
    });
  }
  return out;
}

const quote = (ids: string[]) => ids.map((i) => `'${i}'`).join(' | ');

/**
 * FHIRPath sum of the scores of the answers to `items`, only when every one is answered
 * (a partial sum is not a score and must not be extracted).
 */
function sumExpression(items: string[]): string {
  const answers = `%resource.item.where(linkId in (${quote(items)})).answer`;
  return `iif(${answers}.count() = ${items.length}, ${answers}.value.${WEIGHT_FN}.aggregate($this + $total, 0))`;
}

/** FHIRPath mean (two decimals, as scoring.ts) of the scores of the answers to `items`, when all are answered. */
function meanExpression(items: string[]): string {
  const answers = `%resource.item.where(linkId in (${quote(items)})).answer`;
  return `iif(${answers}.count() = ${items.length}, (${answers}.value.${WEIGHT_FN}.aggregate($this + $total, 0) / ${items.length}).round(2))`;
}

const calculated = (description: string, expression: string): Extension => ({
  url: EXT.calculatedExpression,
  valueExpression: { description, language: 'text/fhirpath', expression },
});

const extract: Extension = { url: EXT.observationExtract, valueBoolean: true };

function instrumentItems(def: InstrumentDefinition): QuestionnaireItem[] {
  const items: QuestionnaireItem[] = [];
  const text = FORM_TEXT[def.id];
  if (text) items.push({ linkId: 'instructions', type: 'display', text: text.stem });
  def.items.forEach((item, i) => {
    const code = itemCode(def.id, item);
    items.push({
      extension: [itemControl('radio-button')],
      linkId: item,
      ...(code ? { code: [code] } : {}),
      text: text?.items[i] ?? `${def.id} item ${item}`,
      type: 'choice',
      required: true,
      answerOption: answerOptions(def, item),
    });
  });
  if (def.total) {
    items.push({
      extension: [calculated(`${def.id} total score (sum of item scores after reversal)`, sumExpression(def.items)), extract],
      linkId: 'total',
      code: [{ ...def.total.code }],
      text: `${def.id} total score`,
      type: 'integer',
      readOnly: true,
    });
  }
  for (const s of def.subscales ?? []) {
    const code = { system: codeSystemUrl('instrument-score'), code: s.code, display: SUBSCALE_DISPLAY[s.code] ?? s.code };
    items.push({
      extension: [calculated(`${code.display}: mean of items ${s.items.join(', ')} after reversal`, meanExpression(s.items)), extract],
      linkId: s.code,
      code: [code],
      text: code.display,
      type: 'decimal',
      readOnly: true,
    });
  }
  if (def.rating) {
    items.push({
      extension: [{ url: EXT.minValue, valueInteger: def.rating.min }, { url: EXT.maxValue, valueInteger: def.rating.max }, extract],
      linkId: 'rf-score',
      code: [{ system: codeSystemUrl('instrument-score'), code: def.rating.code, display: 'Reflective functioning score (Parent Development Interview)' }],
      text: `Reflective functioning score (${def.rating.min} to ${def.rating.max})`,
      type: 'integer',
      required: true,
    });
  }
  return items;
}

/** Displays of CodeSystem instrument-score (mappings/CodeSystem-instrument-score.json). */
const SUBSCALE_DISPLAY: Record<string, string> = {
  'prfq-pre-mentalizing': 'PRFQ pre-mentalizing modes (mean score)',
  'prfq-certainty-about-mental-states': 'PRFQ certainty about mental states (mean score)',
  'prfq-interest-and-curiosity': 'PRFQ interest and curiosity in mental states (mean score)',
};

function instrumentQuestionnaire(def: InstrumentDefinition): Questionnaire {
  return {
    resourceType: 'Questionnaire',
    id: def.questionnaireId,
    language: 'en',
    url: questionnaireUrl(def.questionnaireId),
    version: VERSION,
    name: NAME[def.id],
    title: def.title,
    status: 'active',
    experimental: false,
    subjectType: ['Patient'],
    date: DATE,
    publisher: PUBLISHER,
    description: DESCRIPTION[def.id],
    copyright: COPYRIGHT[def.id],
    ...(def.panel ? { code: [{ ...def.panel }] } : {}),
    item: instrumentItems(def),
  };
}

/** English text with its Norwegian bokmål translation (`_text`). */
function bilingual(en: string, nb: string): { text: string; _text: { extension: Extension[] } } {
  return {
    text: en,
    _text: {
      extension: [
        {
          url: EXT.translation,
          extension: [
            { url: 'lang', valueCode: 'nb' },
            { url: 'content', valueString: nb },
          ],
        },
      ],
    },
  };
}

const reviewItemCode = (code: string, display: string): Coding => ({ system: codeSystemUrl('session-review-item'), code, display });

/** Our own form for a Marte Meo review session: what was reviewed and worked on. */
function sessionReviewQuestionnaire(): Questionnaire {
  const id = 'marte-meo-session-review';
  const { text: title, _text: _title } = bilingual('Marte Meo session review', 'Gjennomgang av Marte Meo-økt');
  // `_title` / `_text` (primitive extensions) are valid FHIR JSON the fhirtypes do not model.
  return {
    resourceType: 'Questionnaire',
    id,
    language: 'en',
    url: questionnaireUrl(id),
    version: VERSION,
    name: 'MarteMeoSessionReview',
    title,
    _title,
    status: 'active',
    experimental: false,
    subjectType: ['Patient'],
    date: DATE,
    publisher: PUBLISHER,
    description:
      "Review session of a Marte Meo video-guidance episode: the clips reviewed with the parent, the Marte Meo elements worked on and the themes of the parent's change process as the therapist sees them (episode format: session.reviewsClips, focusElements, themes).",
    item: [
      {
        linkId: 'session-date',
        code: [reviewItemCode('session-date', 'Session date')],
        ...bilingual('Session date', 'Dato for økten'),
        type: 'date',
        required: true,
      },
      {
        linkId: 'clips-reviewed',
        code: [reviewItemCode('clips-reviewed', 'Clips reviewed')],
        ...bilingual('Clips reviewed (clip ids)', 'Klipp som ble gjennomgått (klipp-id)'),
        type: 'string',
        repeats: true,
      },
      {
        extension: [itemControl('check-box')],
        linkId: 'focus-elements',
        code: [reviewItemCode('focus-elements', 'Focus elements')],
        ...bilingual('Marte Meo elements worked on', 'Marte Meo-elementer det ble arbeidet med'),
        type: 'choice',
        repeats: true,
        answerOption: codeSystemOptions(focusElementSystem as CodeSystem),
      },
      {
        extension: [itemControl('check-box')],
        linkId: 'themes',
        code: [reviewItemCode('themes', 'Change process themes')],
        ...bilingual("The parent's change process (as the therapist sees it)", 'Forelderens endringsprosess (slik terapeuten ser den)'),
        type: 'choice',
        repeats: true,
        answerOption: codeSystemOptions(changeThemeSystem as CodeSystem),
      },
    ],
  } as Questionnaire;
}

/** The Questionnaire with id `id`, built from the definitions (pure, deterministic); undefined if unknown. */
export function questionnaire(id: string): Questionnaire | undefined {
  if (id === 'marte-meo-session-review') return sessionReviewQuestionnaire();
  const instrument = instrumentByQuestionnaireId.get(id);
  return instrument ? instrumentQuestionnaire(INSTRUMENTS[instrument]) : undefined;
}

/** Splits `url|version`; a version other than ours is not ours. */
function idForCanonical(canonical: string): string | undefined {
  const [url, version, ...rest] = canonical.split('|');
  if (rest.length || (version !== undefined && version !== VERSION)) return undefined;
  const prefix = questionnaireUrl('');
  if (!url?.startsWith(prefix)) return undefined;
  const id = url.slice(prefix.length);
  return QUESTIONNAIRE_IDS.includes(id) ? id : undefined;
}

/** The Questionnaire for a canonical reference (`url` or `url|version`); undefined if not one of ours. */
export function questionnaireForUrl(canonical: string): Questionnaire | undefined {
  const id = idForCanonical(canonical);
  return id ? questionnaire(id) : undefined;
}

/** The instrument a Questionnaire canonical (`url` or `url|version`) scores; undefined for forms without scoring. */
export function instrumentForQuestionnaire(canonical: string): InstrumentId | undefined {
  const id = idForCanonical(canonical);
  return id ? instrumentByQuestionnaireId.get(id) : undefined;
}
