/**
 * Hostile bodies and queries through the real app (createApp over MemoryStore): refused
 * early with a 400 OperationOutcome that names where, never what; answers of bounded size;
 * no unknown element written; no-store on everything that can carry patient data.
 * The same cases inside workerd: test/http/hostile-input.test.ts.
 */
import type { Bundle, OperationOutcome, QuestionnaireResponse } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { createInboundAuthenticator } from '../../src/auth/inbound.ts';
import { DEFAULT_TENANT } from '../../src/auth/tenants.ts';
import { loadConfig } from '../../src/config.ts';
import { parseEpisode } from '../../src/domain/parse.ts';
import { MAX_ISSUES, OperationOutcomeError } from '../../src/fhir/outcome.ts';
import { validateFhir } from '../../src/fhir/validate.ts';
import { createApp } from '../../src/http/app.ts';
import { MAX_IMPORT_DETAIL_BYTES, MAX_IMPORT_LINES } from '../../src/http/delivery.ts';
import { MAX_JSON_DEPTH } from '../../src/http/json.ts';
import { mapEpisode } from '../../src/index.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService } from '../../src/sync/service.ts';
import { completed, example, exampleNames, plannedMinimal } from '../fixtures/examples.ts';

function bridge() {
  const store = new MemoryStore();
  const service = createDeliveryService(store, { send: async () => undefined });
  return { app: createApp({ allowSyntheticIds: true, delivery: () => service }), store };
}
const { app, store } = bridge();

const JSON_TYPE = { 'content-type': 'application/json' };
const post = async (path: string, body: BodyInit, headers: Record<string, string> = JSON_TYPE): Promise<Response> =>
  app.request(path, { method: 'POST', headers, body });
const put = async (id: string, body: BodyInit): Promise<Response> => app.request(`/v1/episodes/${id}`, { method: 'PUT', headers: JSON_TYPE, body });
const outcomeOf = async (r: Response) => (await r.json()) as OperationOutcome;
const texts = (o: OperationOutcome) => o.issue.map((i) => i.details?.text ?? '');

/** Every route that takes a JSON body, with a body that is valid there. */
const ROUTES: [string, (body: BodyInit) => Promise<Response>][] = [
  ['PUT /v1/episodes/{id}', (b) => put('VG-2026-0042', b)],
  ['POST /v1/episodes/$map', (b) => post('/v1/episodes/$map', b)],
  ['POST /v1/$validate', (b) => post('/v1/$validate', b)],
  ['POST /v1/QuestionnaireResponse/$extract', (b) => post('/v1/QuestionnaireResponse/$extract', b)],
];

const jobCount = async () => (await store.listJobs({ tenant: DEFAULT_TENANT, limit: 1000 })).length;

