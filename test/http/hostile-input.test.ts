/**
 * Hostile bodies and queries against the Worker in workerd: each is refused early with a
 * 400 OperationOutcome that names the position or field and carries nothing of the body;
 * answers are capped; every /v1 answer is no-store. (Route by route in Node:
 * test/unit/hostile-input.test.ts.)
 */
import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import completed from '../../examples/completed-mother.episode.json';
import planned from '../../examples/planned-minimal.episode.json';

type Outcome = { resourceType: string; issue: { severity: string; code: string; details?: { text?: string }; expression?: string[] }[] };

const send = (method: string, path: string, body: BodyInit, type = 'application/json') =>
  SELF.fetch(`http://bridge${path}`, { method, headers: { 'content-type': type }, body });
const putEpisode = (body: BodyInit) => send('PUT', `/v1/episodes/${completed.episodeId}`, body);

/** The status, the OperationOutcome, and the raw text of an answer; checks it is no-store. */
async function answer(r: Response): Promise<{ status: number; o: Outcome; text: string }> {
  expect(r.headers.get('cache-control')).toBe('no-store');
  const text = await r.text();
  return { status: r.status, o: JSON.parse(text) as Outcome, text };
}

describe('hostile bodies (inside workerd)', () => {
  it('refuses a second parent.nationalId (duplicate key) with 400 at /parent/nationalId', async () => {
    const body = JSON.stringify(completed).replace('"nationalId":"02839440092"', '"nationalId":"02839440092","nationalId":"11902550331"');
    expect(body.includes('"nationalId":"02839440092","nationalId":"11902550331","given"')).toBe(true);
    for (const r of [await putEpisode(body), await send('POST', '/v1/episodes/$map', body)]) {
      const { status, o } = await answer(r);
      expect(status).toBe(400);
      expect(o.resourceType).toBe('OperationOutcome');
      expect(o.issue[0]?.expression).toEqual(['/parent/nationalId']);
      expect(o.issue[0]?.details?.text).toMatch(/duplicate key/);
    }
  });

  it('answers 10,000-deep nesting with 400, not 500, on $validate and PUT', async () => {
    const deep = '{"resourceType":"Patient","extension":' + '['.repeat(10_000) + ']'.repeat(10_000) + '}';
    for (const r of [await send('POST', '/v1/$validate', deep), await putEpisode(deep)]) {
      const { status, o } = await answer(r);
      expect(status).toBe(400);
      expect(o.issue[0]).toMatchObject({ code: 'too-costly' });
      expect(o.issue[0]?.details?.text).toMatch(/nesting is deeper than 64 levels at line 1/);
    }
  });

  it('refuses __proto__, constructor and prototype keys with 400', async () => {
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      const { status, o } = await answer(await send('POST', '/v1/$validate', `{"resourceType":"Patient","${key}":{"id":"x"}}`));
      expect(status).toBe(400);
      expect(o.issue[0]?.expression).toEqual([`/${key}`]);
    }
    // toString is no prototype key for the parser, but no FHIR element either.
    const { status, o } = await answer(await send('POST', '/v1/$validate', '{"resourceType":"Patient","toString":"x"}'));
    expect(status).toBe(200);
    expect(o.issue.map((i) => [i.severity, i.expression?.[0]])).toEqual([['error', 'Patient.toString']]);
  });

  it('refuses invalid UTF-8 with 400 naming the byte offset', async () => {
    const bytes = new TextEncoder().encode(JSON.stringify(planned));
    bytes[40] = 0xfe;
    const { status, o } = await answer(await send('POST', '/v1/episodes/$map', bytes));
    expect(status).toBe(400);
    expect(o.issue[0]?.details?.text).toBe('request body is not valid UTF-8: invalid byte sequence at byte offset 40');
  });

  it.each([
    ['NUL', '\u0000'],
    ['ESC', '\u001b'],
    ['a lone surrogate', '\ud83d'],
  ])('refuses %s in a name with 400 naming the field, and stores nothing', async (_name, ch) => {
    const e = structuredClone(completed);
    e.parent.given = [`Ka${ch}ri`];
    const { status, o } = await answer(await putEpisode(JSON.stringify(e)));
    expect(status).toBe(400);
    expect(o.issue.map((i) => i.expression?.[0])).toEqual(['/parent/given/0']);
    expect(o.issue[0]?.details?.text).toMatch(/^parent\.given\[0\] contains (the control character|a lone surrogate)/);
  });

  it('answers a malformed body with 400 that carries none of it', async () => {
    const body = '{"parent":{"family":"Nordmann","phone":"+47 400 00 000","nationalId":"02839440092",}}';
    const { status, o, text } = await answer(await putEpisode(body));
    expect(status).toBe(400);
    expect(o.issue[0]?.details?.text).toMatch(/^request body is not valid JSON: expected a string key at line 1, column \d+ \(offset \d+\)/);
    for (const s of ['Nordmann', '+47 400 00 000', '02839440092']) expect(text).not.toContain(s);
  });

  it('caps a huge $validate answer at 100 issues and says how many more', async () => {
    const patient = { resourceType: 'Patient', telecom: Array.from({ length: 2000 }, (_, i) => ({ system: 'phone', value: String(i), bogus: true })) };
    const { status, o, text } = await answer(await send('POST', '/v1/$validate', JSON.stringify(patient)));
    expect(status).toBe(200);
    expect(o.issue).toHaveLength(101);
    expect(o.issue[100]?.details?.text).toMatch(/^1900 more issues/);
    expect(text.length).toBeLessThan(64 * 1024);
  });
});

describe('query parameters (inside workerd)', () => {
  it.each(['limit=2.5', 'limit=-1', 'limit=abc', 'status=unknown'])('answers ?%s with 400 naming the parameter', async (q) => {
    const { status, o } = await answer(await SELF.fetch(`http://bridge/v1/jobs?${q}`));
    expect(status).toBe(400);
    expect(o.issue[0]?.details?.text).toContain(`query parameter ${q.split('=')[0]}`);
  });
});

describe('Cache-Control (inside workerd)', () => {
  it('is no-store on /v1 answers, and absent on public ones', async () => {
    const mapped = await send('POST', '/v1/episodes/$map', JSON.stringify(planned));
    expect(mapped.status).toBe(200);
    expect(mapped.headers.get('cache-control')).toBe('no-store');
    expect((await SELF.fetch('http://bridge/v1/jobs/no-such-job')).headers.get('cache-control')).toBe('no-store');
    expect((await SELF.fetch('http://bridge/healthz')).headers.get('cache-control')).toBeNull();
  });
});
