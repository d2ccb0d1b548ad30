/**
 * The bridge as a confidential SMART app (src/http/smart.ts) against an EHR played by msw:
 * the launch's state, nonce and PKCE S256 in the encrypted launch cookie, the callback's checks
 * of state, token and id token (signature, issuer, audience, expiry, nonce), the match of the
 * patient in context to episodes by national id and organisation, the session cookie, the
 * summary's headers and the audit of every view and refusal (a view is not shown unaudited).
 */
import type { AuditEvent } from '@medplum/fhirtypes';
import { base64url, exportJWK, generateKeyPair, type JWTPayload, jwtDecrypt, SignJWT } from 'jose';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_TENANT } from '../../src/auth/tenants.ts';
import { loadConfig } from '../../src/config.ts';
import { parseEpisode } from '../../src/domain/parse.ts';
import { isOperationOutcomeError } from '../../src/fhir/outcome.ts';
import { NO } from '../../src/fhir/systems.ts';
import { createApp } from '../../src/http/app.ts';
import { PRE_AUTH_COOKIE, pickLang, SESSION_COOKIE, SMART_SCOPE, smartCookieKey, smartDepsFrom } from '../../src/http/smart.ts';
import { personKey } from '../../src/sync/episodes.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { completed } from '../fixtures/examples.ts';

const ISS = 'https://ehr.example/fhir';
const CLINIC = 'https://clinic.example/fhir';
const CLIENT_ID = 'imh-bridge';
const SECRET = 'client-secret-for-unit-tests-only-0123456789abcdef';
const DPS = '993778125';
const T0 = Date.parse('2026-05-10T10:00:00Z');
const ORIGIN = 'https://bridge.example';

const env = {
  API_AUTH: '{"type":"none"}',
  BRIDGE_ENV: 'local',
  FHIR_TARGETS: JSON.stringify({ clinic: { baseUrl: CLINIC, auth: { type: 'none' } } }),
  SMART_ISSUERS: JSON.stringify([{ iss: ISS, orgNumber: DPS, clientId: CLIENT_ID, clientSecretSecret: 'SMART_CLIENT_SECRET' }]),
  SMART_CLIENT_SECRET: SECRET,
};
const config = loadConfig(env);
const identity = config.identity.reveal();

const mother = (change: (e: ReturnType<typeof completed>) => void = () => {}) => {
  const e = completed();
  change(e);
  return parseEpisode(e);
};
const NATIONAL_ID = mother().parent.nationalId;

const ehrKeys = await generateKeyPair('ES256', { extractable: true });
const otherKeys = await generateKeyPair('ES256', { extractable: true });
const server = setupServer();

/** What the msw EHR and clinic saw and will answer. */
let audits: AuditEvent[];
let auditStatus: number;
let tokenRequests: { authorization: string | null; form: URLSearchParams }[];
let idClaims: (nonce: string) => JWTPayload;
let signWith: CryptoKey;
let nonce: string;
let smartConfig: Record<string, unknown>;
let clock: number;
let store: MemoryStore;

function ehrHandlers() {
  return [
    http.get(`${ISS}/.well-known/smart-configuration`, () => HttpResponse.json(smartConfig)),
    http.get('https://ehr.example/auth/jwks', async () => HttpResponse.json({ keys: [{ ...(await exportJWK(ehrKeys.publicKey)), kid: 'k1', alg: 'ES256' }] })),
    http.post('https://ehr.example/auth/token', async ({ request }) => {
      const form = new URLSearchParams(await request.text());
      tokenRequests.push({ authorization: request.headers.get('authorization'), form });
      if (form.get('code') !== 'good-code') return HttpResponse.json({ error: 'invalid_grant' }, { status: 400 });
      const id_token = await new SignJWT(idClaims(nonce)).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(signWith);
      return HttpResponse.json({ access_token: 'at-1', token_type: 'Bearer', expires_in: 300, scope: SMART_SCOPE, patient: 'p1', id_token });
    }),
    http.get(`${ISS}/Patient/p1`, ({ request }) =>
      request.headers.get('authorization') === 'Bearer at-1'
        ? HttpResponse.json({ resourceType: 'Patient', id: 'p1', identifier: [{ system: NO.fnr, value: NATIONAL_ID }] })
        : HttpResponse.json({ resourceType: 'OperationOutcome' }, { status: 401 }),
    ),
    http.put(`${CLINIC}/AuditEvent/:id`, async ({ request, params }) => {
      if (auditStatus !== 200) return HttpResponse.json({ resourceType: 'OperationOutcome', issue: [] }, { status: auditStatus });
      const event = (await request.json()) as AuditEvent;
      expect(event.id).toBe(params.id);
      audits.push(event);
      return HttpResponse.json(event, { status: 201 });
    }),
  ];
}

beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
afterAll(() => server.close());
afterEach(() => server.resetHandlers());

beforeEach(async () => {
  server.use(...ehrHandlers());
  audits = [];
  auditStatus = 200;
  tokenRequests = [];
  signWith = ehrKeys.privateKey;
  clock = T0;
  smartConfig = {
    issuer: ISS,
    authorization_endpoint: 'https://ehr.example/auth/authorize',
    token_endpoint: 'https://ehr.example/auth/token',
    jwks_uri: 'https://ehr.example/auth/jwks',
    code_challenge_methods_supported: ['S256'],
    capabilities: ['launch-ehr', 'client-confidential-symmetric'],
  };
  idClaims = (n) => ({
    iss: ISS,
    aud: CLIENT_ID,
    sub: 'prac-1',
    fhirUser: `${ISS}/Practitioner/prac-1`,
    nonce: n,
    iat: Math.floor(clock / 1000),
    exp: Math.floor(clock / 1000) + 300,
  });
  store = new MemoryStore();
  await putMother(mother());
});

async function putMother(episode: ReturnType<typeof mother>, tenant = DEFAULT_TENANT) {
  await store.putEpisode({
    tenant,
    episodeKey: `${episode.clinic.orgNumber}/${episode.episodeId}`,
    personKey: personKey(identity, NATIONAL_ID),
    episode,
    storedAt: new Date(T0).toISOString(),
  });
}

const app = () => createApp({ allowSyntheticIds: true, identity, smart: { ...smartDepsFrom(config, () => store), now: () => clock } });
const cookieKey = () => smartCookieKey((config.dataKeys.reveal()[0] as { key: Uint8Array }).key);

/** `name=value` of a Set-Cookie header, and its attributes. */
function cookie(res: Response, name: string): { value: string; attrs: string } | undefined {
  const line = res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  if (!line) return undefined;
  const [pair, ...attrs] = line.split('; ');
  return { value: (pair as string).slice(name.length + 1), attrs: attrs.join('; ') };
}

async function launch(a = app()) {
  const res = await a.request(`${ORIGIN}/smart/launch?iss=${encodeURIComponent(ISS)}&launch=L1`);
  expect(res.status).toBe(302);
  const to = new URL(res.headers.get('location') as string);
  nonce = to.searchParams.get('nonce') as string;
  return { res, to, pre: cookie(res, PRE_AUTH_COOKIE) as { value: string; attrs: string } };
}

async function callback(a: ReturnType<typeof app>, pre: string | undefined, query: string) {
  return a.request(`${ORIGIN}/smart/callback?${query}`, { headers: pre ? { cookie: `${PRE_AUTH_COOKIE}=${pre}` } : {} });
}

/** A whole launch up to the callback's answer. */
async function signIn(a = app()) {
  const { to, pre } = await launch(a);
  return callback(a, pre.value, `code=good-code&state=${to.searchParams.get('state')}`);
}

