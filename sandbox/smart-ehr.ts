/**
 * The sandbox as a psychiatry EHR's SMART authorisation server, so that an EHR launch of the
 * coordination summary runs locally with no account anywhere (SMART App Launch 2.x,
 * https://hl7.org/fhir/smart-app-launch/app-launch.html):
 *
 * - `GET /fhir/.well-known/smart-configuration`: endpoints, capabilities, PKCE S256;
 * - `GET /ehr/launch?patient=<id>&app=<launch URL>`: what the EHR does when a clinician opens the
 *   app for a patient: a one-use `launch` value, then a redirect to the registered app's launch
 *   URL with `iss` and `launch`;
 * - `GET /auth/authorize`: signs in the configured synthetic clinician without any form and
 *   approves, after checking client, redirect URI, `aud`, `launch` and the PKCE S256 challenge;
 * - `POST /auth/token`: the confidential client (client_secret_basic) exchanges its code once,
 *   with the PKCE verifier, for an access token and an id token (ES256, the sandbox's own key
 *   generated at start; `fhirUser` the clinician's Practitioner) and `patient` in context;
 * - `GET /auth/jwks`: the public key.
 *
 * Access tokens it issued are checked when a FHIR request carries one (401 otherwise); requests
 * without a token are served as before (the bridge's own delivery uses none). Everything lives
 * in memory and is lost on close. Test data only: the clinician is synthetic.
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Practitioner } from '@medplum/fhirtypes';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import type { SandboxRepository } from './repository.ts';

/** One app registered with the EHR. */
export interface SmartEhrClient {
  clientId: string;
  clientSecret: string;
  /** The app's redirect URI, matched exactly. */
  redirectUri: string;
  /** The app's launch URL: `/ehr/launch` redirects only there. */
  launchUrl: string;
}

export interface SmartEhrOptions {
  clients: readonly SmartEhrClient[];
  /** The synthetic clinician who is signed in; a psychiatrist by default. */
  clinician?: { given: string[]; family: string };
}

export interface SmartEhr {
  /** The Practitioner id of the signed-in clinician (the id token's `fhirUser`). */
  practitionerId: string;
  /** `GET /ehr/launch` for a patient of this sandbox and an app's launch URL (the first client's by default). */
  launchLink(patientId: string, launchUrl?: string): string;
  /** Handles the SMART routes; false when the request is not one of them. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** For FHIR requests: undefined when allowed, else the status to refuse with. */
  checkBearer(authorization: string | undefined): 401 | undefined;
}

const CODE_SECONDS = 60;
const LAUNCH_SECONDS = 300;
const TOKEN_SECONDS = 300;

const b64url = (buf: Buffer) => buf.toString('base64url');
const rnd = () => b64url(randomBytes(24));
const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, 'cache-control': 'no-store' });
  res.end();
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * The authorisation server of a sandbox whose base URL (`url`, `baseUrl`) is known once it
 * listens; creates the clinician's Practitioner in `repo`.
 */
