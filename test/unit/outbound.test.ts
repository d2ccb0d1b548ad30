/**
 * The bridge as a client of FHIR servers and token endpoints: targets must be https unless
 * loopback, redirects are never followed (the Bundle, the bearer token or the client
 * assertion would go to a URL nobody configured), and access tokens are shared per target
 * by every delivery in the process or isolate. Servers are mocked with msw.
 */
import type { JWK } from 'jose';
import { delay, HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTokenProvider } from '../../src/auth/backend-services.ts';
import { type ConfigEnv, loadConfig } from '../../src/config.ts';
import { OperationOutcomeError } from '../../src/fhir/outcome.ts';
import { FhirTargetClient, TargetError } from '../../src/sync/client.ts';
import { DEFAULT_RETRY_POLICY, decide } from '../../src/sync/retry.ts';
import { clientFactory } from '../../src/sync/targets.ts';
import { privateJwk } from '../fixtures/keys.ts';

const BASE = 'https://fhir.psych.example/fhir';
const TOKEN_URL = 'https://auth.psych.example/oauth2/token';
const ELSEWHERE = 'https://elsewhere.example';
const ORG = '974557746';
const ORG2 = '983544622';
/** What a redirect could carry in its Location: a (synthetic) national id. */
const LOCATION = `${ELSEWHERE}/fhir/Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|01810012345`;

const server = setupServer();
let elsewhere: string[] = [];
beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
afterEach(() => {
  server.resetHandlers();
  elsewhere = [];
});
afterAll(() => server.close());

/** Whatever reaches the redirect's target is recorded: nothing should. */
function redirectTarget() {
  server.use(
    http.all(`${ELSEWHERE}/*`, ({ request }) => {
      elsewhere.push(`${request.method} ${request.url} ${request.headers.get('authorization') ?? ''}`);
      return HttpResponse.json({ resourceType: 'Bundle', type: 'transaction-response', entry: [] });
    }),
  );
}

const fetchImpl: typeof fetch = (...a) => fetch(...a);

describe('FHIR client: no redirects', () => {
  for (const status of [301, 302, 303, 307, 308]) {
    it(`treats ${status} as a failure that says so, sends nothing to the Location and does not repeat it`, async () => {
      redirectTarget();
      server.use(http.all(`${BASE}*`, () => new HttpResponse(null, { status, headers: { location: LOCATION } })));
      const client = new FhirTargetClient(BASE, { fetch: fetchImpl, authorization: async () => 'Bearer target-token-abcdefgh' });
      const err = await client.request('POST', '', { resourceType: 'Bundle', type: 'transaction' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TargetError);
      const e = err as TargetError;
      expect([e.kind, e.status]).toEqual(['http', status]);
      expect(e.message).toBe(`POST (transaction): the server redirected (HTTP ${status}); redirects are not followed: configure the target's final base URL`);
      expect(`${e.message} ${JSON.stringify(e)}`).not.toContain('01810012345');
      expect(`${e.message} ${JSON.stringify(e)}`).not.toContain(ELSEWHERE);
      expect(elsewhere).toEqual([]);
      // A redirect is not retried: only a person can fix the configured URL.
      expect(decide(e, 1, DEFAULT_RETRY_POLICY, Date.now(), Math.random)).toEqual({ retry: false });
    });
  }

  it('still reads a 304 as an ordinary answer, not a redirect', async () => {
    server.use(http.get(`${BASE}/Patient/1`, () => new HttpResponse(null, { status: 304 })));
    const err = (await new FhirTargetClient(BASE, { fetch: fetchImpl }).request('GET', 'Patient/1').catch((e: unknown) => e)) as TargetError;
    expect(err.message).toBe('GET Patient/…: HTTP 304');
  });
});

describe('SMART token endpoint: no redirects', () => {
  let rsa: JWK;
  beforeAll(async () => {
    rsa = await privateJwk('RS384', 'bridge-rs');
  });

  it('refuses a redirect from the token endpoint without sending the assertion on', async () => {
    redirectTarget();
    server.use(http.post(TOKEN_URL, () => new HttpResponse(null, { status: 307, headers: { location: `${ELSEWHERE}/token?x=1` } })));
    const config = loadConfig(smartEnv(rsa));
    const err = await createTokenProvider(config.targets.primary[ORG]!, { fetch: fetchImpl, now: Date.now })
      .authorization()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationOutcomeError);
    const e = err as OperationOutcomeError;
    expect(e.outcome.issue?.[0]?.code).toBe('security');
    expect(e.message).toMatch(/the token endpoint redirected \(HTTP 307\); configure its final URL/);
    expect(JSON.stringify(e.outcome)).not.toContain(ELSEWHERE);
    expect(elsewhere).toEqual([]);
  });
});