describe('GET /smart/launch', () => {
  it("redirects to the EHR's authorize endpoint with state, nonce, aud and PKCE S256 bound to an encrypted launch cookie", async () => {
    const { to, pre, res } = await launch();
    expect(to.origin + to.pathname).toBe('https://ehr.example/auth/authorize');
    const q = Object.fromEntries(to.searchParams);
    expect(q).toMatchObject({
      response_type: 'code',
      client_id: CLIENT_ID,
      redirect_uri: `${ORIGIN}/smart/callback`,
      scope: 'launch openid fhirUser patient/Patient.read',
      aud: ISS,
      launch: 'L1',
      code_challenge_method: 'S256',
    });
    expect(q.state).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(pre.attrs).toMatch(/HttpOnly/);
    expect(pre.attrs).toMatch(/Secure/);
    expect(pre.attrs).toMatch(/SameSite=Lax/);
    expect(pre.attrs).toMatch(/Path=\/smart/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    // The cookie is a JWE: only the bridge reads the verifier, whose S256 is the challenge sent.
    expect(pre.value.split('.')).toHaveLength(5);
    const { payload } = await jwtDecrypt(pre.value, await cookieKey(), { currentDate: new Date(clock) });
    expect(payload.state).toBe(q.state);
    expect(payload.nonce).toBe(q.nonce);
    const challenge = base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(payload.verifier as string))));
    expect(q.code_challenge).toBe(challenge);
    expect(audits).toEqual([]);
  });

  it('refuses an issuer that is not configured, without asking it anything, and audits the refusal without its URL', async () => {
    const res = await app().request(`${ORIGIN}/smart/launch?iss=${encodeURIComponent('https://evil.example/fhir')}&launch=L1`);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toMatch(/ikke registrert/);
    expect(audits).toHaveLength(1);
    expect(audits[0]?.outcome).toBe('4');
    expect(JSON.stringify(audits[0])).not.toContain('evil.example');
  });

  it('refuses an EHR that does not offer PKCE S256 (502), audited', async () => {
    smartConfig.code_challenge_methods_supported = ['plain'];
    const res = await app().request(`${ORIGIN}/smart/launch?iss=${encodeURIComponent(ISS)}&launch=L1`);
    expect(res.status).toBe(502);
    expect(audits[0]?.outcomeDesc).toMatch(/S256/);
  });
});

