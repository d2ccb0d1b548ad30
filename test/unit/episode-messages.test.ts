/**
 * Refusals of episodes say what is wrong in plain words, never zod's own English
 * ("Invalid option: expected one of …", "Invalid input: expected object, received array"):
 * through parseEpisode, and through each line of `$import`.
 */
import type { OperationOutcome } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { parseEpisode } from '../../src/domain/parse.ts';
import { isOperationOutcomeError } from '../../src/fhir/outcome.ts';
import { createApp } from '../../src/http/app.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService } from '../../src/sync/service.ts';
import { completed } from '../fixtures/examples.ts';

/** zod's default messages start so; none may reach a caller. */
const ZOD_WORDING = /Invalid (input|option|type|value)|expected .*received|Too (small|big)|expected one of/i;

function refusal(input: unknown): { code: string; text: string; at: string | undefined }[] {
  try {
    parseEpisode(input);
  } catch (e) {
    if (!isOperationOutcomeError(e)) throw e;
    return e.outcome.issue.map((i) => ({ code: i.code, text: i.details?.text ?? '', at: i.expression?.[0] }));
  }
  throw new Error('accepted');
}

describe('episode refusals in plain words', () => {
  it.each([
    [[], 'an array'],
    [5, 'a number'],
    ['episode', 'a string'],
    [null, 'null'],
  ])('%j: one issue saying an episode must be a JSON object', (input, kind) => {
    expect(refusal(input)).toEqual([{ code: 'structure', text: `an episode must be a JSON object, not ${kind}`, at: '' }]);
  });

  it('{}: each required field named as required', () => {
    const issues = refusal({});
    expect(issues.map((i) => i.text)).toEqual(
      ['schemaVersion', 'episodeId', 'status', 'method', 'clinic', 'referral', 'parent', 'infants'].map((f) => `${f} is required`),
    );
    expect(issues.every((i) => i.code === 'required')).toBe(true);
  });

  it('a value of the wrong kind is not called missing, and codes are listed plainly', () => {
    const e = completed();
    e.episodeId = 5;
    e.status = 'paused';
    e.sessions = {};
    e.parent.gender = 'f';
    e.referral.reason = '';
    e.assessments[0].answers['1'] = 'two';
    const byField = Object.fromEntries(refusal(e).map((i) => [i.at, i.text]));
    expect(byField).toMatchObject({
      '/episodeId': 'episodeId must be text (a JSON string), not a number',
      '/status': 'status must be one of "planned", "active", "finished", "cancelled"',
      '/sessions': 'sessions must be a list (a JSON array), not an object',
      '/parent/gender': 'parent.gender must be one of "female", "male", "other", "unknown"',
      '/referral/reason': 'referral.reason must not be empty',
      '/assessments/0/answers/1': 'assessment A1 (EPDS): item 1 must be a number',
    });
    for (const text of Object.values(byField)) expect(text).not.toMatch(ZOD_WORDING);
  });

  it('$import: a line that is an array, a number, a string or {} gets a plain OperationOutcome', async () => {
    const service = createDeliveryService(new MemoryStore(), { send: async () => undefined });
    const app = createApp({ allowSyntheticIds: true, delivery: () => service });
    const body = ['[]', '5', '"x"', '{}', JSON.stringify({ ...completed(), status: 'paused' })].join('\n');
    const r = await app.request('/v1/episodes/$import', { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
    expect(r.status).toBe(200);
    const lines = (await r.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { line: number; status: number; outcome: OperationOutcome });
    expect(lines.map((l) => [l.line, l.status])).toEqual([
      [1, 400],
      [2, 400],
      [3, 400],
      [4, 400],
      [5, 400],
    ]);
    const texts = lines.map((l) => l.outcome.issue.map((i) => i.details?.text ?? ''));
    expect(texts[0]).toEqual(['an episode must be a JSON object, not an array']);
    expect(texts[1]).toEqual(['an episode must be a JSON object, not a number']);
    expect(texts[2]).toEqual(['an episode must be a JSON object, not a string']);
    expect(texts[3]).toContain('schemaVersion is required');
    expect(texts[4]).toEqual(['status must be one of "planned", "active", "finished", "cancelled"']);
    for (const t of texts.flat()) expect(t).not.toMatch(ZOD_WORDING);
  });
});
