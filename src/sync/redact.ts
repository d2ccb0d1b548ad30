/**
 * Redaction of a FHIR server's error text before the bridge keeps it on a job: a server that
 * refuses a Bundle often quotes what it refused (a national id in a conditional reference,
 * a name, a phone number), and a job record is read by people and tools that do not need
 * those. What is redacted:
 *
 * - runs of 11 digits (Norwegian national ids and D-numbers, also written 6 + 5);
 * - phone numbers: international (`+47 …`) and Norwegian 8-digit numbers (grouped 3-2-3,
 *   2-2-2-2 or written together);
 * - the names, identifier values, phone numbers/e-mail addresses and birth dates of the
 *   people in the Bundle (Patient, RelatedPerson, Practitioner), as whole words, in any case.
 *
 * Pure: the same input gives the same output, and nothing else is touched.
 */
import type { Bundle, HumanName, OperationOutcome } from '@medplum/fhirtypes';
import { capOutcome } from '../fhir/outcome.ts';

export const REDACTED = '[redacted]';

const PEOPLE = new Set(['Patient', 'RelatedPerson', 'Practitioner', 'Person']);

/** Letters, marks and digits: what may not touch a term on either side for it to be a whole word. */
const WORD = '[\\p{L}\\p{M}\\p{N}]';

const GENERIC: RegExp[] = [
  // National ids: 11 digits, together or as birth date + personal number.
  /(?<!\d)\d{6}[ .-]?\d{5}(?!\d)/g,
  // International phone numbers.
  /\+\d{1,3}(?:[ ()-]*\d){6,14}/g,
  // Norwegian 8-digit numbers: not parts of dates, versions, UUIDs or longer numbers.
  /(?<![\w.:/-])(?:\d{3} ?\d{2} ?\d{3}|\d{2} \d{2} \d{2} \d{2})(?![\w.:/-])/g,
];

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Words that identify the people of a Bundle, longest first (see the module comment). */
export function personalTerms(bundle: Bundle | undefined): string[] {
  const terms = new Set<string>();
  const addName = (s: unknown) => {
    if (typeof s !== 'string') return;
    const t = s.trim();
    if (t.length >= 2) terms.add(t);
    // "Kari Anne", "Nordmann-Hansen": each part may be quoted alone.
    for (const part of t.split(/[\s-]+/)) if (part.length >= 2) terms.add(part);
  };
  const addValue = (s: unknown) => {
    if (typeof s === 'string' && s.trim().length >= 5) terms.add(s.trim());
  };
  for (const entry of bundle?.entry ?? []) {
    const r = entry.resource as
      | { resourceType: string; name?: HumanName[]; identifier?: { value?: string }[]; telecom?: { value?: string }[]; birthDate?: string }
      | undefined;
    if (!r || !PEOPLE.has(r.resourceType)) continue;
    for (const n of r.name ?? []) {
      addName(n.family);
      addName(n.text);
      for (const g of n.given ?? []) addName(g);
    }
    for (const i of r.identifier ?? []) addValue(i.value);
    for (const t of r.telecom ?? []) addValue(t.value);
    addValue(r.birthDate);
  }
  return [...terms].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
}

/** `text` with the terms (whole words, any case) and every national id or phone number replaced by {@link REDACTED}. */
export function redactText(text: string, terms: readonly string[] = []): string {
  let out = text;
  if (terms.length) {
    const re = new RegExp(`(?<!${WORD})(?:${terms.map(escapeRegExp).join('|')})(?!${WORD})`, 'giu');
    out = out.replace(re, REDACTED);
  }
  for (const re of GENERIC) out = out.replace(re, REDACTED);
  return out;
}

/** Deepest an outcome is walked; anything deeper is dropped rather than kept unredacted. */
const MAX_DEPTH = 32;

function redactValue(v: unknown, terms: readonly string[], depth: number): unknown {
  if (typeof v === 'string') return redactText(v, terms);
  if (depth >= MAX_DEPTH || !v || typeof v !== 'object') return typeof v === 'object' && v ? undefined : v;
  if (Array.isArray(v)) return v.map((x) => redactValue(x, terms, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === '__proto__') continue;
    const r = redactValue(x, terms, depth + 1);
    if (r !== undefined) out[k] = r;
  }
  return out;
}

/**
 * A FHIR server's OperationOutcome as the bridge keeps it on a job: capped (fhir/outcome.ts
 * capOutcome) and with every string redacted against the people of the Bundle it refused.
 */
export function redactOutcome(o: OperationOutcome, bundle?: Bundle): OperationOutcome {
  return redactValue(capOutcome(o), personalTerms(bundle), 0) as OperationOutcome;
}