describe('GET /smart/callback', () => {
  it('exchanges the code as a confidential client with the PKCE verifier and opens an encrypted 15-minute session', async () => {
    const res = await signIn();
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/smart/summary');
    const [t] = tokenRequests;
    expect(t?.authorization).toBe(`Basic ${btoa(`${CLIENT_ID}:${SECRET}`)}`);
    expect(t?.form.get('grant_type')).toBe('authorization_code');
    expect(t?.form.get('redirect_uri')).toBe(`${ORIGIN}/smart/callback`);
    expect(t?.form.get('code_verifier')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const session = cookie(res, SESSION_COOKIE);
    expect(session?.attrs).toMatch(/Max-Age=900/);
    expect(session?.attrs).toMatch(/HttpOnly/);
    expect(session?.attrs).toMatch(/Secure/);
    expect(session?.attrs).toMatch(/SameSite=Lax/);
    expect(session?.value).not.toContain(NATIONAL_ID);
    // The launch cookie is spent.
    expect(cookie(res, PRE_AUTH_COOKIE)?.attrs).toMatch(/Max-Age=0/);
  });

  it.each([
    ['no launch cookie', async () => callback(app(), undefined, 'code=good-code&state=x'), 400],
    [
      "a state that is not the launch's",
      async () => {
        const a = app();
        const { pre } = await launch(a);
        return callback(a, pre.value, 'code=good-code&state=forged');
      },
      400,
    ],
    [
      'an altered launch cookie',
      async () => {
        const a = app();
        const { to, pre } = await launch(a);
        return callback(a, `${pre.value.slice(0, -2)}AA`, `code=good-code&state=${to.searchParams.get('state')}`);
      },
      400,
    ],
    [
      'a launch cookie older than ten minutes',
      async () => {
        const a = app();
        const { to, pre } = await launch(a);
        clock += 601_000;
        return callback(a, pre.value, `code=good-code&state=${to.searchParams.get('state')}`);
      },
      400,
    ],
    [
      'an error from the EHR',
      async () => {
        const a = app();
        const { to, pre } = await launch(a);
        return callback(a, pre.value, `error=access_denied&state=${to.searchParams.get('state')}`);
      },
      403,
    ],
    [
      'a code the token endpoint refuses',
      async () => {
        const a = app();
        const { to, pre } = await launch(a);
        return callback(a, pre.value, `code=bad&state=${to.searchParams.get('state')}`);
      },
      400,
    ],
  ])('refuses %s, audited, with no session', async (_name, run, status) => {
    const res = await run();
    expect(res.status).toBe(status);
    expect(cookie(res, SESSION_COOKIE)).toBeUndefined();
    expect(await res.text()).toMatch(/<main>/);
    expect(audits).toHaveLength(1);
    expect(audits[0]?.outcome).toBe('4');
  });

  it.each([
    ['another audience', () => (idClaims = ((f) => (n: string) => ({ ...f(n), aud: 'someone-else' }))(idClaims))],
    ['another issuer', () => (idClaims = ((f) => (n: string) => ({ ...f(n), iss: 'https://other.example/fhir' }))(idClaims))],
    ['an expired id token', () => (idClaims = ((f) => (n: string) => ({ ...f(n), exp: Math.floor(clock / 1000) - 120 }))(idClaims))],
    ['another nonce', () => (idClaims = ((f) => (n: string) => ({ ...f(n), nonce: `${n}x` }))(idClaims))],
    ["a key that is not the EHR's", () => (signWith = otherKeys.privateKey)],
  ])('refuses an id token with %s (400), never reading the patient', async (_name, spoil) => {
    spoil();
    const res = await signIn();
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/kunne ikke bekreftes/);
    expect(cookie(res, SESSION_COOKIE)).toBeUndefined();
    expect(audits[0]?.outcomeDesc).toMatch(/id token/);
    // Nothing of the patient: no patient entity in the audit.
    expect(audits[0]?.entity ?? []).toEqual([]);
  });

  it("gives another organisation's episode and an unknown patient the same page, and audits why", async () => {
    const elsewhere = mother((e) => {
      e.primaryTreatment.organization.orgNumber = '974557746';
    });
    store = new MemoryStore();
    await putMother(elsewhere);
    const other = await signIn();
    expect(other.status).toBe(403);
    store = new MemoryStore();
    const unknown = await signIn();
    expect(unknown.status).toBe(403);
    expect(await other.text()).toBe(await unknown.text());
    expect(audits.map((a) => a.outcomeDesc)).toEqual(["the person's episodes name another primary treatment organisation", 'no stored episode of this person']);
    // The clinician and the patient are recorded, the other organisation's episode is not.
    expect(audits[0]?.agent.find((a) => a.requestor)?.who?.identifier).toEqual({ system: ISS, value: `${ISS}/Practitioner/prac-1` });
    expect(audits[0]?.entity?.map((e) => e.what?.identifier?.value)).toEqual([NATIONAL_ID]);
  });

  it.each([
    ['withdrawn', (e: ReturnType<typeof completed>) => (e.consent.status = 'withdrawn'), /trukket samtykket/],
    ['expired', (e: ReturnType<typeof completed>) => (e.consent.expiresOn = '2026-05-10'), /utløpt/],
    ['without the summary', (e: ReturnType<typeof completed>) => (e.consent.share = ['scores']), /gir ikke tilgang/],
  ])('refuses a consent %s (403) and audits it with the episode', async (_name, change, words) => {
    store = new MemoryStore();
    await putMother(mother(change));
    const res = await signIn();
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(words);
    expect(audits).toHaveLength(1);
    expect(audits[0]?.entity?.some((e) => e.what?.type === 'EpisodeOfCare')).toBe(true);
  });
});

