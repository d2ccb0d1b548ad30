/**
 * Scoring reference tables, worked out by hand from the scoring rules of the episode format
 * (shared contract, "Assessment"), and property tests of the scoring engine.
 *
 * EPDS answers are the position (0–3, top to bottom) of the ticked option. Items 1, 2, 4 score
 * the position; items 3, 5–10 are reverse-scored: score = 3 − position.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INSTRUMENTS, type InstrumentId } from '../../src/instruments/definitions.ts';
import { itemScore, score } from '../../src/instruments/scoring.ts';

/** Answers "1".."n" from a list. */
const answers = (values: number[]): Record<string, number> => Object.fromEntries(values.map((v, i) => [String(i + 1), v]));

const total = (instrument: InstrumentId, values: number[]) => score(instrument, answers(values)).total;
const subscales = (values: number[]) => Object.fromEntries((score('PRFQ', answers(values)).subscales ?? []).map((s) => [s.code, s.value]));

describe('EPDS reference table', () => {
  // Items:                1  2  3  4  5  6  7  8  9  10
  it.each([
    // all-minimum: items 1,2,4 at position 0 (0) + reversed items at position 3 (3 − 3 = 0) = 0
    ['all minimum', [0, 0, 3, 0, 3, 3, 3, 3, 3, 3], 0, 'below-threshold'],
    // all-maximum: items 1,2,4 at position 3 (3·3 = 9) + 7 reversed items at position 0 (7·3 = 21) = 30
    ['all maximum', [3, 3, 0, 3, 0, 0, 0, 0, 0, 0], 30, 'probable-depression'],
    // every position 0: 0 + 0 + 0 (items 1,2,4) + 7·(3 − 0) = 21
    ['every position 0', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 21, 'probable-depression'],
    // 9: items 1,2,4 = 3+3+3 = 9, reversed all at position 3 = 0 → 9
    ['edge 9', [3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 9, 'below-threshold'],
    // 10: as 9 with item 3 at position 2 (3 − 2 = 1) → 9 + 1 = 10
    ['edge 10', [3, 3, 2, 3, 3, 3, 3, 3, 3, 3], 10, 'possible-depression'],
    // 12: as 9 with item 3 at position 0 (3 − 0 = 3) → 9 + 3 = 12
    ['edge 12', [3, 3, 0, 3, 3, 3, 3, 3, 3, 3], 12, 'possible-depression'],
    // 13: as 12 with item 5 at position 2 (3 − 2 = 1) → 12 + 1 = 13
    ['edge 13', [3, 3, 0, 3, 2, 3, 3, 3, 3, 3], 13, 'probable-depression'],
  ])('%s', (_name, values, value, band) => {
    expect(total('EPDS', values)).toEqual({ value, band });
  });

  // Baseline: every position 1 → items 1,2,4 score 1 (3) + 7 reversed items score 3 − 1 = 2 (14) = 17.
  const baseline = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
  it('baseline of position 1 everywhere is 17', () => expect(total('EPDS', baseline)?.value).toBe(17));

  it.each(['3', '5', '6', '7', '8', '9', '10'])('reversed item %s: a lower option (position 1 → 2) lowers the total 17 → 16', (item) => {
    const v = [...baseline];
    v[Number(item) - 1] = 2; // score 3 − 2 = 1 instead of 2
    expect(total('EPDS', v)?.value).toBe(16);
    v[Number(item) - 1] = 0; // score 3 − 0 = 3 instead of 2
    expect(total('EPDS', v)?.value).toBe(18);
  });

  it.each(['1', '2', '4'])('straight item %s: a lower option (position 1 → 2) raises the total 17 → 18', (item) => {
    const v = [...baseline];
    v[Number(item) - 1] = 2;
    expect(total('EPDS', v)?.value).toBe(18);
  });

  it('reverses exactly items 3, 5–10', () => {
    expect([...INSTRUMENTS.EPDS.reversed].sort()).toEqual(['10', '3', '5', '6', '7', '8', '9']);
  });

  // Item 10 (self-harm) is reverse-scored: position 0 "yes, quite often" scores 3 … position 3 "never" scores 0.
  it.each([
    [0, 3, true],
    [1, 2, true],
    [2, 1, true],
    [3, 0, false],
  ])('item 10 at position %i scores %i: self-harm flag %s', (position, itemValue, flag) => {
    const r = score('EPDS', answers([0, 0, 3, 0, 3, 3, 3, 3, 3, position]));
    expect(r.itemScores['10']).toBe(itemValue);
    expect(r.selfHarm).toBe(flag);
  });
});

describe('PHQ-9 reference table', () => {
  // Items:                1  2  3  4  5  6  7  8  9
  it.each([
    ['all minimum', [0, 0, 0, 0, 0, 0, 0, 0, 0], 0, 'minimal'], // 9·0
    ['all maximum', [3, 3, 3, 3, 3, 3, 3, 3, 3], 27, 'severe'], // 9·3
    ['edge 4', [1, 1, 1, 1, 0, 0, 0, 0, 0], 4, 'minimal'], // 4·1
    ['edge 5', [1, 1, 1, 1, 1, 0, 0, 0, 0], 5, 'mild'], // 5·1
    ['edge 9', [1, 1, 1, 1, 1, 1, 1, 1, 1], 9, 'mild'], // 9·1
    ['edge 10', [2, 1, 1, 1, 1, 1, 1, 1, 1], 10, 'moderate'], // 2 + 8·1
    ['edge 14', [2, 2, 2, 2, 2, 1, 1, 1, 1], 14, 'moderate'], // 5·2 + 4·1
    ['edge 15', [2, 2, 2, 2, 2, 2, 1, 1, 1], 15, 'moderately-severe'], // 6·2 + 3·1
    ['edge 19', [3, 2, 2, 2, 2, 2, 2, 2, 2], 19, 'moderately-severe'], // 3 + 8·2
    ['edge 20', [3, 3, 2, 2, 2, 2, 2, 2, 2], 20, 'severe'], // 2·3 + 7·2
  ])('%s', (_name, values, value, band) => {
    expect(total('PHQ-9', values)).toEqual({ value, band });
  });

  it('has no reversed items: raising any one answer by 1 raises the total by 1', () => {
    for (let i = 0; i < 9; i++) {
      const v = [1, 1, 1, 1, 1, 1, 1, 1, 1];
      v[i] = 2;
      expect(total('PHQ-9', v)?.value).toBe(10); // 9·1 + 1
    }
  });

  it.each([
    [0, false],
    [1, true],
    [2, true],
    [3, true],
  ])('item 9 = %i: self-harm flag %s', (value, flag) => {
    expect(score('PHQ-9', answers([0, 0, 0, 0, 0, 0, 0, 0, value])).selfHarm).toBe(flag);
  });
});

describe('GAD-7 reference table', () => {
  // Items:                1  2  3  4  5  6  7
  it.each([
    ['all minimum', [0, 0, 0, 0, 0, 0, 0], 0, 'minimal'], // 7·0
    ['all maximum', [3, 3, 3, 3, 3, 3, 3], 21, 'severe'], // 7·3
    ['edge 4', [1, 1, 1, 1, 0, 0, 0], 4, 'minimal'], // 4·1
    ['edge 5', [1, 1, 1, 1, 1, 0, 0], 5, 'mild'], // 5·1
    ['edge 9', [2, 2, 1, 1, 1, 1, 1], 9, 'mild'], // 2·2 + 5·1
    ['edge 10', [2, 2, 2, 1, 1, 1, 1], 10, 'moderate'], // 3·2 + 4·1
    ['edge 14', [2, 2, 2, 2, 2, 2, 2], 14, 'moderate'], // 7·2
    ['edge 15', [3, 2, 2, 2, 2, 2, 2], 15, 'severe'], // 3 + 6·2
  ])('%s', (_name, values, value, band) => {
    expect(total('GAD-7', values)).toEqual({ value, band });
  });

  it('has no self-harm item', () => {
    expect(score('GAD-7', answers([3, 3, 3, 3, 3, 3, 3])).selfHarm).toBe(false);
  });
});

describe('PRFQ reference table', () => {
  // Subscales: pre-mentalizing 1,4,7,10,13,16; certainty 2,5,8,11,14,17; interest 3,6,9,12,15,18.
  // Items 11 and 18 reverse-coded: 8 − x.
  it('all answers 1', () => {
    expect(subscales(Array(18).fill(1))).toEqual({
      'prfq-pre-mentalizing': 1, // 6·1 / 6
      'prfq-certainty-about-mental-states': 2, // (5·1 + (8 − 1)) / 6 = 12 / 6
      'prfq-interest-and-curiosity': 2, // (5·1 + (8 − 1)) / 6 = 12 / 6
    });
  });

  it('all answers 7', () => {
    expect(subscales(Array(18).fill(7))).toEqual({
      'prfq-pre-mentalizing': 7, // 6·7 / 6
      'prfq-certainty-about-mental-states': 6, // (5·7 + (8 − 7)) / 6 = 36 / 6
      'prfq-interest-and-curiosity': 6, // (5·7 + (8 − 7)) / 6 = 36 / 6
    });
  });

  it('lowest and highest possible subscale means', () => {
    // Minimum everywhere after reversal: item 11 and 18 answered 7 (8 − 7 = 1), the rest 1.
    const low = Array(18).fill(1);
    low[10] = 7;
    low[17] = 7;
    expect(subscales(low)).toEqual({ 'prfq-pre-mentalizing': 1, 'prfq-certainty-about-mental-states': 1, 'prfq-interest-and-curiosity': 1 });
    // Maximum: item 11 and 18 answered 1 (8 − 1 = 7), the rest 7.
    const high = Array(18).fill(7);
    high[10] = 1;
    high[17] = 1;
    expect(subscales(high)).toEqual({ 'prfq-pre-mentalizing': 7, 'prfq-certainty-about-mental-states': 7, 'prfq-interest-and-curiosity': 7 });
  });

  // Baseline: every answer 4 → every item scores 4 (8 − 4 = 4 for 11 and 18) → every mean 4.
  it('reversed item 11: answer 4 → 5 lowers certainty 4 → 3.83', () => {
    const v = Array(18).fill(4);
    v[10] = 5; // item 11 scores 8 − 5 = 3: (5·4 + 3) / 6 = 23 / 6 = 3.833 → 3.83
    expect(subscales(v)).toEqual({ 'prfq-pre-mentalizing': 4, 'prfq-certainty-about-mental-states': 3.83, 'prfq-interest-and-curiosity': 4 });
  });

  it('reversed item 18: answer 4 → 5 lowers interest and curiosity 4 → 3.83', () => {
    const v = Array(18).fill(4);
    v[17] = 5; // item 18 scores 8 − 5 = 3: (5·4 + 3) / 6 = 23 / 6 = 3.833 → 3.83
    expect(subscales(v)).toEqual({ 'prfq-pre-mentalizing': 4, 'prfq-certainty-about-mental-states': 4, 'prfq-interest-and-curiosity': 3.83 });
  });

  it('straight item 2: answer 4 → 5 raises certainty 4 → 4.17', () => {
    const v = Array(18).fill(4);
    v[1] = 5; // (5·4 + 5) / 6 = 25 / 6 = 4.167 → 4.17
    expect(subscales(v)['prfq-certainty-about-mental-states']).toBe(4.17);
  });

  it('reverses exactly items 11 and 18', () => {
    expect([...INSTRUMENTS.PRFQ.reversed].sort()).toEqual(['11', '18']);
  });
});

describe('PDI-RF', () => {
  it.each([-1, 0, 5, 9])('rating %i is reported as it is', (r) => {
    expect(score('PDI-RF', undefined, r)).toMatchObject({ rating: { code: 'pdi-rf', value: r }, selfHarm: false });
  });
});

/** Valid answers for an instrument, as fast-check arbitraries. */
const validAnswers = (id: InstrumentId) => {
  const def = INSTRUMENTS[id];
  return fc.array(fc.integer({ min: def.min, max: def.max }), { minLength: def.items.length, maxLength: def.items.length }).map(answers);
};

const bandIndex = (id: InstrumentId, band: string) => INSTRUMENTS[id].total?.bands.findIndex((b) => b.band === band) ?? -1;

describe('properties', () => {
  const totals: [InstrumentId, number][] = [
    ['EPDS', 30],
    ['PHQ-9', 27],
    ['GAD-7', 21],
  ];

  it.each(totals)('%s total stays within 0–%i and is the sum of the item scores', (id, max) => {
    fc.assert(
      fc.property(validAnswers(id), (a) => {
        const r = score(id, a);
        const value = r.total?.value ?? -1;
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThanOrEqual(max);
        expect(value).toBe(Object.values(r.itemScores).reduce((s, x) => s + x, 0));
        expect(bandIndex(id, r.total?.band ?? '')).toBeGreaterThanOrEqual(0);
      }),
    );
  });

  it('PRFQ subscale means stay within 1–7 with at most two decimals', () => {
    fc.assert(
      fc.property(validAnswers('PRFQ'), (a) => {
        for (const s of score('PRFQ', a).subscales ?? []) {
          expect(s.value).toBeGreaterThanOrEqual(1);
          expect(s.value).toBeLessThanOrEqual(7);
          expect(Math.round(s.value * 100) / 100).toBe(s.value);
        }
      }),
    );
  });

  it('reversing twice is the identity for every reversed item', () => {
    const reversed = (['EPDS', 'PRFQ'] as const).flatMap((id) => INSTRUMENTS[id].reversed.map((item) => [id, item] as const));
    expect(reversed.length).toBe(9);
    fc.assert(
      fc.property(fc.constantFrom(...reversed), fc.integer({ min: 0, max: 100 }), ([id, item], seed) => {
        const { min, max } = INSTRUMENTS[id];
        const x = min + (seed % (max - min + 1));
        const once = itemScore(id, item, x);
        expect(once).toBe(min + max - x);
        expect(itemScore(id, item, once)).toBe(x);
      }),
    );
  });

  it.each(totals.map(([id]) => id))('%s band is monotone in the total', (id) => {
    fc.assert(
      fc.property(validAnswers(id), validAnswers(id), (a, b) => {
        const [ra, rb] = [score(id, a).total, score(id, b).total];
        if (!ra || !rb) throw new Error('no total');
        if (ra.value <= rb.value) expect(bandIndex(id, ra.band)).toBeLessThanOrEqual(bandIndex(id, rb.band));
        if (ra.value === rb.value) expect(ra.band).toBe(rb.band);
      }),
    );
  });
});
