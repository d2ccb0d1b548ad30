/**
 * SMART Backend Services client credentials
 * (https://hl7.org/fhir/smart-app-launch/backend-services.html) against a token endpoint
 * mocked with msw: the client assertion verifies against our published JWKS, tokens are
 * cached and shared, and endpoint errors never leak the assertion.
 */

import type { JWK } from 'jose';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { delay, HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TokenProviderDeps } from '../../src/auth/backend-services.ts';
import { CLIENT_ASSERTION_TYPE, createTokenProvider } from '../../src/auth/backend-services.ts';
import { type BridgeConfig, loadConfig, type TargetConfig } from '../../src/config.ts';
import { OperationOutcomeError } from '../../src/fhir/outcome.ts';
import { privateJwk } from '../fixtures/keys.ts';

const TOKEN_URL = 'https://auth.psych.example/oauth2/token';
const CLIENT_ID = 'imh-bridge-test';
const ORG = '974557746';

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

interface TokenRequest {
  contentType: string | null;
  form: URLSearchParams;
}

/** A token endpoint that records each request and answers with numbered tokens. */
function tokenEndpoint(opts: { expiresIn?: number; wait?: number } = {}) {
  const requests: TokenRequest[] = [];
  server.use(
    http.post(TOKEN_URL, async ({ request }) => {
      requests.push({ contentType: request.headers.get('content-type'), form: new URLSearchParams(await request.text()) });
      if (opts.wait) await delay(opts.wait);
      return HttpResponse.json({ access_token: `access-${requests.length}`, token_type: 'Bearer', expires_in: opts.expiresIn ?? 300, scope: 'system/*.write' });
    }),
  );
  return requests;
}

let rsa: JWK;
let ec: JWK;
beforeAll(async () => {
  [rsa, ec] = await Promise.all([privateJwk('RS384', 'bridge-rs'), privateJwk('ES384', 'bridge-es')]);
});

function configFor(alg: 'RS384' | 'ES384', extra: Record<string, unknown> = {}): BridgeConfig {
  return loadConfig({
    API_AUTH: '{"type":"none"}',
    BRIDGE_ENV: 'local',
    FHIR_TARGETS: JSON.stringify({
      clinic: { baseUrl: 'http://127.0.0.1:8103/fhir', auth: { type: 'none' } },
      primary: {
        [ORG]: {
          baseUrl: 'https://fhir.psych.example/fhir',
          auth: { type: 'smart-backend', tokenUrl: TOKEN_URL, clientId: CLIENT_ID, keyId: alg === 'RS384' ? 'bridge-rs' : 'bridge-es', alg, ...extra },
        },
      },
    }),
    BRIDGE_PRIVATE_JWKS: JSON.stringify({ keys: [rsa, ec] }),
  });
}

/** A clock the test moves by hand. */
function clock(start = Date.parse('2026-11-25T12:00:00Z')) {
  const c = { t: start, now: () => c.t };
  return c;
}

const deps = (now: () => number): TokenProviderDeps => ({ fetch: (input, init) => fetch(input, init), now });