describe('GET /smart/summary', () => {
  async function session(a = app()) {
    const res = await signIn(a);
    return `${SESSION_COOKIE}=${cookie(res, SESSION_COOKIE)?.value}`;
  }

  it('shows the summary with the strict CSP, no-store and no framing, once its view is audited', async () => {
    const a = app();
    const c = await session(a);
    const res = await a.request(`${ORIGIN}/smart/summary`, { headers: { cookie: c, 'accept-language': 'en-GB,en;q=0.9' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; form-action 'none'; base-uri 'none'",
    );
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.text()).toMatch(/<html lang="en">/);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ outcome: '0', type: { code: '110110' } });
  });

  it('answers 503 and shows nothing when the view cannot be audited', async () => {
    const a = app();
    const c = await session(a);
    auditStatus = 500;
    const res = await a.request(`${ORIGIN}/smart/summary`, { headers: { cookie: c } });
    expect(res.status).toBe(503);
    const html = await res.text();
    expect(html).not.toContain('Nordmann');
    expect(html).not.toContain('EPDS');
  });

  it('ends after 15 minutes (401), and refuses a consent withdrawn during the session', async () => {
    const a = app();
    const c = await session(a);
    await putMother(mother((e) => (e.consent.status = 'withdrawn')));
    const withdrawn = await a.request(`${ORIGIN}/smart/summary`, { headers: { cookie: c } });
    expect(withdrawn.status).toBe(403);
    clock += 901_000;
    const ended = await a.request(`${ORIGIN}/smart/summary`, { headers: { cookie: c } });
    expect(ended.status).toBe(401);
    expect(audits.map((x) => x.outcome)).toEqual(['4', '4']);
  });

  it('lists the episodes first when several may be seen, each opening its own summary', async () => {
    await putMother(mother((e) => (e.episodeId = 'VG-2026-0099')));
    const a = app();
    const c = await session(a);
    const list = await a.request(`${ORIGIN}/smart/summary`, { headers: { cookie: c } });
    expect(list.status).toBe(200);
    const html = await list.text();
    expect(html.match(/href="\/smart\/summary\?e=\d"/g)).toEqual(['href="/smart/summary?e=0"', 'href="/smart/summary?e=1"']);
    expect((await a.request(`${ORIGIN}/smart/summary?e=1`, { headers: { cookie: c } })).status).toBe(200);
    expect((await a.request(`${ORIGIN}/smart/summary?e=2`, { headers: { cookie: c } })).status).toBe(403);
  });
});

describe('pickLang and SMART_ISSUERS', () => {
  it('takes ?lang=, then the preferred of Norwegian or English, then bokmål', () => {
    expect(pickLang('en', 'nb')).toBe('en');
    expect(pickLang(undefined, 'de, en;q=0.8, nb;q=0.5')).toBe('en');
    expect(pickLang(undefined, 'nn-NO')).toBe('nb');
    expect(pickLang(undefined, undefined)).toBe('nb');
  });

  it('names every bad setting without repeating values', () => {
    let error: unknown;
    try {
      loadConfig({
        ...env,
        SMART_ISSUERS: JSON.stringify([
          {
            iss: 'http://ehr.example/fhir',
            orgNumber: '123',
            clientId: 'a b',
            clientSecretSecret: 'MISSING_SECRET',
            clientSecret: 'hunter2-secret',
            frameAncestors: ['javascript:x'],
          },
        ]),
      });
    } catch (e) {
      error = e;
    }
    expect(isOperationOutcomeError(error)).toBe(true);
    const text = JSON.stringify((error as { outcome: unknown }).outcome);
    for (const path of [
      'SMART_ISSUERS.0.iss',
      'SMART_ISSUERS.0.orgNumber',
      'SMART_ISSUERS.0.clientId',
      'SMART_ISSUERS.0.clientSecretSecret',
      'SMART_ISSUERS.0.clientSecret',
      'SMART_ISSUERS.0.frameAncestors.0',
    ]) {
      expect(text).toContain(path);
    }
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('ehr.example');
  });
});
