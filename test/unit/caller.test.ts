/**
 * Each job records who submitted it, through the real app, auth middleware and delivery
 * service over MemoryStore: a static token's configured name (or its short digest), a
 * JWT's client id (client_id, then azp, then sub), `local` where the API is open. Never
 * the token itself.
 */
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInboundAuthenticator } from '../../src/auth/inbound.ts';
import { loadConfig } from '../../src/config.ts';
import { isOperationOutcomeError } from '../../src/fhir/outcome.ts';
import { createApp } from '../../src/http/app.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService } from '../../src/sync/service.ts';
import { plannedMinimal } from '../fixtures/examples.ts';

const JWKS_URL = 'https://auth.example.org/.well-known/jwks.json';
const ISSUER = 'https://auth.example.org';
const AUDIENCE = 'https://bridge.example.org';
const T1 = 'api-token-one-7Gk2Lq9Xv4Nw8Rz1Tb6Yc3';
const T2 = 'api-token-two-Hm5Pd2Js8Wf1Ke7Ua4Qo9';

const server = setupServer();
let signingKey: CryptoKey;
beforeAll(async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  signingKey = privateKey;
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'as-1', alg: 'ES384', use: 'sig' }] };
  server.use(http.get(JWKS_URL, () => HttpResponse.json(jwks)));
  server.listen({ onUnhandledFrame: 'error' });
});
afterAll(() => server.close());

function accessToken(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ scope: 'system/*.read system/*.write', ...claims })
    .setProtectedHeader({ alg: 'ES384', kid: 'as-1' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(signingKey);
}

function bridge(env: Record<string, string>) {
  const config = loadConfig(env);
  const store = new MemoryStore();
  const service = createDeliveryService(store, { send: async () => undefined });
  const app = createApp({ allowSyntheticIds: true, auth: createInboundAuthenticator(config.apiAuth), delivery: () => service });
  return { app, store };
}

const headers = (bearer?: string, type = 'application/json') => ({ 'content-type': type, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) });

/** PUTs an episode and answers the job view and the stored job. */
async function submit(b: ReturnType<typeof bridge>, bearer?: string, episodeId = 'VG-CALLER-1') {
  const r = await b.app.request(`/v1/episodes/${episodeId}`, {
    method: 'PUT',
    headers: headers(bearer),
    body: JSON.stringify({ ...plannedMinimal(), episodeId }),
  });
  expect(r.status).toBe(202);
  const text = await r.text();
  const view = JSON.parse(text) as { id: string; caller?: string };
  return { view, text, stored: await b.store.getJob(view.id) };
}

const sha256Hex = async (s: string) =>
  [...new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s)))].map((x) => x.toString(16).padStart(2, '0')).join('');

describe('the caller recorded on each job', () => {
  it('is the configured name of the static token, on PUT and on every $import line, never the token', async () => {
    const b = bridge({ API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: JSON.stringify({ 'journal-north': T1, 'journal-south': T2 }) });
    const one = await submit(b, T1);
    expect(one.view.caller).toBe('journal-north');
    expect(one.stored?.caller).toBe('journal-north');
    expect(one.text).not.toContain(T1);
    expect(JSON.stringify(one.stored)).not.toContain(T1);

    const body = [1, 2].map((i) => JSON.stringify({ ...plannedMinimal(), episodeId: `VG-IMPORT-${i}` })).join('\n');
    const r = await b.app.request('/v1/episodes/$import', { method: 'POST', headers: headers(T2, 'application/x-ndjson'), body });
    const lines = (await r.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { jobId: string });
    expect(lines).toHaveLength(2);
    for (const l of lines) expect((await b.store.getJob(l.jobId))?.caller).toBe('journal-south');

    // Each caller is its own tenant: the list shows its own jobs only.
    const listed = (await (await b.app.request('/v1/jobs', { headers: headers(T1) })).json()) as { jobs: { caller: string }[] };
    expect(listed.jobs.map((j) => j.caller)).toEqual(['journal-north']);
    const south = (await (await b.app.request('/v1/jobs', { headers: headers(T2) })).json()) as { jobs: { caller: string }[] };
    expect(south.jobs.map((j) => j.caller)).toEqual(['journal-south', 'journal-south']);
  });

  it('is a short digest of an unnamed static token: stable, distinct per token, not the token', async () => {
    const b = bridge({ API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: `${T1},${T2}` });
    const one = await submit(b, T1, 'VG-CALLER-1');
    const two = await submit(b, T2, 'VG-CALLER-2');
    expect(one.view.caller).toBe(`token:${(await sha256Hex(T1)).slice(0, 12)}`);
    expect(two.view.caller).toBe(`token:${(await sha256Hex(T2)).slice(0, 12)}`);
    expect(one.view.caller).not.toBe(two.view.caller);
    expect(one.text).not.toContain(T1);
  });

  it("is the access token's client_id, else azp, else sub", async () => {
    const b = bridge({ API_AUTH: JSON.stringify({ type: 'jwt', jwksUrl: JWKS_URL, issuer: ISSUER, audience: AUDIENCE }) });
    const withClientId = await accessToken({ client_id: 'clinic-journal', azp: 'other', sub: 'service-account-7' });
    const withAzp = await accessToken({ azp: 'psychiatry-ehr', sub: 'service-account-8' });
    const withSub = await accessToken({ sub: 'service-account-9' });
    expect((await submit(b, withClientId, 'VG-JWT-1')).view.caller).toBe('clinic-journal');
    expect((await submit(b, withAzp, 'VG-JWT-2')).view.caller).toBe('psychiatry-ehr');
    const bySub = await submit(b, withSub, 'VG-JWT-3');
    expect(bySub.view.caller).toBe('service-account-9');
    expect(JSON.stringify(bySub.stored)).not.toContain(withSub);
  });

  it('is `local` where the API is open', async () => {
    const b = bridge({ API_AUTH: '{"type":"none"}', BRIDGE_ENV: 'local' });
    expect((await submit(b)).stored?.caller).toBe('local');
  });
});

describe('static token names in the tokens secret', () => {
  const failure = (tokens: string) => {
    try {
      loadConfig({ API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: tokens });
    } catch (e) {
      if (!isOperationOutcomeError(e)) throw e;
      return e.outcome.issue.map((i) => `${i.expression?.[0]} ${i.details?.text}`).join('\n');
    }
    throw new Error('expected a configuration error');
  };

  it('refuses a bad name or one token under two names, without echoing names or tokens', () => {
    const bad = failure(JSON.stringify({ 'journal north!': T1 }));
    expect(bad).toMatch(/^API_AUTH\.tokensSecret .*token 1 .*has a name that is not/);
    expect(bad).not.toContain('journal north');
    expect(bad).not.toContain(T1);

    const twice = failure(JSON.stringify({ a: T1, b: T1 }));
    expect(twice).toMatch(/token 2 .*same token as another one with a different name/);
    expect(twice).not.toContain(T1);

    const notString = failure(JSON.stringify({ a: 42 }));
    expect(notString).toMatch(/token 1 .*is not a string/);
  });

  it('keeps each name beside its token', () => {
    const { apiAuth } = loadConfig({ API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: JSON.stringify({ north: T1, south: T2 }) });
    expect(apiAuth.type === 'bearer' && apiAuth.tokens.reveal()).toEqual([T1, T2]);
    expect(apiAuth.type === 'bearer' && apiAuth.names).toEqual(['north', 'south']);
    expect(JSON.stringify(apiAuth)).not.toContain(T1);
  });
});
