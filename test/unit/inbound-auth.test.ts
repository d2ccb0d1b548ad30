/**
 * Caller authentication of the API (API_AUTH) through the real app: static tokens, and
 * SMART Backend Services-style access tokens verified against a JWKS served with msw.
 * The configuration goes through loadConfig, as in the Worker.
 */
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import planned from '../../examples/planned-minimal.episode.json';
import { type Access, allows, createInboundAuthenticator } from '../../src/auth/inbound.ts';
import { loadConfig } from '../../src/config.ts';
import { createApp } from '../../src/http/app.ts';
import { accessFor } from '../../src/http/auth.ts';
import type { DeliveryService } from '../../src/sync/service.ts';
import type { Job } from '../../src/sync/types.ts';

const JWKS_URL = 'https://auth.example.org/.well-known/jwks.json';
const ISSUER = 'https://auth.example.org';
const AUDIENCE = 'https://bridge.example.org';
const T1 = 'api-token-one-7Gk2Lq9Xv4Nw8Rz1Tb6Yc3';
const T2 = 'api-token-two-Hm5Pd2Js8Wf1Ke7Ua4Qo9';

const server = setupServer();
let jwksFetches = 0;
let jwksDown = false;

interface Signer {
  key: CryptoKey;
  kid: string;
  alg: string;
}
let rs384: Signer;
let es256: Signer;
let stranger: Signer;

beforeAll(async () => {
  const make = async (alg: string, kid: string) => ({ ...(await generateKeyPair(alg, { extractable: true })), kid, alg });
  const [a, b, c] = await Promise.all([make('RS384', 'as-rs'), make('ES256', 'as-es'), make('ES384', 'as-es')]);
  const pub = async (k: typeof a): Promise<JWK> => ({ ...(await exportJWK(k.publicKey)), kid: k.kid, alg: k.alg, use: 'sig' });
  const jwks = { keys: [await pub(a), await pub(b)] };
  rs384 = { key: a.privateKey, kid: a.kid, alg: a.alg };
  es256 = { key: b.privateKey, kid: b.kid, alg: b.alg };
  stranger = { key: c.privateKey, kid: 'as-other', alg: c.alg };
  server.use(
    http.get(JWKS_URL, () => {
      jwksFetches++;
      return jwksDown ? new HttpResponse(null, { status: 503 }) : HttpResponse.json(jwks);
    }),
  );
  server.listen({ onUnhandledFrame: 'error' });
});
afterEach(() => {
  jwksDown = false;
});
afterAll(() => server.close());

async function token(signer: Signer, claims: Record<string, unknown> = {}, opts: { exp?: number | string; iss?: string; aud?: string } = {}): Promise<string> {
  const jwt = new SignJWT({ scope: 'system/*.read system/*.write', ...claims })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })
    .setIssuer(opts.iss ?? ISSUER)
    .setAudience(opts.aud ?? AUDIENCE)
    .setSubject('psychiatry-ehr')
    .setIssuedAt()
    .setJti(crypto.randomUUID());
  if (opts.exp !== undefined) jwt.setExpirationTime(opts.exp);
  else jwt.setExpirationTime('5m');
  return jwt.sign(signer.key);
}

const job: Job = {
  id: 'job-1',
  seq: 1,
  tenant: 'local',
  episodeKey: '974557746/VG-1',
  parentKey: 'p',
  contentHash: 'h',
  mappingVersion: '1',
  status: 'queued',
  attempts: 0,
  createdAt: '2026-11-25T12:00:00Z',
  updatedAt: '2026-11-25T12:00:00Z',
  targets: {},
};

/** Delivery that records calls and never touches storage. */
function fakeDelivery() {
  const calls: string[] = [];
  const service: DeliveryService = {
    async submit() {
      calls.push('submit');
      return job;
    },
    async submitMany(inputs) {
      calls.push('submitMany');
      return inputs.map(() => ({ ok: true as const, job }));
    },
    async getJob() {
      calls.push('getJob');
      return job;
    },
    async listJobs() {
      calls.push('listJobs');
      return [job];
    },
    async replay() {
      calls.push('replay');
      return { job: { ...job, status: 'queued' }, replayed: true };
    },
    async listCoordination() {
      calls.push('listCoordination');
      return [];
    },
  };
  return { service, calls };
}

