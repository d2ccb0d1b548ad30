import type { TypedValueWithPath } from '@medplum/core';
import type { Coding, OperationOutcomeIssue } from '@medplum/fhirtypes';
// Expanded code lists of every ValueSet that an element of the R4 subset or of our profiles
// binds with strength `required`, written by scripts/build-definitions.mjs.
import generated from '../generated/valuesets.json' with { type: 'json' };
import { isObject } from './json.ts';
import { issue } from './outcome.ts';

/**
 * Values that @medplum/core's validator collected (`collect.tokens`) for elements with a
 * `required` binding, by the ValueSet canonical of the binding (possibly `url|version`).
 */
export type BindingTokens = Record<string, TypedValueWithPath[]>;

interface Expansion {
  /** Codes by system. */
  bySystem: Map<string, Set<string>>;
  /** Every code, whatever its system: for `code`, `string` and `uri` elements. */
  codes: Set<string>;
}

const { valueSets, skipped } = generated as {
  valueSets: Record<string, Record<string, string[]>>;
  skipped: Record<string, string>;
};

/** ValueSets that cannot be expanded from enumerated concepts, with the reason; not checked. */
export const UNCHECKED_VALUE_SETS: Readonly<Record<string, string>> = skipped;

const expansions = new Map<string, Expansion>();

function expansion(canonical: string): Expansion | undefined {
  const url = canonical.split('|')[0] as string;
  let e = expansions.get(url);
  if (!e) {
    const systems = valueSets[url];
    if (!systems) return undefined;
    const bySystem = new Map(Object.entries(systems).map(([s, codes]) => [s, new Set(codes)]));
    e = { bySystem, codes: new Set(Object.values(systems).flat()) };
    expansions.set(url, e);
  }
  return e;
}

/** A primitive value, unwrapped from the String object that carries primitive extensions. */
function primitive(v: unknown): unknown {
  return isObject(v) && !Array.isArray(v) ? v.valueOf() : v;
}

const codingInSet = (c: Coding, e: Expansion): boolean =>
  typeof c.code === 'string' && (c.system === undefined ? e.codes.has(c.code) : !!e.bySystem.get(c.system)?.has(c.code));

const showCoding = (c: Coding): string => (c.system ? `${c.system}|${c.code ?? ''}` : `${c.code ?? ''}`);

/**
 * Checks the collected values against the expansions of their ValueSets: a code must be one of
 * the ValueSet's codes, a Coding (or Quantity) must match on system and code (on code alone
 * when it has no system), and a
 * CodeableConcept must have at least one coding that does. ValueSets without an expansion
 * (see {@link UNCHECKED_VALUE_SETS}) are not checked. `rebase` turns the validator's path
 * into the expression reported.
 */
export function checkRequiredBindings(tokens: BindingTokens, rebase: (path: string) => string): OperationOutcomeIssue[] {
  const out: OperationOutcomeIssue[] = [];
  for (const [valueSet, values] of Object.entries(tokens)) {
    const e = expansion(valueSet);
    if (!e) continue;
    const url = valueSet.split('|')[0] as string;
    for (const tv of values) {
      const problem = check(tv, e);
      if (!problem) continue;
      // The validator names a choice element by its definition (`value[x]`); name the property.
      const path = tv.path.endsWith('[x]') ? tv.path.slice(0, -3) + tv.type.charAt(0).toUpperCase() + tv.type.slice(1) : tv.path;
      out.push(issue('code-invalid', `${problem} the required ValueSet ${url}`, undefined, 'error', rebase(path)));
    }
  }
  return out;
}

/**
 * What {@link checkRequiredBindings} would say of one value of FHIR type `type` bound to
 * `valueSet` ("Code "x" is not in"), or undefined when it would say nothing (in the ValueSet,
 * a type without codes, or a ValueSet without an expansion). For the generated validators.
 */
export function bindingProblem(valueSet: string, type: string, value: unknown): string | undefined {
  const e = expansion(valueSet);
  return e ? check({ type, value, path: '' }, e) : undefined;
}

/** Describes the offending value ("… is not in"), or returns undefined when it is in the ValueSet. */
function check(tv: TypedValueWithPath, e: Expansion): string | undefined {
  const value = primitive(tv.value);
  switch (tv.type) {
    case 'code':
    case 'string':
    case 'uri':
      if (typeof value !== 'string') return undefined; // a primitive with only an extension
      return e.codes.has(value) ? undefined : `Code "${value}" is not in`;
    case 'Coding':
      if (!isObject(value)) return undefined;
      return codingInSet(value as Coding, e) ? undefined : `Coding ${showCoding(value as Coding)} is not in`;
    case 'Quantity': {
      // A Quantity's unit code is bound only when it carries one.
      if (!isObject(value) || value.code === undefined) return undefined;
      return codingInSet(value as Coding, e) ? undefined : `Quantity unit ${showCoding(value as Coding)} is not in`;
    }
    case 'CodeableConcept': {
      if (!isObject(value)) return undefined;
      // Only Codings count (and are shown): a null or a string in the array is the structure check's to report.
      const codings = Array.isArray(value.coding) ? (value.coding as unknown[]).filter(isObject).map((c) => c as Coding) : [];
      if (codings.some((c) => codingInSet(c, e))) return undefined;
      return codings.length ? `No coding of the CodeableConcept (${codings.map(showCoding).join(', ')}) is in` : 'A CodeableConcept without a coding is not in';
    }
    default:
      return undefined;
  }
}
