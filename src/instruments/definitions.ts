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
import { LOINC } from '../fhir/systems.ts';

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
}

const keys = (n: number) => Array.from({ length: n }, (_, i) => String(i + 1));

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
  },
  'PDI-RF': {
    id: 'PDI-RF',
    questionnaireId: 'pdi-rf',
    items: [],
    min: -1,
    max: 9,
    reversed: [],
    rating: { code: 'pdi-rf', min: -1, max: 9 },
  },
};
