/**
 * Instrument definitions: items, answer ranges, reversed items, score codes and band edges.
 * The scoring engine (`scoring.ts`) reads only this data, so the episode path and the
 * questionnaire path score the same way.
 *
 * Band edges follow the episode format (shared contract, "Assessment"):
 * EPDS ≥10 possible, ≥13 probable depression (Cox, Holden & Sagovsky 1987);
 * PHQ-9 5/10/15/20 (Kroenke, Spitzer & Williams 2001);
 * GAD-7 5/10/15 (Spitzer et al. 2006).
 */
import type { Coding } from '@medplum/fhirtypes';
import { codeSystemUrl, LOINC } from '../fhir/systems.ts';

export type InstrumentId = 'EPDS' | 'PHQ-9' | 'GAD-7' | 'PRFQ' | 'PDI-RF';

export interface Band {
  /** Lowest total in this band (inclusive). */
  from: number;
  /** Code in our CodeSystem `score-band`. */
  band: string;
}

export interface Subscale {
  /** Code in our CodeSystem `instrument-score`. */
  code: string;
  items: string[];
}

export interface InstrumentDefinition {
  id: InstrumentId;
  /** Id of the published Questionnaire (`{base}/Questionnaire/{id}`). */
  questionnaireId: string;
  /** Item keys "1".."n"; empty for ratings without items (PDI-RF). */
  items: string[];
  min: number;
  max: number;
  /** Items scored in reverse: score = min + max − answer. */
  reversed: string[];
  /** Sum score, coded in LOINC, with its bands. */
  total?: { code: Coding; bands: Band[] };
  /** Mean scores over item groups (after reversal), coded in our CodeSystem. */
  subscales?: Subscale[];
  /** An item whose non-zero score is a self-harm risk flag, whatever the total. */
  selfHarmItem?: string;
  /** Rating instruments carry one score instead of items; coded in our CodeSystem. */
  rating?: { code: string; min: number; max: number };
  /** Full name, used as the Questionnaire title. */
  title: string;
  /** Code of the whole instrument (LOINC panel), where one was verified (mappings/loinc-instruments.json). */
  panel?: Coding;
  /**
   * Code of each item, by item key: LOINC where the item has a verified LOINC code, else our
   * CodeSystem `instrument-item`. Absent for ratings without items.
   */
  itemCodes?: Record<string, Coding>;
  /**
   * The answer options every item offers, in the order of the raw answers the episode format
   * sends: `options[i]` is raw answer `min + i`. The score of an option is `itemScore()` of
   * that raw answer, so reversed items keep their options and change only the scores.
   */
  answerList?: AnswerList;
}

export interface AnswerList {
  /** Code system of the options (LOINC, or one of our CodeSystems in mappings/). */
  system: string;
  /** LOINC answer list id, where the options are a LOINC answer list. */
  loincAnswerList?: string;
  options: { code: string; display: string }[];
}

const keys = (n: number) => Array.from({ length: n }, (_, i) => String(i + 1));

const INSTRUMENT_ITEM = codeSystemUrl('instrument-item');

/** Item codes `<prefix>-1` … in our CodeSystem instrument-item (EPDS, PRFQ: no LOINC item codes found). */
const ourItemCodes = (prefix: string, label: string, n: number): Record<string, Coding> =>
  Object.fromEntries(keys(n).map((k) => [k, { system: INSTRUMENT_ITEM, code: `${prefix}-${k}`, display: `${label} item ${k}` }]));

/** LOINC item codes in form order (mappings/loinc-instruments.json, with sources). */
const loincItemCodes = (items: [string, string][]): Record<string, Coding> =>
  Object.fromEntries(items.map(([code, display], i) => [String(i + 1), { system: LOINC, code, display }]));

/**
 * LOINC answer list LL358-3 (PHQ-9/GAD-7 frequency), raw answers 0–3. Codes and displays as in
 * the SDC IG example (github HL7/sdc input/fsh/instances/questionnaire-sdc-profile-example-ordinal-value.fsh,
 * contained ValueSet LL358-3) and the HL7 PHR IG GAD-7 QuestionnaireResponse example.
 */
const LL358_3: AnswerList = {
  system: LOINC,
  loincAnswerList: 'LL358-3',
  options: [
    { code: 'LA6568-5', display: 'Not at all' },
    { code: 'LA6569-3', display: 'Several days' },
    { code: 'LA6570-1', display: 'More than half the days' },
    { code: 'LA6571-9', display: 'Nearly every day' },
  ],
};

/** Our CodeSystem answer-position: the position of the option ticked, top to bottom (EPDS). */
const ANSWER_POSITION: AnswerList = {
  system: codeSystemUrl('answer-position'),
  options: [
    { code: '0', display: 'First option (top)' },
    { code: '1', display: 'Second option' },
    { code: '2', display: 'Third option' },
    { code: '3', display: 'Fourth option (bottom)' },
  ],
};

/** Our CodeSystem prfq-agreement: the 7-point agreement scale of the PRFQ, raw answers 1–7. */
const PRFQ_AGREEMENT: AnswerList = {
  system: codeSystemUrl('prfq-agreement'),
  options: [
    { code: '1', display: '1 (strongly disagree)' },
    { code: '2', display: '2' },
    { code: '3', display: '3' },
    { code: '4', display: '4' },
    { code: '5', display: '5' },
    { code: '6', display: '6' },
    { code: '7', display: '7 (strongly agree)' },
  ],
};

