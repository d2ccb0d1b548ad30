/**
 * Access-token timing (a future `iat`, an `exp` beyond the configured lifetime) and how often
 * the authorisation server's key set is fetched when many tokens with unknown `kid`s arrive
 * at once. The key set is served with msw, which counts the fetches.
 */
import { type CryptoKey, createRemoteJWKSet, customFetch, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { delay, HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createInboundAuthenticator } from '../../src/auth/inbound.ts';
import { loadConfig } from '../../src/config.ts';
import { createApp } from '../../src/http/app.ts';

const JWKS_URL = 'https://auth.example.org/.well-known/jwks.json';
const ISSUER = 'https://auth.example.org';
const AUDIENCE = 'https://bridge.example.org';

const server = setupServer();
let fetches = 0;
let down = false;
let signingKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'as-es', alg: 'ES256', use: 'sig' } as JWK] };
  server.use(
    http.get(JWKS_URL, async () => {
      fetches++;
      // Long enough that every concurrent verification starts while the fetch is under way.
      await delay(100);
      return down ? new HttpResponse(null, { status: 503 }) : HttpResponse.json(jwks);
    }),
  );
  server.listen({ onUnhandledFrame: 'error' });
});
afterEach(() => {
  down = false;
  vi.unstubAllGlobals();
  vi.useRealTimers();
});
afterAll(() => server.close());

const jwtSettings = (extra: Record<string, unknown> = {}) => ({
  API_AUTH: JSON.stringify({ type: 'jwt', jwksUrl: JWKS_URL, issuer: ISSUER, audience: AUDIENCE, ...extra }),
});
const authenticator = (extra: Record<string, unknown> = {}) => createInboundAuthenticator(loadConfig(jwtSettings(extra)).apiAuth);
const now = () => Math.floor(Date.now() / 1000);

/** A correctly signed token whose `iat` and `exp` are `iat` and `exp` seconds from now. */
function token({ iat = 0, exp = 300 }: { iat?: number; exp?: number } = {}): Promise<string> {
  return new SignJWT({ scope: 'system/*.read' })
    .setProtectedHeader({ alg: 'ES256', kid: 'as-es', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject('psychiatry-ehr')
    .setIssuedAt(now() + iat)
    .setExpirationTime(now() + exp)
    .sign(signingKey);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** A token with a `kid` the key set does not have and a signature of random bytes. */
function junkToken(i: number): string {
  const header = b64({ alg: 'ES256', kid: `unknown-${i}-${crypto.randomUUID()}`, typ: 'JWT' });
  const payload = b64({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: now() + 300 });
  return `${header}.${payload}.${Buffer.from(crypto.getRandomValues(new Uint8Array(64))).toString('base64url')}`;
}

/** jose's own test for Cloudflare Workers looks for this global; stubbing it makes Node behave like workerd. */
const likeWorkerd = () => vi.stubGlobal('WebSocketPair', class {});

describe('access-token timing', () => {
  it('refuses an iat an hour or a day in the future, and accepts one within the 30 s tolerance', async () => {
    const auth = authenticator({ maxLifetimeSeconds: 86_400 });
    for (const ahead of [3_600, 86_400 - 400]) {
      const r = await auth.verify(await token({ iat: ahead, exp: ahead + 300 }));
      expect(r).toEqual({ ok: false, reason: 'the access token\'s "iat" claim is in the future' });
    }
    expect((await auth.verify(await token({ iat: 20, exp: 300 }))).ok).toBe(true);
  });

  it('refuses an exp farther ahead than the maximum lifetime (default an hour, or as configured)', async () => {
    const auth = authenticator();
    expect((await auth.verify(await token({ exp: 3_500 }))).ok).toBe(true);
    const far = await auth.verify(await token({ exp: 7_200 }));
    expect(far).toEqual({ ok: false, reason: 'the access token\'s "exp" claim is more than 3600 s ahead (longer than this bridge accepts)' });
    const short = authenticator({ maxLifetimeSeconds: 600 });
    expect((await short.verify(await token({ exp: 500 }))).ok).toBe(true);
    expect((await short.verify(await token({ exp: 900 }))).ok).toBe(false);
  });

  it('answers such tokens 401 with an OperationOutcome and a Bearer challenge, never repeating the token', async () => {
    const app = createApp({ allowSyntheticIds: true, auth: authenticator() });
    for (const jwt of [await token({ iat: 3_600, exp: 3_700 }), await token({ exp: 86_400 })]) {
      const r = await app.request('/v1/Questionnaire', { headers: { authorization: `Bearer ${jwt}` } });
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="imh-bridge", error="invalid_token"');
      const body = await r.text();
      expect(JSON.parse(body)).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'login' }] });
      expect(body).not.toContain(jwt);
    }
  });

  it('checks maxLifetimeSeconds in API_AUTH by path, without echoing it', () => {
    for (const bad of [0, 59, 86_401, 1.5, '3600', -1, 123_456_789]) {
      let error: { outcome: { issue: { expression?: string[]; details?: { text?: string } }[] } } | undefined;
      try {
        loadConfig(jwtSettings({ maxLifetimeSeconds: bad }));
      } catch (e) {
        error = e as typeof error;
      }
      expect(error?.outcome.issue.map((i) => i.expression?.[0])).toEqual(['API_AUTH.maxLifetimeSeconds']);
      expect(error?.outcome.issue[0]?.details?.text).toBe('API_AUTH.maxLifetimeSeconds: must be a whole number of seconds from 60 to 86400');
      if (String(bad).length > 2) expect(JSON.stringify(error?.outcome)).not.toContain(String(bad));
    }
    const config = loadConfig(jwtSettings({ maxLifetimeSeconds: 900 }));
    expect(config.apiAuth).toMatchObject({ type: 'jwt', maxLifetimeSeconds: 900 });
  });
});