describe('bodies the strict parser refuses, on every route', () => {
  const secondNationalId = JSON.stringify(completed()).replace('"nationalId":"02839440092"', '"nationalId":"02839440092","nationalId":"11902550331"');

  it.each(ROUTES)('%s: a duplicate key (a second parent.nationalId) is 400 naming its pointer', async (_name, send) => {
    expect(secondNationalId).toContain('"nationalId":"02839440092","nationalId":"11902550331"');
    const before = await jobCount();
    const r = await send(secondNationalId);
    expect(r.status).toBe(400);
    const o = await outcomeOf(r);
    expect(o.issue[0]?.code).toBe('structure');
    expect(o.issue[0]?.expression).toEqual(['/parent/nationalId']);
    expect(texts(o)[0]).toMatch(/duplicate key .* at line 1, column \d+ \(offset \d+\), JSON pointer \/parent\/nationalId/);
    expect(await jobCount()).toBe(before);
  });

  it.each(ROUTES)('%s: 10,000-deep nesting is 400, not 500', async (_name, send) => {
    const r = await send('{"resourceType":"Patient","extension":' + '['.repeat(10_000) + ']'.repeat(10_000) + '}');
    expect(r.status).toBe(400);
    const o = await outcomeOf(r);
    expect(o.issue[0]?.code).toBe('too-costly');
    expect(texts(o)[0]).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
  });

  it.each(ROUTES.flatMap(([name, send]) => ['__proto__', 'constructor', 'prototype'].map((key) => [name, key, send] as const)))(
    '%s: a %s key is 400',
    async (_name, key, send) => {
      const r = await send(`{"resourceType":"Patient","name":[{"${key}":{"family":"x"}}]}`);
      expect(r.status).toBe(400);
      const o = await outcomeOf(r);
      expect(o.issue[0]?.expression).toEqual([`/name/0/${key}`]);
    },
  );

  it.each(ROUTES)('%s: invalid UTF-8 is 400 naming the byte offset', async (_name, send) => {
    const bytes = new TextEncoder().encode('{"family":"Nordmann"}');
    bytes[12] = 0xff;
    const r = await send(bytes);
    expect(r.status).toBe(400);
    expect(texts(await outcomeOf(r))).toEqual(['request body is not valid UTF-8: invalid byte sequence at byte offset 12']);
  });

  it.each(ROUTES)('%s: a malformed body is 400 whose answer quotes none of it', async (_name, send) => {
    const body = '{"parent": {"family": "Nordmann", "phone": "+47 400 00 000", "nationalId": "02839440092" "given": ["Kari"]}}';
    const r = await send(body);
    expect(r.status).toBe(400);
    const text = await r.text();
    for (const s of ['Nordmann', '+47 400 00 000', '400 00 000', '02839440092', 'Kari']) expect(text).not.toContain(s);
    expect(JSON.parse(text).issue[0].details.text).toBe(
      "request body is not valid JSON: expected ',' or '}' at line 1, column 90 (offset 89), JSON pointer /parent",
    );
  });
});

describe('FHIR strings: control characters and lone surrogates are refused, naming the field', () => {
  const bad: [string, string][] = [
    ['NUL', '\u0000'],
    ['ESC', '\u001b'],
    ['a lone surrogate', '\ud800'],
    ['a reversed surrogate pair', '\udc00\ud800'],
  ];

  it.each(bad)('%s in a name: PUT and $map answer 400 at /parent/family, nothing stored', async (_name, ch) => {
    const e = completed();
    e.parent.family = `Nord${ch}mann`;
    const before = await jobCount();
    for (const r of [await put('VG-2026-0042', JSON.stringify(e)), await post('/v1/episodes/$map', JSON.stringify(e))]) {
      expect(r.status).toBe(400);
      const o = await outcomeOf(r);
      expect(o.issue.map((i) => i.expression?.[0])).toEqual(['/parent/family']);
      expect(texts(o)[0]).toMatch(/^parent\.family contains (the control character U\+00(00|1B)|a lone surrogate \(U\+D[8C]00\)) at character 5/);
      expect(texts(o)[0]).not.toContain('Nord');
    }
    expect(await jobCount()).toBe(before);
  });

  it('tab, CR and LF stay allowed in free text', () => {
    const e = completed();
    e.sessions[0].note = 'line one\r\n\tline two';
    expect(parseEpisode(e).sessions?.[0]?.note).toBe('line one\r\n\tline two');
  });

  it.each(exampleNames())('%s: every string field with a control character is refused at its own pointer', (name) => {
    const leaves: (string | number)[][] = [];
    const walk = (v: unknown, path: (string | number)[]) => {
      if (typeof v === 'string') leaves.push(path);
      else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    };
    walk(example(name), []);
    expect(leaves.length).toBeGreaterThan(10);
    for (const path of leaves) {
      for (const ch of ['\u001b', '\ud800']) {
        const e = example(name);
        const parent = path.slice(0, -1).reduce((o: Record<string | number, unknown>, k) => o[k] as Record<string | number, unknown>, e);
        const last = path[path.length - 1] as string | number;
        parent[last] = `${String(parent[last]).slice(0, 1)}${ch}${String(parent[last]).slice(1)}`;
        const pointer = '/' + path.join('/');
        let issues: string[] = [];
        try {
          parseEpisode(e);
        } catch (err) {
          expect(err).toBeInstanceOf(OperationOutcomeError);
          issues = (err as OperationOutcomeError).outcome.issue.map((i) => i.expression?.[0] ?? '');
        }
        expect(issues, `${pointer} with ${JSON.stringify(ch)}`).toContain(pointer);
      }
    }
  });

  it('$extract refuses such a string wherever it is, naming the element', async () => {
    const qr = rendererQr();
    qr.item![0]!.text = 'Q\u0007';
    const r = await post('/v1/QuestionnaireResponse/$extract', JSON.stringify(qr));
    expect(r.status).toBe(400);
    const o = await outcomeOf(r);
    expect(o.issue.map((i) => i.expression?.[0])).toEqual(['QuestionnaireResponse.item[0].text']);
    expect(texts(o)[0]).toMatch(/U\+0007/);
  });

  it('$validate reports them as errors, as it does element names of Object.prototype', async () => {
    const r = await post(
      '/v1/$validate',
      JSON.stringify({ resourceType: 'Patient', name: [{ family: 'A\u0000', given: ['\udfff'] }], toString: 'x', telecom: [{ hasOwnProperty: 1 }] }),
    );
    expect(r.status).toBe(200);
    const o = await outcomeOf(r);
    expect(o.issue.every((i) => i.severity === 'error')).toBe(true);
    expect(o.issue.map((i) => i.expression?.[0]).sort()).toEqual([
      'Patient.name[0].family',
      'Patient.name[0].given[0]',
      'Patient.telecom[0].hasOwnProperty',
      'Patient.toString',
    ]);
    for (const keys of [
      '{"resourceType":"Patient","__proto__":{"id":"x"}}',
      '{"resourceType":"Patient","constructor":"x"}',
      '{"resourceType":"Patient","valueOf":1}',
    ]) {
      expect(validateFhir(JSON.parse(keys)).issue[0]?.severity).toBe('error');
    }
  });
});

