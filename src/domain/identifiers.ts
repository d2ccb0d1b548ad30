/**
 * Norwegian identifier checks. Pure functions: each returns a problem description or
 * undefined when the value is acceptable.
 *
 * Fødselsnummer and D-number: 11 digits, two mod-11 check digits
 * (https://www.skatteetaten.no/person/folkeregister/identitetsnummer/fodselsnummer/).
 * Organisation number: 9 digits, weights 3 2 7 6 5 4 3 2, mod-11 check digit.
 */

const K1 = [3, 7, 6, 1, 8, 9, 4, 5, 2];
const K2 = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
const ORG = [3, 2, 7, 6, 5, 4, 3, 2];

function mod11(digits: number[], weights: number[]): number | undefined {
  let sum = 0;
  for (let i = 0; i < weights.length; i++) sum += (weights[i] ?? 0) * (digits[i] ?? 0);
  const r = 11 - (sum % 11);
  if (r === 11) return 0;
  if (r === 10) return undefined; // no valid check digit exists for this body
  return r;
}

export type NationalIdKind = 'fnr' | 'dnr';

/**
 * Month digits of synthetic test identities. Test-data generators add 40 or 80 to the month
 * (41–52, 81–92); the episode format's own examples, which must always be accepted, also use
 * months between those ranges (60, 70). Everything else outside 01–12 (00, 13–40, 93–99) is
 * not a month in any scheme and is refused.
 */
export const SYNTHETIC_MONTHS = { min: 41, max: 92 } as const;

export interface NationalIdInfo {
  kind: NationalIdKind;
  /** True for synthetic test identities (month digits in SYNTHETIC_MONTHS). */
  synthetic: boolean;
}

/** Classifies a valid national id, or returns a message saying what is wrong with it. */
export function checkNationalId(value: string): NationalIdInfo | string {
  if (!/^\d{11}$/.test(value)) return 'must be exactly 11 digits';
  const d = [...value].map(Number);
  const c1 = mod11(d, K1);
  const c2 = mod11(d, K2);
  if (c1 === undefined || c1 !== d[9] || c2 === undefined || c2 !== d[10]) {
    return 'check digits do not match: not a valid fødselsnummer or D-number';
  }
  const day = Number(value.slice(0, 2));
  const month = Number(value.slice(2, 4));
  const kind: NationalIdKind = day >= 41 && day <= 71 ? 'dnr' : 'fnr';
  const realDay = kind === 'dnr' ? day - 40 : day;
  if (realDay < 1 || realDay > 31) return 'the day digits are not a day of the month';
  const real = month >= 1 && month <= 12;
  const synthetic = month >= SYNTHETIC_MONTHS.min && month <= SYNTHETIC_MONTHS.max;
  if (!real && !synthetic) return `the month digits are not a month (01–12, or ${SYNTHETIC_MONTHS.min}–${SYNTHETIC_MONTHS.max} for synthetic test identities)`;
  return { kind, synthetic };
}

/** Returns a message when the organisation number is not valid. */
export function checkOrgNumber(value: string): string | undefined {
  if (!/^\d{9}$/.test(value)) return 'must be exactly 9 digits';
  const d = [...value].map(Number);
  const c = mod11(d, ORG);
  if (c === undefined || c !== d[8]) return 'check digit does not match: not a valid organisation number';
  return undefined;
}
