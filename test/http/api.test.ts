import { createExecutionContext, env, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import completed from '../../examples/completed-mother.episode.json';
import planned from '../../examples/planned-minimal.episode.json';
import worker from '../../src/worker.ts';
import { PRODUCTION_IDENTITY } from '../fixtures/production.ts';

const post = (path: string, body: string, type = 'application/json') =>
  SELF.fetch(`http://bridge${path}`, { method: 'POST', headers: { 'content-type': type }, body });

describe('POST /v1/episodes/$map (inside workerd)', () => {
  it('answers 200 with the transaction Bundle', async () => {
    const r = await post('/v1/episodes/$map', JSON.stringify(completed));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const b = (await r.json()) as { resourceType: string; type: string; entry: unknown[] };
    expect(b.resourceType).toBe('Bundle');
    expect(b.type).toBe('transaction');
    expect(b.entry).toHaveLength(69); // 65 resources + 4 session notes
  });

  it('answers byte-identical Bundles for the same episode', async () => {
    const a = await (await post('/v1/episodes/$map', JSON.stringify(planned), 'application/fhir+json; charset=utf-8')).text();
    const b = await (await post('/v1/episodes/$map', JSON.stringify(planned))).text();
    expect(a).toBe(b);
  });

  it('answers 400 with every problem and its JSON pointer', async () => {
    const bad = structuredClone(completed) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    bad.assessments[0].answers['3'] = 9;
    bad.sessions[0].start = 'yesterday';
    const r = await post('/v1/episodes/$map', JSON.stringify(bad));
    expect(r.status).toBe(400);
    const o = (await r.json()) as { resourceType: string; issue: { expression: string[] }[] };
    expect(o.resourceType).toBe('OperationOutcome');
    expect(o.issue.map((i) => i.expression[0]).sort()).toEqual(['/assessments/0/answers/3', '/sessions/0/start']);
  });

  it('answers 400 for a body that is not JSON', async () => {
    const r = await post('/v1/episodes/$map', '{"schemaVersion": ');
    expect(r.status).toBe(400);
    expect(((await r.json()) as { issue: { details: { text: string } }[] }).issue[0]?.details.text).toMatch(/not valid JSON/);
  });

  it('answers 415 as OperationOutcome for another content type', async () => {
    const r = await post('/v1/episodes/$map', JSON.stringify(planned), 'text/plain');
    expect(r.status).toBe(415);
    const o = (await r.json()) as { resourceType: string; issue: { code: string }[] };
    expect(o.resourceType).toBe('OperationOutcome');
    expect(o.issue[0]?.code).toBe('not-supported');
  });

  it('answers 413 as OperationOutcome for a body over 1 MiB', async () => {
    const big = JSON.stringify({ ...planned, padding: 'x'.repeat(1024 * 1024) });
    const r = await post('/v1/episodes/$map', big);
    expect(r.status).toBe(413);
    expect(((await r.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  it('refuses synthetic ids where the deployment says so, and only with authenticated callers', async () => {
    const token = 'test-api-token-0123456789abcdefghijkl';
    const production = {
      ...env,
      ...PRODUCTION_IDENTITY,
      API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
      API_TOKENS: token,
      DATA_ENCRYPTION_KEYS: JSON.stringify([{ kid: 'test-1', k: 'x'.repeat(43) }]),
    };
    const request = () =>
      new Request('http://bridge/v1/episodes/$map', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(planned),
      }) as Parameters<typeof worker.fetch>[0];
    const r = await worker.fetch(request(), production as typeof env, createExecutionContext());
    expect(r.status).toBe(400);
    const o = (await r.json()) as { issue: { expression: string[]; details: { text: string } }[] };
    expect(o.issue[0]?.expression).toEqual(['/parent/nationalId']);
    expect(o.issue[0]?.details.text).toMatch(/synthetic/);

    // An open API is refused outright where real national ids are accepted.
    const open = await worker.fetch(request(), { ...production, API_AUTH: '{"type":"none"}' } as typeof env, createExecutionContext());
    expect(open.status).toBe(500);
    const problem = (await open.json()) as { issue: { expression: string[] }[] };
    expect(problem.issue.map((i) => i.expression[0])).toEqual(['API_AUTH']);
    expect(JSON.stringify(problem)).not.toContain(token);
  });
});

describe('POST /v1/$validate (inside workerd)', () => {
  it('validates a mapped Bundle against R4 and the profiles', async () => {
    const bundle = await (await post('/v1/episodes/$map', JSON.stringify(completed))).text();
    const r = await post('/v1/$validate', bundle, 'application/fhir+json');
    expect(r.status).toBe(200);
    const o = (await r.json()) as { issue: { severity: string }[] };
    expect(o.issue.filter((i) => i.severity === 'error')).toEqual([]);
  });

  it('reports errors with the FHIR path', async () => {
    const r = await post('/v1/$validate', JSON.stringify({ resourceType: 'Patient', birthDate: 'soon', colour: 'blue' }), 'application/fhir+json');
    expect(r.status).toBe(200);
    const o = (await r.json()) as { issue: { severity: string; expression?: string[] }[] };
    const errors = o.issue.filter((i) => i.severity === 'error');
    expect(errors.length).toBeGreaterThanOrEqual(2);
    const where = errors.flatMap((i) => i.expression ?? []).join(' ');
    expect(where).toContain('Patient.birthDate');
    expect(where).toContain('Patient.colour');
  });

  it("answers a defective mapped Bundle with the reference validator's OperationOutcome, to the letter", async () => {
    // The generated validators hand it over; the Worker loads the reference on demand.
    const bundle = JSON.parse(await (await post('/v1/episodes/$map', JSON.stringify(completed))).text());
    const org = bundle.entry.find((e: { resource: { resourceType: string } }) => e.resource.resourceType === 'Organization');
    org.resource.active = 'yes';
    const r = await post('/v1/$validate', JSON.stringify(bundle), 'application/fhir+json');
    expect(r.status).toBe(200);
    const { validateFhir } = await import('../../src/fhir/validate.ts');
    const expected = validateFhir(structuredClone(bundle));
    expect(expected.issue.some((i) => i.severity === 'error')).toBe(true);
    expect(await r.json()).toEqual(expected);
  });

  it('answers 400 for JSON that is not a FHIR resource', async () => {
    const r = await post('/v1/$validate', JSON.stringify({ hello: 'world' }), 'application/fhir+json');
    expect(r.status).toBe(400);
  });
});

describe('service endpoints', () => {
  it('GET /healthz', async () => {
    const r = await SELF.fetch('http://bridge/healthz');
    expect(r.status).toBe(200);
  });

  it('GET /openapi.json describes the routes with the episode schema from zod', async () => {
    const r = await SELF.fetch('http://bridge/openapi.json');
    const doc = (await r.json()) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: { Episode: { properties: Record<string, unknown>; additionalProperties: unknown } } };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/episodes/$map', '/v1/$validate', '/healthz']));
    expect(Object.keys(doc.components.schemas.Episode.properties)).toEqual(expect.arrayContaining(['schemaVersion', 'episodeId', 'assessments', 'consent']));
    expect(doc.components.schemas.Episode.additionalProperties).toBe(false);
  });

  it('GET /docs is a readable page', async () => {
    const r = await SELF.fetch('http://bridge/docs');
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    expect(await r.text()).toContain('POST /v1/episodes/$map');
  });

  it('unknown routes answer 404 as OperationOutcome', async () => {
    const r = await SELF.fetch('http://bridge/v1/nothing');
    expect(r.status).toBe(404);
    expect(((await r.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });
});

describe('Questionnaires and SDC extraction (inside workerd)', () => {
  it('GET /v1/Questionnaire lists the published Questionnaires with stable canonical URLs', async () => {
    const r = await SELF.fetch('http://bridge/v1/Questionnaire');
    expect(r.status).toBe(200);
    const b = (await r.json()) as { type: string; entry: { resource: { id: string; url: string; version: string } }[] };
    expect(b.type).toBe('searchset');
    expect(b.entry.map((e) => e.resource.id).sort()).toEqual(['epds', 'gad-7', 'marte-meo-session-review', 'pdi-rf', 'phq-9', 'prfq']);
    for (const e of b.entry) {
      expect(e.resource.url).toBe(`https://imh-bridge.example.no/fhir/Questionnaire/${e.resource.id}`);
      expect(e.resource.version).toBe('1.0.0');
    }
  });

  it('GET /v1/Questionnaire/{id} reads one, 404 for an unknown one', async () => {
    const q = (await (await SELF.fetch('http://bridge/v1/Questionnaire/phq-9')).json()) as { resourceType: string; code: { code: string }[] };
    expect(q.resourceType).toBe('Questionnaire');
    expect(q.code[0]?.code).toBe('44249-1');
    expect((await SELF.fetch('http://bridge/v1/Questionnaire/bdi-ii')).status).toBe(404);
  });

  it('POST /v1/QuestionnaireResponse/$extract returns the same scores the episode path writes', async () => {
    const bundle = (await (await post('/v1/episodes/$map', JSON.stringify(completed))).json()) as {
      entry: { resource: { resourceType: string; identifier?: unknown } }[];
    };
    const qr = bundle.entry.find((e) => e.resource.resourceType === 'QuestionnaireResponse')?.resource;
    const r = await post('/v1/QuestionnaireResponse/$extract', JSON.stringify(qr), 'application/fhir+json');
    expect(r.status).toBe(200);
    const extracted = (await r.json()) as { entry: unknown[] };
    const obs = extracted.entry.filter((e) => (e as { resource: { resourceType: string } }).resource.resourceType === 'Observation');
    expect(obs).toHaveLength(1);
    // The same score, but for the episode path's link to its EpisodeOfCare, which a lone response cannot know.
    const mapped = bundle.entry.find(
      (e) =>
        JSON.stringify((e.resource as { identifier?: unknown }).identifier) ===
        JSON.stringify((obs[0] as { resource: { identifier: unknown } }).resource.identifier),
    ) as { resource: { extension?: { url: string }[] } };
    const { extension, ...rest } = mapped.resource;
    expect(extension?.map((x) => x.url)).toEqual(['http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare']);
    expect(obs[0]).toEqual({ ...mapped, resource: rest });
  });

  it('POST /v1/QuestionnaireResponse/$extract answers 400 naming the item for a bad answer', async () => {
    const bundle = (await (await post('/v1/episodes/$map', JSON.stringify(completed))).json()) as {
      entry: { resource: { resourceType: string; item?: { answer: unknown[] }[] } }[];
    };
    const qr = structuredClone(bundle.entry.find((e) => e.resource.resourceType === 'QuestionnaireResponse')?.resource)!;
    qr.item![2]!.answer = [{ valueString: 'often' }];
    const r = await post('/v1/QuestionnaireResponse/$extract', JSON.stringify(qr), 'application/fhir+json');
    expect(r.status).toBe(400);
    const o = (await r.json()) as { issue: { expression: string[] }[] };
    expect(o.issue[0]?.expression).toEqual(['QuestionnaireResponse.item[2].answer[0]']);
  });
});