/** The completed example's EPDS response as a form renderer would send it. */
function rendererQr(): QuestionnaireResponse {
  const bundle = mapEpisode(completed()) as Bundle;
  const qr = bundle.entry?.map((e) => e.resource).find((r) => r?.resourceType === 'QuestionnaireResponse') as QuestionnaireResponse;
  return JSON.parse(JSON.stringify(qr).replace(/"reference":"urn:uuid:[^"]+"/g, '"reference":"Patient/p-1"')) as QuestionnaireResponse;
}

describe('unknown elements are never written', () => {
  it('$extract drops an unknown tenantId at the top and unknown keys inside', async () => {
    const qr = rendererQr() as QuestionnaireResponse & Record<string, unknown>;
    qr.tenantId = 'tenant-other-clinic';
    (qr.subject as unknown as Record<string, unknown>).tenantId = 'tenant-other-clinic';
    (qr.item![0] as unknown as Record<string, unknown>).tenantId = 'tenant-other-clinic';
    (qr.item![0]!.answer![0] as unknown as Record<string, unknown>).tenantId = 'tenant-other-clinic';
    qr.meta = { ...qr.meta, tenantId: 'tenant-other-clinic' } as QuestionnaireResponse['meta'];
    const r = await post('/v1/QuestionnaireResponse/$extract', JSON.stringify(qr));
    const text = await r.text();
    expect(r.status, text.slice(0, 500)).toBe(200);
    expect(JSON.parse(text).resourceType).toMatch(/^(Bundle|Parameters)$/);
    expect(text).not.toContain('tenantId');
    expect(text).not.toContain('tenant-other-clinic');
  });

  it('$map refuses an unknown field rather than dropping it silently', async () => {
    const r = await post('/v1/episodes/$map', JSON.stringify({ ...plannedMinimal(), tenantId: 'tenant-other-clinic' }));
    expect(r.status).toBe(400);
    expect((await outcomeOf(r)).issue.map((i) => i.expression?.[0])).toEqual(['/tenantId']);
  });
});

describe('answers of bounded size', () => {
  it(`$validate lists at most ${MAX_ISSUES} issues, then says how many more`, async () => {
    // Every telecom with an element R4 does not define: one issue each.
    const patient = { resourceType: 'Patient', telecom: Array.from({ length: 3000 }, (_, i) => ({ system: 'phone', value: String(i), bogus: i })) };
    const body = JSON.stringify(patient);
    const r = await post('/v1/$validate', body);
    expect(r.status).toBe(200);
    const text = await r.text();
    const o = JSON.parse(text) as OperationOutcome;
    expect(o.issue).toHaveLength(MAX_ISSUES + 1);
    expect(o.issue[MAX_ISSUES]).toMatchObject({ severity: 'error', code: 'too-costly' });
    expect(texts(o)[MAX_ISSUES]).toMatch(/^2900 more issues \(2900 of them errors\) not listed: an answer lists at most 100$/);
    expect(text.length).toBeLessThan(64 * 1024);
  });

  it('$import caps issues per line and the answer as a whole', async () => {
    // Each line breaks many rules at once.
    const junk = JSON.stringify({ schemaVersion: '1.0', ...Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`unknown${i}`, i])) });
    const body = Array.from({ length: 2000 }, () => junk).join('\n');
    const r = await post('/v1/episodes/$import', body, { 'content-type': 'application/x-ndjson' });
    expect(r.status).toBe(200);
    const text = await r.text();
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { line: number; status: number; outcome: OperationOutcome });
    expect(lines).toHaveLength(2000);
    expect(r.headers.get('x-rejected')).toBe('2000');
    expect(Math.max(...lines.map((l) => l.outcome.issue.length))).toBe(21);
    expect(lines[0]?.outcome.issue[20]?.details?.text).toMatch(/more issues .* not listed/);
    const last = lines[lines.length - 1]?.outcome;
    expect(last?.issue).toHaveLength(1);
    expect(last?.issue[0]?.details?.text).toMatch(/issues on this line not listed/);
    expect(text.length).toBeLessThan(MAX_IMPORT_DETAIL_BYTES + 2000 * 400);
  });

  it('$import parses every line strictly and refuses that line only', async () => {
    const good = (id: string) => JSON.stringify({ ...plannedMinimal(), episodeId: id });
    const enc = new TextEncoder();
    const badUtf8 = enc.encode(good('VG-IMP-3'));
    badUtf8[20] = 0xc0;
    const parts = [
      enc.encode(good('VG-IMP-1') + '\n'),
      enc.encode(good('VG-IMP-2').replace('"episodeId":"VG-IMP-2"', '"episodeId":"VG-IMP-2","episodeId":"VG-IMP-X"') + '\r\n'),
      badUtf8,
      enc.encode('\n' + '['.repeat(10_000) + '\n\n{"__proto__":1}\n' + good('VG-IMP-4') + '\n'),
    ];
    const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (body.set(p, at), at + p.length), 0);
    const r = await post('/v1/episodes/$import', body, { 'content-type': 'application/x-ndjson' });
    expect(r.status).toBe(200);
    const lines = (await r.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { line: number; status: number; outcome?: OperationOutcome });
    expect(lines.map((l) => [l.line, l.status])).toEqual([
      [1, 202],
      [2, 400],
      [3, 400],
      [4, 400],
      [6, 400],
      [7, 202],
    ]);
    expect(lines[1]?.outcome?.issue[0]?.expression).toEqual(['/episodeId']);
    expect(lines[1]?.outcome?.issue[0]?.details?.text).toMatch(/^line 2 is refused: duplicate key/);
    expect(lines[2]?.outcome?.issue[0]?.details?.text).toBe('line 3 is not valid UTF-8: invalid byte sequence at byte offset 20');
    expect(lines[3]?.outcome?.issue[0]?.code).toBe('too-costly');
    expect(lines[4]?.outcome?.issue[0]?.expression).toEqual(['/__proto__']);
  });

  it(`$import refuses more than ${MAX_IMPORT_LINES} episodes in one request`, async () => {
    const r = await post('/v1/episodes/$import', Array.from({ length: MAX_IMPORT_LINES + 1 }, () => '{}').join('\n'), {
      'content-type': 'application/x-ndjson',
    });
    expect(r.status).toBe(413);
    expect(texts(await outcomeOf(r))[0]).toMatch(/at most 10000/);
  });
});

