/**
 * The published description of episode format 1.0 (docs/): the committed files are what
 * scripts/build-format.ts builds from the zod schemas, and the JSON Schema, checked by ajv (an
 * implementation independent of zod), agrees with the bridge on the examples and on structural
 * errors. Where it cannot (check digits, calendar dates, cross-field rules), the reference page
 * says so, and the cases below show the bridge refusing what the schema lets through.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parseEpisode } from '../../src/domain/parse.ts';
import { isOperationOutcomeError } from '../../src/fhir/outcome.ts';
import { completed, EXAMPLES_DIR, example, exampleNames, plannedMinimal } from '../fixtures/examples.ts';

const root = resolve(import.meta.dirname, '../..');
const schema = JSON.parse(readFileSync(join(root, 'docs/episode-format-1.0.schema.json'), 'utf8'));
const page = readFileSync(join(root, 'docs/episode-format.md'), 'utf8');

const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);
const validate = ajv.compile(schema);
const schemaAccepts = (episode: unknown) => validate(episode) === true;
const bridgeAccepts = (episode: unknown) => {
  try {
    parseEpisode(episode);
    return true;
  } catch (e) {
    if (isOperationOutcomeError(e)) return false;
    throw e;
  }
};

describe('docs/episode-format-1.0.schema.json and docs/episode-format.md', () => {
  it('are what npm run build:format builds from src/domain/episode.ts', () => {
    // Exit status 1, naming the stale file, when either differs.
    execFileSync(process.execPath, ['scripts/build-format.ts', '--check'], { cwd: root, stdio: 'pipe' });
  });

  it('is a JSON Schema 2020-12 that describes every field', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    const undescribed: string[] = [];
    const walk = (s: { properties?: Record<string, unknown>; items?: unknown; oneOf?: unknown[] }, path: string) => {
      for (const [name, p] of Object.entries(s.properties ?? {}) as [string, { description?: string }][]) {
        if (!/^\d+$/.test(name) && !p.description) undescribed.push(`${path}${name}`);
        walk(p as never, `${path}${name}.`);
      }
      if (s.items) walk(s.items as never, path.replace(/\.$/, '[].'));
      for (const v of s.oneOf ?? []) walk(v as never, path);
    };
    walk(schema, '');
    expect(undescribed).toEqual([]);
  });

  it.each(exampleNames())('ajv accepts the example %s', (name) => {
    const ok = schemaAccepts(example(name));
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('ajv accepts every line of examples/episodes.ndjson', () => {
    const lines = readFileSync(join(EXAMPLES_DIR, 'episodes.ndjson'), 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(schemaAccepts(JSON.parse(line))).toBe(true);
  });

  // Both refuse: the schema carries the structure of the zod schemas.
  const structural: [string, (e: ReturnType<typeof completed>) => void][] = [
    ['an unknown field', (e) => (e.colour = 'blue')],
    ['an unknown field in a session', (e) => (e.sessions[0].mood = 'good')],
    ['a missing required field', (e) => delete e.parent.birthDate],
    ['a status outside its codes', (e) => (e.status = 'paused')],
    ['schemaVersion 2.0', (e) => (e.schemaVersion = '2.0')],
    ['an EPDS answer out of range', (e) => (e.assessments[0].answers['3'] = 4)],
    ['an EPDS item that does not exist', (e) => (e.assessments[0].answers['11'] = 0)],
    ['a PDI-RF answered by the parent', (e) => (e.assessments.find((a: { instrument: string }) => a.instrument === 'PDI-RF').respondent = 'parent')],
    ['a national id of 10 digits', (e) => (e.parent.nationalId = '0123456789')],
    ['no infants', (e) => (e.infants = [])],
    ['a clip length of 0 seconds', (e) => (e.sessions.find((s: { clips?: unknown[] }) => s.clips).clips[0].seconds = 0)],
  ];
  it.each(structural)('both ajv and the bridge refuse %s', (_name, change) => {
    const e = completed();
    change(e);
    expect([schemaAccepts(e), bridgeAccepts(e)]).toEqual([false, false]);
  });

  // What the page says JSON Schema cannot express: the schema accepts it, the bridge does not.
  const beyond: [string, string, (e: ReturnType<typeof completed>) => void][] = [
    [
      'a national id whose check digits do not match',
      'mod-11 check digits',
      (e) => (e.parent.nationalId = e.parent.nationalId.slice(0, 10) + String((Number(e.parent.nationalId[10]) + 1) % 10)),
    ],
    [
      'an organisation number whose check digit does not match',
      'organisation number one mod-11 check digit',
      (e) => (e.clinic.orgNumber = e.clinic.orgNumber.slice(0, 8) + String((Number(e.clinic.orgNumber[8]) + 1) % 10)),
    ],
    ['a name that is only spaces', 'must not be empty once trimmed', (e) => (e.parent.family = '   ')],
    ['a finished episode without closing', '`closing` are required when it is finished', (e) => delete e.closing],
    ['a period that ends before it starts', '`period.end` is not before `period.start`', (e) => (e.period.end = '2025-01-01')],
    ['a sessionId used twice', '`sessionId`, `assessmentId`, `goalId` and `clipId` are unique', (e) => (e.sessions[1].sessionId = e.sessions[0].sessionId)],
    [
      'a review of a clip that does not exist',
      'naming\n    clips of filming sessions',
      (e) => (e.sessions.find((s: { kind: string; reviewsClips?: string[] }) => s.reviewsClips).reviewsClips = ['no-such-clip']),
    ],
    [
      'a consent without primaryTreatment',
      'a consent (its recipient is the primary treatment team) needs `primaryTreatment`',
      (e) => delete e.primaryTreatment,
    ],
  ];
  it.each(beyond)('the schema accepts %s, the bridge refuses it, and the page says so', (_name, saying, change) => {
    const e = completed();
    change(e);
    expect([schemaAccepts(e), bridgeAccepts(e)]).toEqual([true, false]);
    expect(page).toContain(saying);
  });

  it('a date that is not in the calendar: refused by the schema only where its formats are asserted, as the page says', () => {
    const e = completed();
    e.referral.receivedOn = '2026-02-30';
    const annotating = new Ajv2020({ strict: true, validateFormats: false }).compile(schema);
    expect([annotating(e), schemaAccepts(e), bridgeAccepts(e)]).toEqual([true, false, false]);
    expect(page).toContain('`2026-02-30` matches the date pattern but is not a date');
  });

  it('an active episode without period: the cross-field rule the page lists', () => {
    const e = plannedMinimal();
    e.status = 'active';
    expect([schemaAccepts(e), bridgeAccepts(e)]).toEqual([true, false]);
    expect(page).toContain('`period` and `therapist` are required unless `status` is planned');
  });
});
