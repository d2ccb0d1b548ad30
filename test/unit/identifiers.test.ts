import { describe, expect, it } from 'vitest';
import { checkNationalId, checkOrgNumber } from '../../src/domain/identifiers.ts';

describe('national ids (fødselsnummer / D-number)', () => {
  it('accepts synthetic ids with valid check digits and marks them synthetic', () => {
    expect(checkNationalId('02839440092')).toEqual({ kind: 'fnr', synthetic: true });
    expect(checkNationalId('11902550331')).toEqual({ kind: 'fnr', synthetic: true });
  });

  it('rejects a wrong first or second check digit', () => {
    expect(checkNationalId('02839440082')).toMatch(/check digits/);
    expect(checkNationalId('02839440093')).toMatch(/check digits/);
  });

  it('rejects anything that is not 11 digits', () => {
    expect(checkNationalId('0283944009')).toMatch(/11 digits/);
    expect(checkNationalId('0283944009a')).toMatch(/11 digits/);
  });

  it('recognises D-numbers by day + 40', () => {
    // Body 428394400 (day 42 → D-number), check digits computed by the mod-11 rule.
    const id = withCheckDigits('428394400');
    if (!id) throw new Error('pick another body');
    expect(checkNationalId(id)).toEqual({ kind: 'dnr', synthetic: true });
  });
});

describe('organisation numbers', () => {
  it('accepts the example organisations', () => {
    for (const n of ['974557746', '923456783', '993778125']) expect(checkOrgNumber(n)).toBeUndefined();
  });
  it('rejects a wrong check digit or length', () => {
    expect(checkOrgNumber('974557747')).toMatch(/check digit/);
    expect(checkOrgNumber('97455774')).toMatch(/9 digits/);
  });
});

/** An 11-digit id with valid check digits for a 9-digit body, or undefined where none exists. */
function withCheckDigits(body: string): string | undefined {
  const w1 = [3, 7, 6, 1, 8, 9, 4, 5, 2];
  const w2 = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
  const c = (digits: number[], w: number[]) => {
    const r = 11 - (w.reduce((s, x, i) => s + x * (digits[i] ?? 0), 0) % 11);
    return r === 11 ? 0 : r;
  };
  const d = [...body].map(Number);
  const k1 = c(d, w1);
  const k2 = c([...d, k1], w2);
  return k1 === 10 || k2 === 10 ? undefined : `${body}${k1}${k2}`;
}

describe('national id months', () => {
  /** Some id with valid check digits for day 15 and the given month. */
  const idForMonth = (month: number): string => {
    for (let n = 0; n < 1000; n++) {
      const id = withCheckDigits(`15${String(month).padStart(2, '0')}94${String(n).padStart(3, '0')}`);
      if (id) return id;
    }
    throw new Error('no body with valid check digits');
  };

  it('accepts months 01–12 as real and the synthetic ranges (month + 40, month + 80) as synthetic', () => {
    for (let m = 1; m <= 12; m++) expect(checkNationalId(idForMonth(m))).toEqual({ kind: 'fnr', synthetic: false });
    for (let m = 41; m <= 52; m++) expect(checkNationalId(idForMonth(m))).toEqual({ kind: 'fnr', synthetic: true });
    for (let m = 81; m <= 92; m++) expect(checkNationalId(idForMonth(m))).toEqual({ kind: 'fnr', synthetic: true });
  });

  it('refuses impossible months even with valid check digits', () => {
    for (const m of [0, 13, 25, 40, 93, 99]) expect(checkNationalId(idForMonth(m))).toMatch(/month digits are not a month/);
  });
});