describe('query parameters', () => {
  it.each([
    ['limit=2.5', '/limit'],
    ['limit=-1', '/limit'],
    ['limit=abc', '/limit'],
    ['limit=0', '/limit'],
    ['limit=1001', '/limit'],
    ['limit=', '/limit'],
    ['limit=1e2', '/limit'],
    ['limit=10&limit=20', '/limit'],
    ['status=lost', '/status'],
    ['status=queued,', '/status'],
    ['status=QUEUED', '/status'],
  ])('GET /v1/jobs?%s is 400 naming the parameter', async (query, pointer) => {
    const r = await app.request(`/v1/jobs?${query}`);
    expect(r.status).toBe(400);
    const o = await outcomeOf(r);
    expect(o.issue[0]?.expression).toEqual([pointer]);
    expect(texts(o)[0]).toContain(`query parameter ${pointer.slice(1)}`);
  });

  it('takes good values', async () => {
    for (let i = 0; i < 3; i++) expect((await put(`VG-Q-${i}`, JSON.stringify({ ...plannedMinimal(), episodeId: `VG-Q-${i}` }))).status).toBe(202);
    const r = await app.request('/v1/jobs?limit=2&status=queued,retrying');
    expect(r.status).toBe(200);
    expect(((await r.json()) as { jobs: unknown[] }).jobs).toHaveLength(2);
  });
});

