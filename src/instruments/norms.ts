/**
 * Published psychometric values behind the outcome classification (`outcomes.ts`):
 * reliabilities, standard deviations, reliable-change criteria and clinical cut-offs.
 *
 * Every number here is taken from the publication cited next to it and was checked against a
 * stored copy of that publication's abstract or text (or a summary quoting it); none is derived
 * or estimated here. Where a value the Jacobson & Truax (1991) method needs could not be
 * checked, it is left out, and the outcome is reported without that part (see `outcomes.ts`).
 *
 * Method: Jacobson NS, Truax P. Clinical significance: a statistical approach to defining
 * meaningful change in psychotherapy research. J Consult Clin Psychol 1991;59(1):12–19.
 *   SE = SD·√(1 − r), Sdiff = √(2·SE²), RCI = (x2 − x1) / Sdiff, reliable when |RCI| ≥ 1.96.
 */
import type { ParentPerson } from '../domain/episode.ts';

export type Direction = 'lower-is-better' | 'higher-is-better';
export type Gender = ParentPerson['gender'];

/** One citation: a stable key (reported with each outcome) and the full reference. */
export interface Citation {
  key: string;
  reference: string;
}

export const CITATIONS = {
  'jacobson-truax-1991': {
    key: 'jacobson-truax-1991',
    reference:
      'Jacobson NS, Truax P. Clinical significance: a statistical approach to defining meaningful change in psychotherapy research. J Consult Clin Psychol 1991;59(1):12–19.',
  },
  'matthey-2004': {
    key: 'matthey-2004',
    reference:
      'Matthey S. Calculating clinically significant change in postnatal depression studies using the Edinburgh Postnatal Depression Scale. J Affect Disord 2004;78(3):269–272. doi:10.1016/S0165-0327(02)00313-0',
  },
  'cox-holden-sagovsky-1987': {
    key: 'cox-holden-sagovsky-1987',
    reference:
      'Cox JL, Holden JM, Sagovsky R. Detection of postnatal depression: development of the 10-item Edinburgh Postnatal Depression Scale. Br J Psychiatry 1987;150:782–786. doi:10.1192/bjp.150.6.782',
  },
  'kroenke-spitzer-williams-2001': {
    key: 'kroenke-spitzer-williams-2001',
    reference:
      'Kroenke K, Spitzer RL, Williams JBW. The PHQ-9: validity of a brief depression severity measure. J Gen Intern Med 2001;16(9):606–613. doi:10.1046/j.1525-1497.2001.016009606.x',
  },
  'kocalevent-hinz-brahler-2013': {
    key: 'kocalevent-hinz-brahler-2013',
    reference:
      'Kocalevent R-D, Hinz A, Brähler E. Standardization of the depression screener Patient Health Questionnaire (PHQ-9) in the general population. Gen Hosp Psychiatry 2013;35(5):551–555. doi:10.1016/j.genhosppsych.2013.04.006',
  },
  'spitzer-2006': {
    key: 'spitzer-2006',
    reference:
      'Spitzer RL, Kroenke K, Williams JBW, Löwe B. A brief measure for assessing generalized anxiety disorder: the GAD-7. Arch Intern Med 2006;166(10):1092–1097. doi:10.1001/archinte.166.10.1092',
  },
  'lowe-2008': {
    key: 'lowe-2008',
    reference:
      'Löwe B, Decker O, Müller S, Brähler E, Schellberg D, Herzog W, Herzberg PY. Validation and standardization of the Generalized Anxiety Disorder Screener (GAD-7) in the general population. Med Care 2008;46(3):266–274. doi:10.1097/MLR.0b013e318160d093',
  },
  'luyten-2017': {
    key: 'luyten-2017',
    reference:
      'Luyten P, Mayes LC, Nijssens L, Fonagy P. The parental reflective functioning questionnaire: development and preliminary validation. PLoS ONE 2017;12(5):e0176218. doi:10.1371/journal.pone.0176218',
  },
} as const satisfies Record<string, Citation>;

export type CitationKey = keyof typeof CITATIONS;

/**
 * How reliable change is decided for one measure:
 * - `rci`: from a reliability `r` and a standard deviation `sd` (Jacobson & Truax 1991);
 * - `points`: a reliable-change criterion in score points that a publication computed with
 *   the Jacobson & Truax method (used when the inputs of that computation were not checked).
 */
export type ReliableChange = { kind: 'rci'; r: number; sd: (gender: Gender) => number } | { kind: 'points'; points: number };

export interface MeasureNorms {
  direction: Direction;
  /** Absent: the change is reported without reliable-change classification ('not-classified'). */
  reliableChange?: ReliableChange;
  /**
   * Clinical cut-off: the lowest clinical score for lower-is-better measures (score ≥ cutoff
   * is on the clinical side). Absent: no 'recovered' classification.
   */
  cutoff?: number;
  /** Citations of the values above, reported with the outcome. */
  sources?: CitationKey[];
}

