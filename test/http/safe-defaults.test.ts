/**
 * Inside workerd: the Worker refuses to run open unless local development says so, and
 * concurrent tokens with unknown `kid`s share one key-set fetch in the runtime where jose on
 * its own fetches once per caller.
 */
import { createExecutionContext, env } from 'cloudflare:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createInboundAuthenticator } from '../../src/auth/inbound.ts';
import { loadConfig } from '../../src/config.ts';
import worker from '../../src/worker.ts';
import { PRODUCTION_IDENTITY } from '../fixtures/production.ts';

type Env = typeof env;
const call = (path: string, e: Record<string, unknown>) =>
  worker.fetch(new Request(`http://bridge${path}`) as Parameters<typeof worker.fetch>[0], e as Env, createExecutionContext());

interface Outcome {
  resourceType: string;
  issue: { expression?: string[]; details?: { text?: string } }[];
}

describe('safe by default (inside workerd)', () => {
  it('these tests run with [env.local]: local development, open API', () => {
    expect([env.BRIDGE_ENV, env.API_AUTH]).toEqual(['local', '{"type":"none"}']);
  });

  it('answers every request 500 naming API_AUTH with the top-level vars of a plain `wrangler deploy` (none)', async () => {
    const plain = { ...env, API_AUTH: undefined, BRIDGE_ENV: undefined, ALLOW_SYNTHETIC_IDS: undefined };
    for (const path of ['/healthz', '/v1/Questionnaire', '/v1/jobs']) {
      const r = await call(path, plain);
      expect(r.status, path).toBe(500);
      expect(r.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
      const o = (await r.json()) as Outcome;
      expect(o.resourceType).toBe('OperationOutcome');
      expect(o.issue.map((i) => i.expression?.[0])).toEqual(['API_AUTH']);
    }
  });

  it('refuses an open API without BRIDGE_ENV "local", also in production', async () => {
    const production = {
      ...env,
      ...PRODUCTION_IDENTITY,
    };
    for (const e of [{ ...env, BRIDGE_ENV: undefined }, production, { ...production, BRIDGE_ENV: 'local' }]) {
      const r = await call('/v1/Questionnaire', e);
      expect(r.status).toBe(500);
      const o = (await r.json()) as Outcome;
      expect(o.issue.map((i) => i.expression?.[0])).toContain('API_AUTH');
    }
  });

  it('answers 500 naming FHIR_TARGETS in production without it, instead of delivering to the local sandbox', async () => {
    const token = 'test-api-token-0123456789abcdefghijkl';
    const production = {
      ...env,
      ...PRODUCTION_IDENTITY,
      API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
      API_TOKENS: token,
      DATA_ENCRYPTION_KEYS: JSON.stringify([{ kid: 'test-1', k: 'x'.repeat(43) }]),
      FHIR_TARGETS: undefined,
    };
    const r = await call('/v1/Questionnaire', production);
    expect(r.status).toBe(500);
    const o = (await r.json()) as Outcome;
    expect(o.issue.map((i) => i.expression?.[0])).toEqual(['FHIR_TARGETS']);
    expect(o.issue[0]?.details?.text).toMatch(/sandbox/);
    // The same deployment with its targets set serves (an authenticated read).
    const served = await worker.fetch(
      new Request('http://bridge/v1/Questionnaire', { headers: { authorization: `Bearer ${token}` } }) as Parameters<typeof worker.fetch>[0],
      { ...production, FHIR_TARGETS: env.FHIR_TARGETS } as Env,
      createExecutionContext(),
    );
    expect(served.status).toBe(200);
  });
});

describe('key-set fetches (inside workerd)', () => {
  it('50 concurrent tokens with unknown kids and junk signatures cause one fetch', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'as-es', alg: 'ES256' }] };
    let fetches = 0;
    const countingFetch: typeof fetch = async () => {
      fetches++;
      await new Promise((r) => setTimeout(r, 50));
      return Response.json(jwks);
    };
    const config = loadConfig({
      API_AUTH: JSON.stringify({
        type: 'jwt',
        jwksUrl: 'https://auth.example.org/jwks',
        issuer: 'https://auth.example.org',
        audience: 'https://bridge.example.org',
      }),
    });
    const auth = createInboundAuthenticator(config.apiAuth, { fetch: countingFetch });
    const b64 = (v: unknown) => btoa(JSON.stringify(v)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
    const exp = Math.floor(Date.now() / 1000) + 300;
    const junk = (i: number) =>
      `${b64({ alg: 'ES256', kid: `unknown-${i}` })}.${b64({ iss: 'https://auth.example.org', aud: 'https://bridge.example.org', exp })}.${'A'.repeat(86)}`;

    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => auth.verify(junk(i))));
    expect(fetches).toBe(1);
    expect(results.every((r) => !r.ok && /not signed by a key of the configured issuer/.test(r.reason))).toBe(true);

    const good = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'as-es' })
      .setIssuer('https://auth.example.org')
      .setAudience('https://bridge.example.org')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(pair.privateKey);
    expect((await auth.verify(good)).ok).toBe(true);
    expect(fetches).toBe(1);
  });
});