describe.each(['RS384', 'ES384'] as const)('SMART backend services with %s', (alg) => {
  it('posts a client assertion that verifies against the published JWKS', async () => {
    const requests = tokenEndpoint();
    const c = clock();
    const config = configFor(alg);
    const provider = createTokenProvider(config.targets.primary[ORG]!, deps(c.now));

    expect(await provider.authorization()).toBe('Bearer access-1');
    expect(requests).toHaveLength(1);
    const { form, contentType } = requests[0]!;
    expect(contentType).toMatch(/^application\/x-www-form-urlencoded/);
    expect(form.get('grant_type')).toBe('client_credentials');
    expect(form.get('scope')).toBe('system/*.write system/*.read');
    expect(form.get('client_assertion_type')).toBe(CLIENT_ASSERTION_TYPE);

    const jwt = form.get('client_assertion')!;
    const { payload, protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(config.publicJwks), {
      algorithms: [alg],
      issuer: CLIENT_ID,
      subject: CLIENT_ID,
      audience: TOKEN_URL,
      currentDate: new Date(c.t),
      typ: 'JWT',
    });
    expect(protectedHeader).toEqual({ alg, kid: alg === 'RS384' ? 'bridge-rs' : 'bridge-es', typ: 'JWT' });
    expect(payload.iat).toBe(c.t / 1000);
    expect(payload.exp! - c.t / 1000).toBeGreaterThan(0);
    expect(payload.exp! - c.t / 1000).toBeLessThanOrEqual(300);
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('puts jku in the header when configured', async () => {
    const requests = tokenEndpoint();
    const jku = 'https://bridge.example/.well-known/jwks.json';
    const provider = createTokenProvider(configFor(alg, { jku }).targets.primary[ORG]!, deps(clock().now));
    await provider.authorization();
    const jwt = requests[0]!.form.get('client_assertion')!;
    const header = JSON.parse(atob(jwt.split('.')[0]!.replace(/-/g, '+').replace(/_/g, '/')));
    expect(header.jku).toBe(jku);
  });
});

describe('access token cache', () => {
  const target = () => configFor('ES384').targets.primary[ORG]!;

  it('asks once for two calls, and again with a fresh jti after the token nears expiry', async () => {
    const requests = tokenEndpoint({ expiresIn: 300 });
    const c = clock();
    const provider = createTokenProvider(target(), deps(c.now));

    expect(await provider.authorization()).toBe('Bearer access-1');
    c.t += 100_000;
    expect(await provider.authorization()).toBe('Bearer access-1');
    expect(requests).toHaveLength(1);

    c.t += 139_000; // 239 s: still more than 60 s left
    expect(await provider.authorization()).toBe('Bearer access-1');
    c.t += 2_000; // 241 s: inside the last minute
    expect(await provider.authorization()).toBe('Bearer access-2');
    expect(requests).toHaveLength(2);

    const [a, b] = requests.map((r) => decodeJwt(r.form.get('client_assertion')!));
    expect(a!.jti).not.toBe(b!.jti);
    expect(b!.iat).toBe(a!.iat! + 241);
  });

  it('lets concurrent callers share one request', async () => {
    const requests = tokenEndpoint({ wait: 50 });
    const provider = createTokenProvider(target(), deps(clock().now));
    const headers = await Promise.all(Array.from({ length: 5 }, () => provider.authorization()));
    expect(headers).toEqual(Array(5).fill('Bearer access-1'));
    expect(requests).toHaveLength(1);
  });

  it('asks for a new token after invalidate()', async () => {
    const requests = tokenEndpoint();
    const provider = createTokenProvider(target(), deps(clock().now));
    expect(await provider.authorization()).toBe('Bearer access-1');
    provider.invalidate();
    expect(await provider.authorization()).toBe('Bearer access-2');
    expect(await provider.authorization()).toBe('Bearer access-2');
    expect(requests).toHaveLength(2);
  });

  it('does not cache a failure', async () => {
    let calls = 0;
    server.use(
      http.post(TOKEN_URL, () =>
        ++calls === 1
          ? HttpResponse.json({ error: 'temporarily_unavailable' }, { status: 503 })
          : HttpResponse.json({ access_token: 'ok', token_type: 'bearer', expires_in: 300 }),
      ),
    );
    const provider = createTokenProvider(target(), deps(clock().now));
    await expect(provider.authorization()).rejects.toMatchObject({ status: 503 });
    expect(await provider.authorization()).toBe('Bearer ok');
  });
});

describe('token endpoint errors', () => {
  const target = () => configFor('RS384').targets.primary[ORG]!;

  async function refusal(status: number, body: (assertion: string) => Record<string, string>): Promise<{ err: OperationOutcomeError; assertion: string }> {
    let assertion = '';
    server.use(
      http.post(TOKEN_URL, async ({ request }) => {
        assertion = new URLSearchParams(await request.text()).get('client_assertion')!;
        return HttpResponse.json(body(assertion), { status });
      }),
    );
    const err = await createTokenProvider(target(), deps(clock().now))
      .authorization()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OperationOutcomeError);
    return { err: err as OperationOutcomeError, assertion };
  }

  it('surfaces the OAuth error of a 400 without the assertion, even when the server echoes it', async () => {
    const { err, assertion } = await refusal(400, (a) => ({ error: 'invalid_client', error_description: `signature check failed for assertion ${a}` }));
    expect(assertion.length).toBeGreaterThan(100);
    expect(err.status).toBe(502);
    expect(err.outcome.issue?.[0]?.code).toBe('login');
    expect(err.message).toMatch(/primary\.974557746.*HTTP 400 invalid_client: signature check failed for assertion \[redacted\]/);
    const text = `${err.message} ${JSON.stringify(err.outcome)} ${String(err.stack)}`;
    for (const part of assertion.split('.')) expect(text).not.toContain(part);
  });

  it('surfaces a 401 as a login problem', async () => {
    const { err } = await refusal(401, () => ({ error: 'invalid_client', error_description: 'unknown kid' }));
    expect(err.status).toBe(502);
    expect(err.outcome.issue?.[0]).toMatchObject({ severity: 'error', code: 'login' });
    expect(err.message).toContain('HTTP 401 invalid_client: unknown kid');
  });

  it('marks a scope refusal as a security problem', async () => {
    const { err } = await refusal(400, () => ({ error: 'invalid_scope' }));
    expect(err.outcome.issue?.[0]?.code).toBe('security');
    expect(err.message).toContain('HTTP 400 invalid_scope');
  });

  it('rejects a success answer without a bearer access_token, without echoing it', async () => {
    const { err } = await refusal(200, () => ({ access_token: 'mac-token-value', token_type: 'mac' }));
    expect(err.status).toBe(502);
    expect(err.message).not.toContain('mac-token-value');
  });

  it('reports an unreachable token endpoint as transient', async () => {
    server.use(http.post(TOKEN_URL, () => HttpResponse.error()));
    const err = await createTokenProvider(target(), deps(clock().now))
      .authorization()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 502 });
    expect((err as OperationOutcomeError).outcome.issue?.[0]?.code).toBe('transient');
  });
});

describe('other auth types', () => {
  const base = { name: 'clinic', baseUrl: 'https://fhir.example/fhir', timeoutMs: 1000 } satisfies Omit<TargetConfig, 'auth'>;
  const noFetch: TokenProviderDeps = { fetch: () => Promise.reject(new Error('no requests expected')), now: Date.now };

  it('gives no Authorization for none', async () => {
    expect(await createTokenProvider({ ...base, auth: { type: 'none' } }, noFetch).authorization()).toBeUndefined();
  });

  it('gives the configured token for bearer', async () => {
    const config = loadConfig({
      API_AUTH: '{"type":"none"}',
      BRIDGE_ENV: 'local',
      FHIR_TARGETS: JSON.stringify({ clinic: { ...base, name: undefined, auth: { type: 'bearer', tokenSecret: 'CLINIC_TOKEN' } } }),
      CLINIC_TOKEN: 'tok-123',
    });
    const provider = createTokenProvider(config.targets.clinic, noFetch);
    expect(await provider.authorization()).toBe('Bearer tok-123');
    provider.invalidate();
    expect(await provider.authorization()).toBe('Bearer tok-123');
  });
});