export async function createSmartEhr(opts: SmartEhrOptions, where: { url: string; baseUrl: string; repo: SandboxRepository }): Promise<SmartEhr> {
  const { url, baseUrl, repo } = where;
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = rnd();
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const clinician = opts.clinician ?? { given: ['Test'], family: 'Psykiater' };
  const practitioner = await repo.createResource<Practitioner>({
    resourceType: 'Practitioner',
    active: true,
    name: [{ use: 'official', given: clinician.given, family: clinician.family }],
  });
  const launches = new Map<string, { patient: string; exp: number }>();
  const codes = new Map<string, { clientId: string; redirectUri: string; challenge: string; nonce?: string; patient: string; scope: string; exp: number }>();
  const tokens = new Map<string, number>();
  const now = () => Date.now();
  const clientOf = (id: string | null) => opts.clients.find((c) => c.clientId === id);
  const fhirUser = `${baseUrl}/Practitioner/${practitioner.id}`;

  const configuration = {
    issuer: baseUrl,
    authorization_endpoint: `${url}/auth/authorize`,
    token_endpoint: `${url}/auth/token`,
    jwks_uri: `${url}/auth/jwks`,
    grant_types_supported: ['authorization_code'],
    response_types_supported: ['code'],
    token_endpoint_auth_methods_supported: ['client_secret_basic'],
    scopes_supported: ['openid', 'fhirUser', 'launch', 'patient/Patient.read', 'patient/*.read'],
    code_challenge_methods_supported: ['S256'],
    capabilities: ['launch-ehr', 'client-confidential-symmetric', 'context-ehr-patient', 'sso-openid-connect', 'permission-patient', 'permission-v2'],
  };

  async function authorize(res: ServerResponse, q: URLSearchParams): Promise<void> {
    const client = clientOf(q.get('client_id'));
    // Without a known client and its exact redirect URI there is nowhere safe to send an error.
    if (!client) return text(res, 400, 'unknown client_id');
    if (q.get('redirect_uri') !== client.redirectUri) return text(res, 400, 'redirect_uri is not the one registered for this client');
    const back = new URL(client.redirectUri);
    const state = q.get('state');
    if (state) back.searchParams.set('state', state);
    const fail = (error: string, description: string) => {
      back.searchParams.set('error', error);
      back.searchParams.set('error_description', description);
      redirect(res, back.href);
    };
    if (q.get('response_type') !== 'code') return fail('unsupported_response_type', 'response_type must be code');
    if (!state) return fail('invalid_request', 'state is required');
    if (q.get('aud') !== baseUrl) return fail('invalid_request', 'aud must be this FHIR server');
    if (q.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(q.get('code_challenge') ?? '')) {
      return fail('invalid_request', 'PKCE with code_challenge_method S256 is required');
    }
    const scopes = (q.get('scope') ?? '').split(' ').filter(Boolean);
    const launch = launches.get(q.get('launch') ?? '');
    if (!scopes.includes('launch') || !launch || launch.exp < now())
      return fail('invalid_request', 'an EHR launch needs the launch scope and a current launch value');
    launches.delete(q.get('launch') as string);
    const code = rnd();
    codes.set(code, {
      clientId: client.clientId,
      redirectUri: client.redirectUri,
      challenge: q.get('code_challenge') as string,
      ...(q.get('nonce') ? { nonce: q.get('nonce') as string } : {}),
      patient: launch.patient,
      scope: scopes.filter((s) => configuration.scopes_supported.includes(s)).join(' '),
      exp: now() + CODE_SECONDS * 1000,
    });
    back.searchParams.set('code', code);
    redirect(res, back.href);
  }

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
    const [id, secret] = basic
      ? Buffer.from(basic[1] as string, 'base64')
          .toString('utf8')
          .split(':')
          .map((s: string) => decodeURIComponent(s))
      : [];
    const client = clientOf(id ?? null);
    if (!client || !secret || !same(secret, client.clientSecret)) {
      res.setHeader('www-authenticate', 'Basic realm="sandbox-ehr"');
      return json(res, 401, { error: 'invalid_client' });
    }
    let form: URLSearchParams;
    try {
      form = await readForm(req);
    } catch {
      return json(res, 400, { error: 'invalid_request' });
    }
    if (form.get('grant_type') !== 'authorization_code') return json(res, 400, { error: 'unsupported_grant_type' });
    const code = form.get('code') ?? '';
    const grant = codes.get(code);
    codes.delete(code);
    if (!grant || grant.exp < now() || grant.clientId !== client.clientId || form.get('redirect_uri') !== grant.redirectUri) {
      return json(res, 400, { error: 'invalid_grant' });
    }
    const verifier = form.get('code_verifier') ?? '';
    if (b64url(createHash('sha256').update(verifier).digest()) !== grant.challenge)
      return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
    const access = rnd();
    tokens.set(access, now() + TOKEN_SECONDS * 1000);
    const scopes = grant.scope.split(' ');
    const idToken = scopes.includes('openid')
      ? await new SignJWT({ ...(scopes.includes('fhirUser') ? { fhirUser } : {}), ...(grant.nonce ? { nonce: grant.nonce } : {}) })
          .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
          .setIssuer(baseUrl)
          .setAudience(client.clientId)
          .setSubject(practitioner.id)
          .setIssuedAt()
          .setExpirationTime(`${TOKEN_SECONDS}s`)
          .sign(privateKey)
      : undefined;
    json(res, 200, {
      access_token: access,
      token_type: 'Bearer',
      expires_in: TOKEN_SECONDS,
      scope: grant.scope,
      patient: grant.patient,
      ...(idToken ? { id_token: idToken } : {}),
    });
  }

  return {
    practitionerId: practitioner.id,
    launchLink(patientId, launchUrl = opts.clients[0]?.launchUrl ?? '') {
      return `${url}/ehr/launch?${new URLSearchParams({ patient: patientId, app: launchUrl })}`;
    },
    checkBearer(authorization) {
      const m = /^Bearer (.+)$/i.exec(authorization ?? '');
      if (!m) return undefined;
      const exp = tokens.get(m[1] as string);
      return exp && exp > now() ? undefined : 401;
    },
    async handle(req, res, u) {
      const method = (req.method ?? 'GET').toUpperCase();
      if (u.pathname === '/fhir/.well-known/smart-configuration' && method === 'GET') {
        json(res, 200, configuration);
        return true;
      }
      if (u.pathname === '/auth/jwks' && method === 'GET') {
        json(res, 200, { keys: [jwk] });
        return true;
      }
      if (u.pathname === '/auth/authorize' && method === 'GET') {
        await authorize(res, u.searchParams);
        return true;
      }
      if (u.pathname === '/auth/token' && method === 'POST') {
        await token(req, res);
        return true;
      }
      if (u.pathname === '/ehr/launch' && method === 'GET') {
        const patient = u.searchParams.get('patient') ?? '';
        const client = opts.clients.find((c) => c.launchUrl === u.searchParams.get('app'));
        // Only a registered app's launch URL: the sandbox is no open redirector.
        if (!client) text(res, 400, 'app is not the launch URL of a registered client');
        else if (!repo.has('Patient', patient)) text(res, 404, 'no such Patient on this server');
        else {
          const launch = rnd();
          launches.set(launch, { patient, exp: now() + LAUNCH_SECONDS * 1000 });
          const to = new URL(client.launchUrl);
          to.searchParams.set('iss', baseUrl);
          to.searchParams.set('launch', launch);
          redirect(res, to.href);
        }
        return true;
      }
      return false;
    },
  };
}