function appFor(env: Record<string, string>) {
  const config = loadConfig(env);
  const delivery = fakeDelivery();
  const app = createApp({
    allowSyntheticIds: true,
    auth: createInboundAuthenticator(config.apiAuth),
    delivery: () => delivery.service,
    jwks: async () => config.publicJwks,
  });
  return { app, calls: delivery.calls };
}

const bearerEnv = { API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: JSON.stringify([T1, T2]) };
const jwtEnv = { API_AUTH: JSON.stringify({ type: 'jwt', jwksUrl: JWKS_URL, issuer: ISSUER, audience: AUDIENCE }) };

const put = (bearer?: string) => ({
  method: 'PUT',
  headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
  body: JSON.stringify(planned),
});
const get = (bearer?: string): { headers: Record<string, string> } => ({ headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });

interface Outcome {
  resourceType: string;
  issue: { code: string; details: { text: string } }[];
}

/** The whole response as text (status, headers, body), to check nothing repeats the token. */
async function dump(r: Response): Promise<string> {
  const headers: string[] = [];
  r.headers.forEach((v, k) => headers.push(`${k}: ${v}`));
  return `${r.status}\n${headers.join('\n')}\n${await r.clone().text()}`;
}

async function expectRefused(r: Response, status: 401 | 403, code: 'login' | 'forbidden', secret?: string) {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  const o = (await r.clone().json()) as Outcome;
  expect(o.resourceType).toBe('OperationOutcome');
  expect(o.issue[0]?.code).toBe(code);
  expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="imh-bridge"/);
  if (secret) expect(await dump(r)).not.toContain(secret);
  return o;
}

const episodePath = `/v1/episodes/${planned.episodeId}`;