/** Norms by measure: the instrument id for totals, our `instrument-score` code for the others. */
export const NORMS: Record<string, MeasureNorms> = {
  /**
   * EPDS (total 0–30, lower is better).
   * - Reliable change: 4 points. Matthey 2004 (J Affect Disord 78:269–272) applies Jacobson &
   *   Truax (1991) to the EPDS: "The RCI for the EPDS is calculated to be four points. This is
   *   the size of difference between two scores which is needed for a clinician to be 95%
   *   confident that this change reflects a real change" (abstract). The SD and reliability
   *   Matthey used could not be checked, so no RCI value is computed for the EPDS: reliable
   *   change is a change of 4 points or more.
   * - Cut-off: 12/13, i.e. 13 or more is clinical (probable major depression), the cut-off
   *   Matthey 2004 uses for the clinical-significance classification ("the accepted EPDS
   *   cut-off score of 12/13 for major depression (English-speaking women)"), after Cox,
   *   Holden & Sagovsky 1987 (Br J Psychiatry 150:782–786). The contract's ≥10 "possible
   *   depression" band is not used for recovery.
   */
  EPDS: {
    direction: 'lower-is-better',
    reliableChange: { kind: 'points', points: 4 },
    cutoff: 13,
    sources: ['matthey-2004', 'cox-holden-sagovsky-1987'],
  },
  /**
   * PHQ-9 (total 0–27, lower is better).
   * - r = 0.86: Kroenke, Spitzer & Williams 2001 (J Gen Intern Med 16:606–613) report
   *   Cronbach's α of 0.89 and 0.86 in their two samples (8 primary care clinics, 7
   *   obstetrics-gynaecology clinics). The lower of the two is used: it gives the more
   *   conservative criterion.
   * - SD = 3.5: general-population SD, the same for women and men (mean (SD) 3.1 (3.5) for
   *   women, 2.7 (3.5) for men; Kocalevent, Hinz & Brähler 2013, Gen Hosp Psychiatry
   *   35:551–555, abstract).
   * - Cut-off: 10 or more is clinical (a PHQ-9 score ≥ 10 had 88% sensitivity and 88%
   *   specificity for major depression; Kroenke, Spitzer & Williams 2001, abstract).
   */
  'PHQ-9': {
    direction: 'lower-is-better',
    reliableChange: { kind: 'rci', r: 0.86, sd: () => 3.5 },
    cutoff: 10,
    sources: ['kroenke-spitzer-williams-2001', 'kocalevent-hinz-brahler-2013'],
  },
  /**
   * GAD-7 (total 0–21, lower is better).
   * - r = 0.83: test–retest reliability (intraclass correlation 0.83; internal consistency
   *   α = 0.92) in Spitzer, Kroenke, Williams & Löwe 2006 (Arch Intern Med 166:1092–1097).
   *   Jacobson & Truax (1991) use test–retest reliability.
   * - SD: general-population SDs by gender, Löwe et al. 2008 (Med Care 46:266–274, abstract):
   *   women 3.2 (3.5), men 2.7 (3.2) [mean (SD)]. A parent whose gender is other or unknown
   *   gets the women's 3.5: the larger SD gives the larger (more conservative) criterion.
   * - Cut-off: 10 or more is clinical (Spitzer et al. 2006: the cut point that optimised
   *   sensitivity (89%) and specificity (82%) for generalized anxiety disorder is 10).
   */
  'GAD-7': {
    direction: 'lower-is-better',
    reliableChange: { kind: 'rci', r: 0.83, sd: (g) => (g === 'male' ? 3.2 : 3.5) },
    cutoff: 10,
    sources: ['spitzer-2006', 'lowe-2008'],
  },
  /**
   * PRFQ subscales (means 1–7; Luyten, Mayes, Nijssens & Fonagy 2017, PLoS ONE 12:e0176218).
   * No clinical cut-off is published, and the subscale reliabilities and SDs could not be
   * checked: change is reported, not classified.
   * Direction: higher pre-mentalizing is worse. For certainty and for interest and curiosity
   * higher is better within the ordinary range, but Luyten et al. describe very high scores as
   * possibly problematic too (over-certainty, intrusive hypermentalizing), one more reason not
   * to classify them.
   */
  'prfq-pre-mentalizing': { direction: 'lower-is-better' },
  'prfq-certainty-about-mental-states': { direction: 'higher-is-better' },
  'prfq-interest-and-curiosity': { direction: 'higher-is-better' },
  /**
   * PDI reflective functioning (−1 … 9, 5 ordinary RF; higher is better). No test–retest
   * reliability and population SD were found to check: change is reported, not classified.
   */
  'pdi-rf': { direction: 'higher-is-better' },
};

/** The z for a two-tailed 5% test (Jacobson & Truax 1991). */
export const RELIABLE_Z = 1.96;

/** Sdiff = √(2·SE²), SE = SD·√(1 − r) (Jacobson & Truax 1991). */
export function sDiff(sd: number, r: number): number {
  const se = sd * Math.sqrt(1 - r);
  return Math.sqrt(2 * se * se);
}