describe('job views', () => {
  it('show a stored server outcome without national ids or phone numbers, even one stored before redaction', async () => {
    const r = await put('VG-RED-1', JSON.stringify({ ...plannedMinimal(), episodeId: 'VG-RED-1' }));
    const { id } = (await r.json()) as { id: string };
    const job = (await store.getJob(id))!;
    job.status = 'failed';
    job.targets.clinic = {
      status: 'failed',
      httpStatus: 422,
      outcome: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics: 'Patient 02839440092 phone +47 400 00 000' }] },
    };
    await store.saveJob(job);
    for (const text of [await (await app.request(`/v1/jobs/${id}`)).text(), await (await app.request('/v1/jobs?status=failed')).text()]) {
      expect(text).toContain('Patient [redacted] phone [redacted]');
      expect(text).not.toContain('02839440092');
    }
  });
});

describe('Cache-Control', () => {
  it('is no-store on every /v1 answer, errors included', async () => {
    const answers = [
      await app.request('/v1/jobs'),
      await app.request('/v1/jobs/nope'),
      await app.request('/v1/jobs?limit=2.5'),
      await app.request('/v1/Questionnaire'),
      await app.request('/v1/nowhere'),
      await post('/v1/episodes/$map', JSON.stringify(plannedMinimal())),
      await post('/v1/episodes/$map', '{'),
      await post('/v1/episodes/$map', '{}', { 'content-type': 'text/plain' }),
      await put('VG-CC-1', JSON.stringify({ ...plannedMinimal(), episodeId: 'VG-CC-1' })),
      await post('/v1/$validate', JSON.stringify({ resourceType: 'Patient' })),
    ];
    for (const r of answers) expect(r.headers.get('cache-control'), `${r.status}`).toBe('no-store');
  });

  it('is no-store on a refusal by authentication too', async () => {
    const config = loadConfig({ API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: 'api-token-cache-7Gk2Lq9Xv4Nw8Rz1Tb6Yc3' });
    const guarded = createApp({ allowSyntheticIds: true, auth: createInboundAuthenticator(config.apiAuth) });
    const r = await guarded.request('/v1/jobs');
    expect(r.status).toBe(401);
    expect(r.headers.get('cache-control')).toBe('no-store');
  });

  it('leaves public answers cacheable', async () => {
    for (const path of ['/healthz', '/openapi.json', '/.well-known/jwks.json']) {
      const r = await app.request(path);
      expect(r.status).toBe(200);
      expect(r.headers.get('cache-control')).toBeNull();
    }
  });
});