describe('key-set fetches for tokens with unknown kids', () => {
  const verifyAll = (auth: ReturnType<typeof authenticator>, n: number) => Promise.all(Array.from({ length: n }, (_, i) => auth.verify(junkToken(i))));

  it('why: in workerd, jose fetches once per concurrent caller (it does not share a Response across requests)', async () => {
    likeWorkerd();
    const keys = createRemoteJWKSet(new URL(JWKS_URL), { [customFetch]: (...a: Parameters<typeof fetch>) => fetch(...a) });
    const before = fetches;
    const header = (i: number) => ({ alg: 'ES256', kid: `unknown-${i}` });
    await Promise.allSettled(Array.from({ length: 50 }, (_, i) => keys(header(i), { payload: '', signature: '' } as never)));
    expect(fetches - before).toBe(50);
  });

  for (const runtime of ['workerd', 'Node'] as const) {
    it(`50 concurrent tokens cause one fetch, and none more within the cooldown (${runtime})`, async () => {
      if (runtime === 'workerd') likeWorkerd();
      const auth = authenticator();
      const before = fetches;
      const results = await verifyAll(auth, 50);
      expect(fetches - before).toBe(1);
      for (const r of results) expect(r).toEqual({ ok: false, reason: 'the access token is not signed by a key of the configured issuer' });
      await verifyAll(auth, 50);
      expect(fetches - before).toBe(1);
      // A good token still verifies from the cached set.
      expect((await auth.verify(await token())).ok).toBe(true);
      expect(fetches - before).toBe(1);
    });
  }

  it('after the 30 s cooldown, the next 50 concurrent tokens cause one more fetch', async () => {
    likeWorkerd();
    vi.useFakeTimers({ toFake: ['Date'] });
    const auth = authenticator();
    const before = fetches;
    await verifyAll(auth, 50);
    expect(fetches - before).toBe(1);
    vi.setSystemTime(Date.now() + 31_000);
    await verifyAll(auth, 50);
    expect(fetches - before).toBe(2);
  });

  it('when the key set cannot be fetched, 50 concurrent tokens share one failed fetch and are answered unavailable', async () => {
    likeWorkerd();
    down = true;
    const auth = authenticator();
    const before = fetches;
    const results = await verifyAll(auth, 50);
    expect(fetches - before).toBe(1);
    for (const r of results) expect(r).toMatchObject({ ok: false, unavailable: true });
  });

  it('50 concurrent valid tokens on a cold cache cause one fetch and all verify', async () => {
    likeWorkerd();
    const auth = authenticator();
    const before = fetches;
    const tokens = await Promise.all(Array.from({ length: 50 }, () => token()));
    const results = await Promise.all(tokens.map((t) => auth.verify(t)));
    expect(fetches - before).toBe(1);
    expect(results.every((r) => r.ok)).toBe(true);
  });
});
