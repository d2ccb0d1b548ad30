/**
 * One scoring engine for every path that brings answers (episode JSON, QuestionnaireResponse).
 * Input: an instrument and its raw answers as sent; output: plain numbers and codes.
 */
import { INSTRUMENTS, type InstrumentId } from './definitions.ts';

export interface ScoreResult {
  instrument: InstrumentId;
  /** Item scores after reversal. */
  itemScores: Record<string, number>;
  /** Sum score with its band, for instruments that have one. */
  total?: { value: number; band: string };
  /** Subscale means (two decimals), for instruments that have them. */
  subscales?: { code: string; value: number }[];
  /** Rating score (PDI-RF). */
  rating?: { code: string; value: number };
  /** True when the self-harm item has a non-zero score. */
  selfHarm: boolean;
}

/** Score of one item after reversal. */
export function itemScore(instrument: InstrumentId, item: string, answer: number): number {
  const def = INSTRUMENTS[instrument];
  return def.reversed.includes(item) ? def.min + def.max - answer : answer;
}

/** Rounds to two decimals, as scores and changes are reported. */
export const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Scores a complete answer set (validated beforehand) or a rating. */
export function score(instrument: InstrumentId, answers: Record<string, number> | undefined, rating?: number): ScoreResult {
  const def = INSTRUMENTS[instrument];
  if (def.rating) {
    if (rating === undefined) throw new Error(`${instrument} needs a rating score`);
    return { instrument, itemScores: {}, rating: { code: def.rating.code, value: rating }, selfHarm: false };
  }
  if (!answers) throw new Error(`${instrument} needs answers`);
  const itemScores: Record<string, number> = {};
  for (const item of def.items) {
    const a = answers[item];
    if (a === undefined) throw new Error(`${instrument} item ${item} is missing`);
    itemScores[item] = itemScore(instrument, item, a);
  }
  const result: ScoreResult = { instrument, itemScores, selfHarm: false };
  if (def.total) {
    const value = def.items.reduce((s, i) => s + (itemScores[i] ?? 0), 0);
    let band = def.total.bands[0]?.band ?? '';
    for (const b of def.total.bands) if (value >= b.from) band = b.band;
    result.total = { value, band };
  }
  if (def.subscales) {
    result.subscales = def.subscales.map((s) => ({
      code: s.code,
      value: round2(s.items.reduce((sum, i) => sum + (itemScores[i] ?? 0), 0) / s.items.length),
    }));
  }
  if (def.selfHarmItem) result.selfHarm = (itemScores[def.selfHarmItem] ?? 0) > 0;
  return result;
}
