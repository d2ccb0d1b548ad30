import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { z } from 'zod/mini';
import { issue, OperationOutcomeError, outcome } from '../fhir/outcome.ts';
import { crossFieldRules, type Episode, type EpisodeSchemaOptions, episodeSchema, validFields } from './episode.ts';

/** RFC 6901 JSON pointer for a zod path. */
export function jsonPointer(path: readonly PropertyKey[]): string {
  return path.map((p) => '/' + String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('');
}

const schemas = new Map<boolean, ReturnType<typeof episodeSchema>>();
function schemaFor(allowSyntheticIds: boolean) {
  let s = schemas.get(allowSyntheticIds);
  if (!s) schemas.set(allowSyntheticIds, (s = episodeSchema({ allowSyntheticIds })));
  return s;
}

/** A readable name for the list item a path is inside, e.g. `assessment A3 (EPDS)`. */
function owner(input: unknown, path: readonly PropertyKey[]): string | undefined {
  const [list, index] = path;
  if (typeof index !== 'number' || !input || typeof input !== 'object') return undefined;
  const item = (input as Record<string, unknown>)[String(list)];
  const entry = Array.isArray(item) ? (item[index] as Record<string, unknown> | undefined) : undefined;
  if (!entry || typeof entry !== 'object') return undefined;
  const label = (key: string, noun: string, extra?: string) =>
    typeof entry[key] === 'string' ? `${noun} ${entry[key]}${extra ? ` (${extra})` : ''}` : `${noun} #${index}`;
  switch (list) {
    case 'assessments':
      return label('assessmentId', 'assessment', typeof entry.instrument === 'string' ? entry.instrument : undefined);
    case 'sessions':
      return label('sessionId', 'session');
    case 'goals':
      return label('goalId', 'goal');
    case 'infants':
      return `infant #${index}`;
    default:
      return undefined;
  }
}

function fieldName(path: readonly PropertyKey[]): string {
  return (
    path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '') || '(episode)'
  );
}

/** The value at a zod path in the raw input (zod 4 does not report it unless asked). */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const key of path) {
    if (!v || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key as string];
  }
  return v;
}

const kindOf = (v: unknown): string =>
  v === null
    ? 'null'
    : Array.isArray(v)
      ? 'an array'
      : typeof v === 'object'
        ? 'an object'
        : typeof v === 'number'
          ? 'a number'
          : typeof v === 'boolean'
            ? 'true or false'
            : `a ${typeof v}`;

/** zod's own English messages ("Invalid option: expected one of …", "Too small: …"): replaced below, never passed on. */
const ZOD_DEFAULT = /^(Invalid|Too (small|big)|Expected|Unrecognized)\b/;

const EXPECTED: Record<string, string> = {
  string: 'text (a JSON string)',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a JSON object',
  array: 'a list (a JSON array)',
};

/** The plain sentence for an issue whose message is zod's default. */
function plainMessage(zi: z.core.$ZodIssue, value: unknown): string {
  switch (zi.code) {
    case 'invalid_type':
      return `must be ${EXPECTED[zi.expected] ?? zi.expected}, not ${kindOf(value)}`;
    case 'invalid_value':
      return `must be one of ${zi.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
    case 'too_big': {
      const bound = zi.code === 'too_small' ? `at least ${String(zi.minimum)}` : `at most ${String(zi.maximum)}`;
      if (zi.origin === 'string') return zi.code === 'too_small' && Number(zi.minimum) === 1 ? 'must not be empty' : `must be ${bound} characters long`;
      if (zi.origin === 'array' || zi.origin === 'set') return `must have ${bound} entries`;
      return `must be ${bound}`;
    }
    case 'invalid_format':
      return 'is not in the expected format';
    case 'invalid_union':
      return 'does not match any of the forms this field takes';
    default:
      return 'is not valid';
  }
}

function describe(input: unknown, zi: z.core.$ZodIssue): OperationOutcomeIssue[] {
  // Unknown fields: one issue per field, pointing at the field itself.
  if (zi.code === 'unrecognized_keys') {
    return zi.keys.map((k) => {
      const path = [...zi.path, k];
      const where = owner(input, path);
      const isAnswer = zi.path[zi.path.length - 1] === 'answers';
      const msg = isAnswer
        ? `${where ?? 'assessment'}: item "${k}" does not exist in this instrument`
        : `${fieldName(path)}: unknown field (the episode format does not have it)`;
      return issue('structure', msg, jsonPointer(path));
    });
  }
  const where = owner(input, zi.path);
  const value = valueAt(input, zi.path);
  let message = zi.message;
  if (value === undefined) message = 'is required';
  else if (zi.path.length === 0 && zi.code === 'invalid_type') return [issue('structure', `an episode must be a JSON object, not ${kindOf(value)}`, '')];
  else if (ZOD_DEFAULT.test(message)) message = plainMessage(zi, value);
  const last = zi.path[zi.path.length - 1];
  const isAnswer = zi.path[zi.path.length - 2] === 'answers';
  const subject = isAnswer ? `item ${String(last)}` : fieldName(zi.path);
  const text = message.startsWith(subject.split('.').pop() ?? '\u0000') ? message : `${subject} ${message}`;
  const code = value === undefined ? 'required' : 'value';
  return [issue(code, where ? `${where}: ${text}` : text, jsonPointer(zi.path))];
}

export interface ParseOptions extends EpisodeSchemaOptions {}

/**
 * Checks an episode against format 1.0. Returns the parsed episode, or throws an
 * OperationOutcomeError listing every problem at once, each with the JSON pointer of
 * its field in `expression`.
 */
export function parseEpisode(input: unknown, options: ParseOptions = {}): Episode {
  const allowSyntheticIds = options.allowSyntheticIds ?? true;
  // Without zod's generated fast path (built with `new Function` on an object schema's first
  // use): the Worker's runtime forbids eval, so Node now checks the same way, and a fresh
  // process does not pay ~10 ms to generate and compile that code before its first episode.
  const result = schemaFor(allowSyntheticIds).safeParse(input, { jitless: true });
  if (result.success) return result.data;
  const zodIssues: z.core.$ZodIssue[] = [...result.error.issues];
  const structural = zodIssues.map((i) => jsonPointer(i.path));
  // zod skips the episode's refinement when a field is broken: run the cross-field rules on
  // the fields that are valid, so the answer lists every problem at once (duplicates of
  // issues the refinement did report are dropped below).
  crossFieldRules(
    validFields(input),
    {
      addIssue: ({ path, message }) => {
        // A field that is broken itself (reported above) is not also "missing" or "inconsistent".
        const at = jsonPointer(path);
        if (structural.some((p) => p === at || p.startsWith(`${at}/`))) return;
        zodIssues.push({ code: 'custom', path, message, input: undefined } as z.core.$ZodIssue);
      },
    },
    { allowSyntheticIds },
  );
  const seen = new Set<string>();
  const issues = zodIssues
    .flatMap((zi) => describe(input, zi))
    .filter((i) => {
      const key = `${i.expression?.[0]}|${i.details?.text}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  throw new OperationOutcomeError(outcome(issues), 400);
}