function smartEnv(key: JWK, extra: { clientId?: string } = {}): ConfigEnv {
  const smart = { type: 'smart-backend', tokenUrl: TOKEN_URL, clientId: extra.clientId ?? 'imh-bridge-test', keyId: 'bridge-rs', alg: 'RS384' };
  return {
    API_AUTH: '{"type":"none"}',
    BRIDGE_ENV: 'local',
    FHIR_TARGETS: JSON.stringify({
      clinic: { baseUrl: 'http://127.0.0.1:8103/fhir', auth: { type: 'none' } },
      primary: { [ORG]: { baseUrl: BASE, auth: smart }, [ORG2]: { baseUrl: `${BASE}2`, auth: smart } },
    }),
    BRIDGE_PRIVATE_JWKS: JSON.stringify({ keys: [key] }),
  };
}

describe('access tokens are cached per target, not per parent', () => {
  let rsa: JWK;
  beforeAll(async () => {
    rsa = await privateJwk('RS384', 'bridge-rs');
  });

  /** A token endpoint numbering its tokens, and a FHIR server recording the token of each request. */
  function servers() {
    const issued: string[] = [];
    const seen: string[] = [];
    server.use(
      http.post(TOKEN_URL, async () => {
        await delay(30);
        issued.push(`access-${issued.length + 1}`);
        return HttpResponse.json({ access_token: issued.at(-1), token_type: 'Bearer', expires_in: 300 });
      }),
      http.get(`${BASE}*`, ({ request }) => {
        seen.push(`${new URL(request.url).pathname} ${request.headers.get('authorization')}`);
        return HttpResponse.json({ resourceType: 'CapabilityStatement' });
      }),
    );
    return { issued, seen };
  }

  it('one token per target for all parents (one client factory per Durable Object, as in the Worker)', async () => {
    const { issued, seen } = servers();
    const config = loadConfig(smartEnv(rsa));
    // Each ParentLane builds its own factory from the isolate's config; they run concurrently.
    const lanes = Array.from({ length: 10 }, () => clientFactory(config, fetchImpl));
    await Promise.all(lanes.map((clientFor) => clientFor(`primary.${ORG}`).request('GET', 'metadata')));
    await Promise.all(lanes.map((clientFor) => clientFor(`primary.${ORG2}`).request('GET', 'metadata')));
    expect(issued).toEqual(['access-1', 'access-2']);
    expect(new Set(seen.filter((s) => s.startsWith('/fhir/')))).toEqual(new Set(['/fhir/metadata Bearer access-1']));
    expect(new Set(seen.filter((s) => s.startsWith('/fhir2/')))).toEqual(new Set(['/fhir2/metadata Bearer access-2']));

    // The same settings loaded again (another request's view of the configuration) share it too.
    await clientFactory(loadConfig(smartEnv(rsa)), fetchImpl)(`primary.${ORG}`).request('GET', 'metadata');
    expect(issued).toHaveLength(2);
  });

  it('a changed configuration of a target gets a token of its own', async () => {
    const { issued } = servers();
    await clientFactory(loadConfig(smartEnv(rsa)), fetchImpl)(`primary.${ORG}`).request('GET', 'metadata');
    const before = issued.length;
    await clientFactory(loadConfig(smartEnv(rsa, { clientId: 'another-client' })), fetchImpl)(`primary.${ORG}`).request('GET', 'metadata');
    expect(issued.length).toBe(before + 1);
  });
});

describe('targets must be https unless loopback', () => {
  const target = (baseUrl: string, auth: object = { type: 'none' }) => ({
    API_AUTH: '{"type":"none"}',
    BRIDGE_ENV: 'local',
    FHIR_TARGETS: JSON.stringify({ clinic: { baseUrl, auth }, primary: { [ORG]: { baseUrl, auth } } }),
  });

  it('refuses plain http to another host, with or without credentials, naming the setting', () => {
    for (const baseUrl of ['http://fhir.psych.example/fhir', 'http://10.0.0.7:8080/fhir', 'ftp://fhir.psych.example/fhir']) {
      let err: OperationOutcomeError | undefined;
      try {
        loadConfig(target(baseUrl));
      } catch (e) {
        err = e as OperationOutcomeError;
      }
      expect(err).toBeInstanceOf(OperationOutcomeError);
      const issues = err!.outcome.issue ?? [];
      expect(issues.map((i) => i.expression?.[0])).toEqual(['FHIR_TARGETS.clinic.baseUrl', `FHIR_TARGETS.primary.${ORG}.baseUrl`]);
      expect(issues[0]?.details?.text).toMatch(/must use https \(http is allowed only for localhost\)|must be an https URL/);
      expect(JSON.stringify(issues)).not.toContain(new URL(baseUrl).host);
    }
  });

  it('accepts https anywhere and http on loopback', () => {
    for (const baseUrl of ['https://fhir.psych.example/fhir', 'http://127.0.0.1:8103/fhir', 'http://localhost:8103/fhir', 'http://[::1]:8103/fhir']) {
      expect(loadConfig(target(baseUrl)).targets.clinic.baseUrl).toBe(baseUrl);
    }
  });
});