export const INSTRUMENTS: Record<InstrumentId, InstrumentDefinition> = {
  EPDS: {
    id: 'EPDS',
    questionnaireId: 'epds',
    items: keys(10),
    min: 0,
    max: 3,
    // The form lists options top to bottom; items 3 and 5–10 run from most to least symptomatic.
    reversed: ['3', '5', '6', '7', '8', '9', '10'],
    total: {
      code: { system: LOINC, code: '99046-5', display: 'Total score [EPDS]' },
      bands: [
        { from: 0, band: 'below-threshold' },
        { from: 10, band: 'possible-depression' },
        { from: 13, band: 'probable-depression' },
      ],
    },
    selfHarmItem: '10',
    title: 'Edinburgh Postnatal Depression Scale (EPDS)',
    panel: { system: LOINC, code: '71354-5', display: 'Edinburgh Postnatal Depression Scale [EPDS]' },
    itemCodes: ourItemCodes('epds', 'EPDS', 10),
    answerList: ANSWER_POSITION,
  },
  'PHQ-9': {
    id: 'PHQ-9',
    questionnaireId: 'phq-9',
    items: keys(9),
    min: 0,
    max: 3,
    reversed: [],
    total: {
      code: { system: LOINC, code: '44261-6', display: 'Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]' },
      bands: [
        { from: 0, band: 'minimal' },
        { from: 5, band: 'mild' },
        { from: 10, band: 'moderate' },
        { from: 15, band: 'moderately-severe' },
        { from: 20, band: 'severe' },
      ],
    },
    selfHarmItem: '9',
    title: 'Patient Health Questionnaire-9 (PHQ-9)',
    panel: { system: LOINC, code: '44249-1', display: 'PHQ-9 quick depression assessment panel [Reported.PHQ]' },
    // Form order; the codes are not in numeric order.
    itemCodes: loincItemCodes([
      ['44250-9', 'Little interest or pleasure in doing things in last 2 weeks'],
      ['44255-8', 'Feeling down, depressed, or hopeless in last 2 weeks'],
      ['44259-0', 'Trouble falling or staying asleep, or sleeping too much in last 2 weeks [Reported.PHQ]'],
      ['44254-1', 'Feeling tired or having little energy in last 2 weeks [Reported.PHQ]'],
      ['44251-7', 'Poor appetite or overeating in last 2 weeks [Reported.PHQ]'],
      ['44258-2', 'Feeling bad about yourself - or that you are a failure or have let yourself or your family down in last 2 weeks [Reported.PHQ]'],
      ['44252-5', 'Trouble concentrating on things, such as reading the newspaper or watching television in last 2 weeks [Reported.PHQ]'],
      [
        '44253-3',
        'Moving or speaking so slowly that other people could have noticed. Or the opposite - being so fidgety or restless that you have been moving around a lot more than usual in last 2 weeks [Reported.PHQ]',
      ],
      ['44260-8', 'Thoughts that you would be better off dead, or of hurting yourself in some way in last 2 weeks [Reported.PHQ]'],
    ]),
    answerList: LL358_3,
  },
  'GAD-7': {
    id: 'GAD-7',
    questionnaireId: 'gad-7',
    items: keys(7),
    min: 0,
    max: 3,
    reversed: [],
    total: {
      code: { system: LOINC, code: '70274-6', display: 'Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]' },
      bands: [
        { from: 0, band: 'minimal' },
        { from: 5, band: 'mild' },
        { from: 10, band: 'moderate' },
        { from: 15, band: 'severe' },
      ],
    },
    title: 'Generalized Anxiety Disorder 7-item scale (GAD-7)',
    panel: { system: LOINC, code: '69737-5', display: 'Generalized anxiety disorder 7 item (GAD-7)' },
    itemCodes: loincItemCodes([
      ['69725-0', 'Feeling nervous, anxious or on edge in last 2 weeks'],
      ['68509-9', 'Not able to stop or control worrying in the last 2 weeks'],
      ['69733-4', 'Worrying too much about different things in last 2 weeks [Reported.PHQ]'],
      ['69734-2', 'Trouble relaxing in last 2 weeks [Reported.PHQ]'],
      ['69735-9', 'Being so restless that it is hard to sit still in last 2 weeks [Reported.PHQ]'],
      // LOINC names this item with a 4-week recall (shared with PHQ-SADS); it is the code HL7 IGs use for GAD-7 item 6.
      ['69689-8', 'Becoming easily annoyed or irritable in last 4 weeks [Reported.PHQ]'],
      ['69736-7', 'Feeling afraid as if something awful might happen in last 2 weeks [Reported.PHQ]'],
    ]),
    answerList: LL358_3,
  },
  PRFQ: {
    id: 'PRFQ',
    questionnaireId: 'prfq',
    items: keys(18),
    min: 1,
    max: 7,
    reversed: ['11', '18'],
    subscales: [
      { code: 'prfq-pre-mentalizing', items: ['1', '4', '7', '10', '13', '16'] },
      { code: 'prfq-certainty-about-mental-states', items: ['2', '5', '8', '11', '14', '17'] },
      { code: 'prfq-interest-and-curiosity', items: ['3', '6', '9', '12', '15', '18'] },
    ],
    title: 'Parental Reflective Functioning Questionnaire (PRFQ)',
    itemCodes: ourItemCodes('prfq', 'PRFQ', 18),
    answerList: PRFQ_AGREEMENT,
  },
  'PDI-RF': {
    id: 'PDI-RF',
    questionnaireId: 'pdi-rf',
    items: [],
    min: -1,
    max: 9,
    reversed: [],
    rating: { code: 'pdi-rf', min: -1, max: 9 },
    title: 'Reflective functioning rating (Parent Development Interview)',
  },
};
