/**
 * The sandbox as a psychiatry EHR's SMART authorisation server (sandbox/smart-ehr.ts): a
 * correct EHR launch gets a code and then tokens (the id token verifies against its JWKS), and
 * what a real authorisation server refuses, it refuses: unregistered apps and redirect URIs, a
 * launch without PKCE S256, a wrong client secret, a wrong verifier, a code used twice; and the
 * access tokens it issued are checked on FHIR reads.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Patient } from '@medplum/fhirtypes';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';

const APP = 'https://app.example';
const client = { clientId: 'app-1', clientSecret: 'sandbox-secret-for-tests-0123456789', redirectUri: `${APP}/callback`, launchUrl: `${APP}/launch` };
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const verifier = randomBytes(32).toString('base64url');
const challenge = createHash('sha256').update(verifier).digest('base64url');

describe('the sandbox EHR (SMART authorisation server)', () => {
  let ehr: Sandbox;
  let patientId: string;

  beforeAll(async () => {
    ehr = await startSandbox({ smart: { clients: [client] } });
    patientId = (await ehr.repo.createResource<Patient>({ resourceType: 'Patient', name: [{ family: 'Test' }] })).id;
  });
  afterAll(() => ehr?.close());

  /** `/ehr/launch` → the app's launch URL with iss and launch. */
  async function launchValue(): Promise<string> {
    const res = await fetch(ehr.smart?.launchLink(patientId) as string, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const to = new URL(res.headers.get('location') as string);
    expect(to.origin + to.pathname).toBe(client.launchUrl);
    expect(to.searchParams.get('iss')).toBe(ehr.baseUrl);
    return to.searchParams.get('launch') as string;
  }

  async function authorize(overrides: Record<string, string> = {}): Promise<Response> {
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: client.clientId,
      redirect_uri: client.redirectUri,
      scope: 'launch openid fhirUser patient/Patient.read',
      state: 'st-1',
      aud: ehr.baseUrl,
      launch: await launchValue(),
      nonce: 'n-1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...overrides,
    });
    return fetch(`${ehr.url}/auth/authorize?${q}`, { redirect: 'manual' });
  }

  const token = (code: string, opts: { secret?: string; verifier?: string } = {}) =>
    fetch(`${ehr.url}/auth/token`, {
      method: 'POST',
      headers: { authorization: basic(client.clientId, opts.secret ?? client.clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: opts.verifier ?? verifier }),
    });

  async function code(): Promise<string> {
    const res = await authorize();
    const back = new URL(res.headers.get('location') as string);
    expect(back.searchParams.get('state')).toBe('st-1');
    return back.searchParams.get('code') as string;
  }

  it('advertises its endpoints and PKCE S256', async () => {
    const conf = (await (await fetch(`${ehr.baseUrl}/.well-known/smart-configuration`)).json()) as Record<string, unknown>;
    expect(conf).toMatchObject({
      issuer: ehr.baseUrl,
      authorization_endpoint: `${ehr.url}/auth/authorize`,
      token_endpoint: `${ehr.url}/auth/token`,
      code_challenge_methods_supported: ['S256'],
    });
    expect(conf.capabilities).toContain('launch-ehr');
  });

  it('signs the clinician in, issues tokens for the patient in context once, and accepts its access token on FHIR reads', async () => {
    const c = await code();
    const res = await token(c);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { access_token: string; id_token: string; patient: string; token_type: string };
    expect(body.patient).toBe(patientId);
    expect(body.token_type).toBe('Bearer');
    const jwks = (await (await fetch(`${ehr.url}/auth/jwks`)).json()) as Parameters<typeof createLocalJWKSet>[0];
    const { payload } = await jwtVerify(body.id_token, createLocalJWKSet(jwks), { issuer: ehr.baseUrl, audience: client.clientId });
    expect(payload).toMatchObject({ nonce: 'n-1', fhirUser: `${ehr.baseUrl}/Practitioner/${ehr.smart?.practitionerId}`, sub: ehr.smart?.practitionerId });
    const read = await fetch(`${ehr.baseUrl}/Patient/${patientId}`, { headers: { authorization: `Bearer ${body.access_token}` } });
    expect(read.status).toBe(200);
    expect((await fetch(`${ehr.baseUrl}/Patient/${patientId}`, { headers: { authorization: 'Bearer forged' } })).status).toBe(401);
    // A code is good once.
    expect((await token(c)).status).toBe(400);
  });

  it('refuses a wrong client secret (401) and a wrong PKCE verifier (400)', async () => {
    expect((await token(await code(), { secret: 'wrong-secret' })).status).toBe(401);
    const res = await token(await code(), { verifier: randomBytes(32).toString('base64url') });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('sends nowhere an unknown client or redirect URI, and sends back an error for a launch without S256 or for another aud', async () => {
    expect((await authorize({ client_id: 'nobody' })).status).toBe(400);
    expect((await authorize({ redirect_uri: 'https://evil.example/callback' })).status).toBe(400);
    for (const bad of [{ code_challenge_method: 'plain' }, { aud: 'https://other.example/fhir' }, { launch: 'made-up' }] as Record<string, string>[]) {
      const res = await authorize(bad);
      expect(res.status).toBe(302);
      const back = new URL(res.headers.get('location') as string);
      expect(back.origin + back.pathname).toBe(client.redirectUri);
      expect(back.searchParams.get('error')).toBe('invalid_request');
      expect(back.searchParams.get('code')).toBeNull();
    }
  });

  it('launches only registered apps and existing patients', async () => {
    expect(
      (await fetch(`${ehr.url}/ehr/launch?patient=${patientId}&app=${encodeURIComponent('https://evil.example/launch')}`, { redirect: 'manual' })).status,
    ).toBe(400);
    expect((await fetch(ehr.smart?.launchLink('no-such-patient') as string, { redirect: 'manual' })).status).toBe(404);
  });
});
