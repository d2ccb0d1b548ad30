import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { z } from 'zod';
import { OperationOutcomeError, issue, outcome } from '../fhir/outcome.ts';
import { type Episode, type EpisodeSchemaOptions, crossFieldRules, episodeSchema, validFields } from './episode.ts';

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
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(episode)';
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
  let message = zi.message;
  if (zi.code === 'invalid_type' && zi.input === undefined) message = 'is required';
  const last = zi.path[zi.path.length - 1];
  const isAnswer = zi.path[zi.path.length - 2] === 'answers';
  const subject = isAnswer ? `item ${String(last)}` : fieldName(zi.path);
  const text = message.startsWith(subject.split('.').pop() ?? '\u0000') ? message : `${subject} ${message}`;
  const code = zi.code === 'invalid_type' && zi.input === undefined ? 'required' : 'value';
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
  const result = schemaFor(allowSyntheticIds).safeParse(input);
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