describe('API_AUTH bearer: static API tokens', () => {
  it('answers 401 with a Bearer challenge and no error code when no token is sent', async () => {
    const { app, calls } = appFor(bearerEnv);
    const r = await app.request(episodePath, put());
    const o = await expectRefused(r, 401, 'login');
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="imh-bridge"');
    expect(o.issue[0]?.details.text).toMatch(/authentication required/);
    expect(calls).toEqual([]);
  });

  it('answers 401 invalid_token for a wrong token, never repeating it', async () => {
    const { app, calls } = appFor(bearerEnv);
    const wrong = `${T1.slice(0, -1)}X`;
    for (const init of [put(wrong), get(wrong), { headers: { authorization: `Basic ${btoa(`u:${T1}`)}` } }, { headers: { authorization: 'Bearer ' } }]) {
      const r = await app.request('/v1/jobs', init);
      await expectRefused(r, 401, 'login', wrong);
      expect(await dump(r)).not.toContain(T1);
    }
    const r = await app.request('/v1/jobs', get(wrong));
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="imh-bridge", error="invalid_token"');
    expect(calls).toEqual([]);
  });

  it('lets either configured token through, with every scope', async () => {
    const { app, calls } = appFor(bearerEnv);
    expect((await app.request(episodePath, put(T1))).status).toBe(202);
    expect((await app.request('/v1/jobs', get(T2))).status).toBe(200);
    expect((await app.request('/v1/jobs/job-1/$replay', { method: 'POST', ...get(T1) })).status).toBe(202);
    const mapped = await app.request('/v1/episodes/$map', { ...put(T2), method: 'POST' });
    expect(mapped.status).toBe(200);
    expect(await dump(mapped)).not.toContain(T2);
    expect(calls).toEqual(['submit', 'listJobs', 'replay']);
  });

  it('protects every /v1 route, including ones that do not exist', async () => {
    const { app } = appFor(bearerEnv);
    for (const [path, init] of [
      ['/v1/Questionnaire', {}],
      ['/v1/Questionnaire/phq-9', {}],
      ['/v1/jobs/job-1', {}],
      ['/v1/$validate', { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '{"resourceType":"Patient"}' }],
      ['/v1/QuestionnaireResponse/$extract', { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '{}' }],
      ['/v1/episodes/$import', { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{}\n' }],
      ['/v1/nothing', {}],
    ] as const) {
      expect((await app.request(path, init)).status, path).toBe(401);
    }
    expect((await app.request('/v1/nothing', get(T1))).status).toBe(404);
  });

  it('keeps the service routes public', async () => {
    const { app } = appFor(bearerEnv);
    for (const path of ['/healthz', '/openapi.json', '/docs', '/.well-known/jwks.json']) {
      const r = await app.request(path);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('www-authenticate')).toBeNull();
    }
    expect((await app.request('/')).status).toBe(302);
  });
});

describe('API_AUTH jwt: SMART Backend Services access tokens', () => {
  it('accepts a valid token from either key (RS384, ES256) and fetches the key set once', async () => {
    const { app, calls } = appFor(jwtEnv);
    const before = jwksFetches;
    expect((await app.request(episodePath, put(await token(rs384)))).status).toBe(202);
    expect((await app.request('/v1/jobs', get(await token(es256)))).status).toBe(200);
    expect((await app.request('/v1/Questionnaire', get(await token(rs384)))).status).toBe(200);
    expect(jwksFetches - before).toBe(1);
    expect(calls).toEqual(['submit', 'listJobs']);
  });

  it('answers 401 for no token, an expired token, a wrong issuer or audience, a foreign key or a non-JWT', async () => {
    const { app, calls } = appFor(jwtEnv);
    await expectRefused(await app.request('/v1/Questionnaire', get()), 401, 'login');
    const cases: [string, RegExp][] = [
      [await token(rs384, {}, { exp: Math.floor(Date.now() / 1000) - 120 }), /expired/],
      [await token(rs384, {}, { iss: 'https://evil.example.org' }), /"iss" claim/],
      [await token(rs384, {}, { aud: 'https://other.example.org' }), /"aud" claim/],
      [await token(stranger), /not signed by a key of the configured issuer/],
      [
        await new SignJWT({ scope: 'system/*.*' }).setProtectedHeader({ alg: 'RS384', kid: 'as-rs' }).setIssuer(ISSUER).setAudience(AUDIENCE).sign(rs384.key),
        /"exp" claim/,
      ],
      ['not-a-jwt-but-long-enough-to-look-like-one', /not a valid signed JWT/],
    ];
    for (const [jwt, why] of cases) {
      const r = await app.request('/v1/Questionnaire', get(jwt));
      const o = await expectRefused(r, 401, 'login', jwt);
      expect(o.issue[0]?.details.text).toMatch(why);
      expect(r.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    expect(calls).toEqual([]);
  });

  it('allows 30 s of clock skew', async () => {
    const { app } = appFor(jwtEnv);
    const justExpired = await token(rs384, {}, { exp: Math.floor(Date.now() / 1000) - 10 });
    expect((await app.request('/v1/Questionnaire', get(justExpired))).status).toBe(200);
  });

  it('answers 403 forbidden for a read-only token on PUT, and lets a write scope through', async () => {
    const { app, calls } = appFor(jwtEnv);
    const readOnly = await token(rs384, { scope: 'system/*.read' });
    const r = await app.request(episodePath, put(readOnly));
    const o = await expectRefused(r, 403, 'forbidden', readOnly);
    expect(o.issue[0]?.details.text).toMatch(/needs write access/);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="imh-bridge", error="insufficient_scope", scope="system/*.write"');
    for (const path of ['/v1/episodes/$import', '/v1/jobs/job-1/$replay']) {
      expect(
        (await app.request(path, { method: 'POST', headers: { authorization: `Bearer ${readOnly}`, 'content-type': 'application/x-ndjson' }, body: '{}' }))
          .status,
        path,
      ).toBe(403);
    }
    expect((await app.request('/v1/jobs/job-1', get(readOnly))).status).toBe(200);

    for (const scope of ['system/*.write', 'system/*.*', 'system/EpisodeOfCare.write', 'launch system/*.cruds']) {
      expect((await app.request(episodePath, put(await token(rs384, { scope })))).status, scope).toBe(202);
    }
    expect(calls).toEqual(['getJob', 'submit', 'submit', 'submit', 'submit']);
  });

  it('does not accept user/ or patient/ scopes, and needs a read scope for jobs', async () => {
    const { app } = appFor(jwtEnv);
    for (const scope of ['user/*.write', 'patient/*.*', 'system/Patient.write', 'system/*.write?category=x']) {
      expect((await app.request(episodePath, put(await token(rs384, { scope })))).status, scope).toBe(403);
    }
    const writeOnly = await token(rs384, { scope: 'system/*.write' });
    expect((await app.request('/v1/jobs', get(writeOnly))).status).toBe(403);
    // Any valid token may compute and read published content.
    const noScope = await token(rs384, { scope: '' });
    expect((await app.request('/v1/Questionnaire/phq-9', get(noScope))).status).toBe(200);
    expect((await app.request('/v1/episodes/$map', { ...put(noScope), method: 'POST' })).status).toBe(200);
  });

  it('answers 503, not 401, when the key set cannot be fetched', async () => {
    // A fresh app: its key set has not been fetched yet.
    const { app } = appFor(jwtEnv);
    jwksDown = true;
    const jwt = await token(rs384);
    const r = await app.request('/v1/Questionnaire', get(jwt));
    expect(r.status).toBe(503);
    expect(await dump(r)).not.toContain(jwt);
    expect(((await r.json()) as Outcome).issue[0]?.code).toBe('transient');
  });
});

describe('API_AUTH none and createApp without auth', () => {
  it('lets every request through', async () => {
    for (const app of [appFor({ API_AUTH: '{"type":"none"}', BRIDGE_ENV: 'local' }).app, createApp({ allowSyntheticIds: true })]) {
      expect((await app.request('/v1/Questionnaire')).status).toBe(200);
    }
  });
});

describe('scopes per request', () => {
  it('classifies requests, unknown ones as write', () => {
    const table: [string, string, Access][] = [
      ['PUT', '/v1/episodes/VG-1', 'write'],
      ['POST', '/v1/episodes/$import', 'write'],
      ['POST', '/v1/jobs/j/$replay', 'write'],
      ['DELETE', '/v1/jobs/j', 'write'],
      ['POST', '/v1/somewhere', 'write'],
      ['GET', '/v1/jobs', 'read'],
      ['GET', '/v1/jobs/j', 'read'],
      ['HEAD', '/v1/jobs', 'read'],
      ['GET', '/v1/jobsx', 'any'],
      ['GET', '/v1/Questionnaire', 'any'],
      ['POST', '/v1/episodes/$map', 'any'],
      ['POST', '/v1/$validate', 'any'],
      ['POST', '/v1/QuestionnaireResponse/$extract', 'any'],
    ];
    for (const [method, path, access] of table) expect(accessFor(method, path), `${method} ${path}`).toBe(access);
  });

  it('grants write and read by system/ scopes only', () => {
    expect(allows(['system/*.write'], 'write')).toBe(true);
    expect(allows(['system/*.*'], 'write')).toBe(true);
    expect(allows(['system/*.*'], 'read')).toBe(true);
    expect(allows(['system/EpisodeOfCare.*'], 'write')).toBe(true);
    expect(allows(['system/*.cu'], 'write')).toBe(true);
    expect(allows(['system/*.rs'], 'read')).toBe(true);
    expect(allows(['system/*.c'], 'write')).toBe(false);
    expect(allows(['system/*.write'], 'read')).toBe(false);
    expect(allows(['user/*.write', 'patient/*.*', 'system/Observation.write'], 'write')).toBe(false);
    expect(allows(['system/*.read'], 'write')).toBe(false);
    expect(allows([], 'any')).toBe(true);
    expect(allows('all', 'write')).toBe(true);
  });
});

describe('the API description says how to authenticate', () => {
  it('declares the bearer scheme and the security of each operation', async () => {
    const { openApiDocument, docsPage } = await import('../../src/http/openapi.ts');
    const doc = openApiDocument() as {
      security: unknown;
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
      paths: Record<string, Record<string, { security: { bearer: string[] }[]; responses: Record<string, unknown> }>>;
    };
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/v1/episodes/{episodeId}']?.put?.security).toEqual([{ bearer: ['system/*.write'] }, { bearer: ['system/*.*'] }]);
    expect(doc.paths['/v1/jobs']?.get?.security).toEqual([{ bearer: ['system/*.read'] }, { bearer: ['system/*.*'] }]);
    expect(doc.paths['/v1/episodes/$map']?.post?.security).toEqual([{ bearer: [] }]);
    expect(Object.keys(doc.paths['/v1/episodes/$map']?.post?.responses ?? {})).toEqual(expect.arrayContaining(['401', '403']));
    for (const path of ['/healthz', '/openapi.json', '/.well-known/jwks.json']) expect(doc.paths[path]?.get?.security, path).toEqual([]);
    const page = docsPage();
    expect(page).toContain('Authorization: Bearer &lt;token&gt;');
    expect(page).toContain('Needs a bearer token with <code>system/*.write</code>');
  });
});
