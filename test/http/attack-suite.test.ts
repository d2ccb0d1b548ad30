/**
 * The attack suite of issue 8, inside workerd: every case an attacker tried (those that held
 * before and those that did not) sent to the Worker in both authentication modes, static
 * bearer tokens with names and JWT access tokens verified against a JWKS. For each answer:
 * the status, an OperationOutcome with the expected code where the answer is a refusal,
 * `Cache-Control: no-store` under /v1, and no patient data of the example episodes in the
 * body or the headers. Logs are collected for the whole run and checked last.
 *
 * Narrower tests of the same rules: test/http/hostile-input.test.ts, tenancy.test.ts,
 * safe-defaults.test.ts, and test/unit/inbound-auth.test.ts.
 */
import { createExecutionContext, env } from 'cloudflare:test';
import type { Bundle, QuestionnaireResponse } from '@medplum/fhirtypes';
import { base64url, exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import activeFather from '../../examples/active-father-no-consent.episode.json';
import completed from '../../examples/completed-mother.episode.json';
import planned from '../../examples/planned-minimal.episode.json';
import { loadConfig } from '../../src/config.ts';
import { mapEpisode } from '../../src/index.ts';
import { DataCipher } from '../../src/sync/crypto.ts';
import { D1Store } from '../../src/sync/d1-store.ts';
import { attemptJob, submitEpisode } from '../../src/sync/deliver.ts';
import { clientFactory } from '../../src/sync/targets.ts';
import type { NewJob } from '../../src/sync/types.ts';
import worker from '../../src/worker.ts';
import { capabilityStatement } from '../fixtures/capability.ts';

type Env = typeof env;
type Outcome = { resourceType: string; issue: { severity: string; code: string; diagnostics?: string; details?: { text?: string }; expression?: string[] }[] };

// ---------------------------------------------------------------------------------------
// Patient data: what no answer and no log line may carry.

type Episode = typeof completed | typeof activeFather | typeof planned;
/** National ids, names, phone numbers, birth dates and free text of the example episodes. */
function patientData(e: Episode): string[] {
  const x = e as unknown as {
    parent: { nationalId: string; given: string[]; family: string; phone?: string; birthDate: string };
    infants: { nationalId?: string; given: string[]; family: string }[];
    referral?: { reason?: string };
    sessions?: { note?: string }[];
    goals?: { description?: string }[];
    primaryTreatment?: { contact?: { phone?: string } };
  };
  const out = [x.parent.nationalId, x.parent.family, ...x.parent.given, x.parent.birthDate];
  if (x.parent.phone) out.push(x.parent.phone, x.parent.phone.replace(/\D/g, ''));
  for (const i of x.infants) {
    if (i.nationalId) out.push(i.nationalId);
    // "Baby" is a placeholder, no name.
    out.push(i.family, ...i.given.filter((g) => g !== 'Baby'));
  }
  if (x.referral?.reason) out.push(x.referral.reason.slice(0, 40));
  for (const s of x.sessions ?? []) if (s.note) out.push(s.note.slice(0, 40));
  for (const g of x.goals ?? []) if (g.description) out.push(g.description.slice(0, 40));
  return out;
}
/** Names of three letters ("Per") would match ordinary words; every other piece is kept. */
const PATIENT_DATA = [...new Set([completed, activeFather, planned].flatMap(patientData))].filter((s) => s.length >= 4);

/** Fails naming the first piece of patient data `text` carries (raw, or once JSON escapes are undone). */
function expectNoPatientData(text: string, where: string): void {
  const variants = [text];
  try {
    variants.push(JSON.stringify(JSON.parse(text)));
  } catch {
    // Not JSON (NDJSON, HTML): the raw text is what a reader sees.
  }
  for (const v of variants) for (const s of PATIENT_DATA) expect(v, `${where} carries "${s}"`).not.toContain(s);
}

interface Answer {
  status: number;
  text: string;
  headers: Headers;
  json: () => unknown;
}

/** Reads an answer once; asserts no-store under /v1 and no patient data in its headers and body. */
async function read(r: Response, path: string): Promise<Answer> {
  // Bytes, decoded here: workerd warns when .text() meets a type it does not call text (NDJSON).
  const text = new TextDecoder().decode(await r.arrayBuffer());
  const headers: string[] = [];
  r.headers.forEach((v, k) => headers.push(`${k}: ${v}`));
  expectNoPatientData(headers.join('\n'), `headers of ${path}`);
  expectNoPatientData(text, `body of ${path}`);
  if (path.startsWith('/v1/')) expect(r.headers.get('cache-control'), `cache-control of ${path}`).toBe('no-store');
  return { status: r.status, text, headers: r.headers, json: () => JSON.parse(text) };
}

/** Asserts a refusal: `status`, a FHIR OperationOutcome whose first issue has `code`; returns it. */
function refused(a: Answer, status: number, code: string): Outcome {
  expect([a.status, a.text.slice(0, 300)]).toEqual([status, expect.any(String)]);
  expect(a.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  const o = a.json() as Outcome;
  expect(o.resourceType).toBe('OperationOutcome');
  expect(o.issue[0]?.code).toBe(code);
  return o;
}

// ---------------------------------------------------------------------------------------
// The two authentication modes.

const ISSUER = 'https://auth.attack.example';
const AUDIENCE = 'https://bridge.attack.example';
const JWKS_URL = `${ISSUER}/.well-known/jwks.json`;

let signingKey: CryptoKey;
let publicJwk: JWK;
let attacker: CryptoKeyPair;
let attackerJwk: JWK;
let jwksFetches = 0;
/** URLs the Worker tried to fetch other than the JWKS and the local sandbox (jku, x5u…). */
const strayFetches: string[] = [];
const logs: string[] = [];

const b64 = (v: unknown) => base64url.encode(new TextEncoder().encode(JSON.stringify(v)));
/** A compact JWS over any header, signed ES256 with `key` (WebCrypto's P1363 signature is the JWS form). */
async function es256(header: Record<string, unknown>, payload: Record<string, unknown>, key: CryptoKey): Promise<string> {
  const input = `${b64(header)}.${b64(payload)}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, new TextEncoder().encode(input));
  return `${input}.${base64url.encode(new Uint8Array(sig))}`;
}
const nowS = () => Math.floor(Date.now() / 1000);
const claims = (client: string, extra: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  aud: AUDIENCE,
  client_id: client,
  sub: client,
  scope: 'system/*.read system/*.write',
  iat: nowS(),
  exp: nowS() + 300,
  jti: crypto.randomUUID(),
  ...extra,
});

interface Mode {
  name: 'bearer' | 'jwt';
  env: Env;
  /** Tenant names: the static token's name, or the JWT's client_id. */
  north: string;
  west: string;
  /** A credential of a caller of tenant `who`. */
  credential(who: string): Promise<string>;
  /** Environment variables selecting this mode, for other configurations (production). */
  auth: Record<string, string>;
}

const BEARER_TOKENS: Record<string, string> = {
  'atk-bearer-north': 'attack-suite-token-north-9Qm3Lr7Xc2Vb',
  'atk-bearer-west': 'attack-suite-token-west-4Hs8Pn1Ky6Td',
};
const bearerAuth = { API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: JSON.stringify(BEARER_TOKENS) };
const jwtAuth = { API_AUTH: JSON.stringify({ type: 'jwt', jwksUrl: JWKS_URL, issuer: ISSUER, audience: AUDIENCE, maxLifetimeSeconds: 3600 }) };

const MODES: Mode[] = [
  {
    name: 'bearer',
    env: { ...env, ...bearerAuth } as Env,
    north: 'atk-bearer-north',
    west: 'atk-bearer-west',
    credential: async (who) => BEARER_TOKENS[who]!,
    auth: bearerAuth,
  },
  {
    name: 'jwt',
    env: { ...env, ...jwtAuth } as Env,
    north: 'atk-jwt-north',
    west: 'atk-jwt-west',
    credential: (who) => es256({ alg: 'ES256', kid: 'as-es', typ: 'JWT' }, claims(who), signingKey),
    auth: jwtAuth,
  },
];

/** One request to the Worker in `e`; `token` as `Authorization: Bearer`. */
async function call(e: Env, path: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const { token, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
  if (rest.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
  return worker.fetch(new Request(`http://bridge${path}`, { ...rest, headers }) as Parameters<typeof worker.fetch>[0], e, createExecutionContext());
}
/** `call` as the mode's `who`, read and checked. */
async function as(m: Mode, who: string, path: string, init: RequestInit = {}, e: Env = m.env): Promise<Answer> {
  return read(await call(e, path, { ...init, token: await m.credential(who) }), path);
}

// ---------------------------------------------------------------------------------------
// Jobs of tenant north, made without the queue (so no consumer races the test).

const store = () => new D1Store(env.DB, new DataCipher(loadConfig(env as never).dataKeys.reveal()));

/** Records a job for `episode` owned by `tenant`, as PUT /v1/episodes/{id} would. */
async function jobOf(tenant: string, episode: Record<string, unknown>): Promise<string> {
  const s = store();
  const create = s.createJob.bind(s);
  s.createJob = (j: NewJob) => create({ ...j, tenant, caller: tenant });
  return (await submitEpisode(episode, { store: s, now: Date.now, newId: () => crypto.randomUUID() })).id;
}

/** A FHIR server that refuses every write quoting the patient it was sent, as real ones do. */
const quotingServer: typeof fetch = async (input) => {
  const url = input instanceof Request ? input.url : String(input);
  if (url.endsWith('/metadata')) {
    return Response.json(capabilityStatement());
  }
  const p = completed.parent;
  const quoted = `Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|${p.nationalId} matches ${p.given[0]} ${p.family} (born ${p.birthDate}, tel ${p.phone}); child ${completed.infants[0]!.nationalId} ${completed.infants[0]!.given[0]}`;
  return new Response(
    JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'business-rule', diagnostics: quoted, details: { text: quoted } }] }),
    {
      status: 422,
      headers: { 'content-type': 'application/fhir+json' },
    },
  );
};

interface Fixture {
  /** North's job whose delivery the server refused, quoting the patient. */
  failed: string;
  /** North's job still queued. */
  queued: string;
}
const fixtures = new Map<Mode['name'], Fixture>();

// ---------------------------------------------------------------------------------------

beforeAll(async () => {
  const pair = (await generateKeyPair('ES256', { extractable: true })) as CryptoKeyPair;
  signingKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'as-es', alg: 'ES256', use: 'sig' };
  attacker = (await generateKeyPair('ES256', { extractable: true })) as CryptoKeyPair;
  attackerJwk = await exportJWK(attacker.publicKey);

  const realFetch = globalThis.fetch;
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url === JWKS_URL) {
      jwksFetches++;
      // Slow enough that concurrent requests overlap.
      await new Promise((r) => setTimeout(r, 50));
      return Response.json({ keys: [publicJwk] });
    }
    if (new URL(url).hostname === '127.0.0.1') return realFetch(input, init);
    strayFetches.push(url);
    return new Response('not here', { status: 404 });
  });
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      logs.push(args.map((a) => (typeof a === 'string' ? a : a instanceof Error ? `${a.name}: ${a.message}\n${a.stack}` : JSON.stringify(a))).join(' '));
    });
  }

  for (const m of MODES) {
    const failed = await jobOf(m.north, { ...completed, episodeId: `ATK-${m.name}-FAILED` });
    await attemptJob(failed, {
      store: store(),
      clientFor: clientFactory(loadConfig(env as never), quotingServer),
      now: Date.now,
      random: Math.random,
      newId: () => crypto.randomUUID(),
    });
    const queued = await jobOf(m.north, { ...activeFather, episodeId: `ATK-${m.name}-QUEUED` });
    fixtures.set(m.name, { failed, queued });
  }
});

afterAll(() => {
  vi.restoreAllMocks();
});

/** The completed example's EPDS response as a form renderer sends it to $extract. */
function rendererResponse(): QuestionnaireResponse & Record<string, unknown> {
  const bundle = mapEpisode(structuredClone(completed)) as Bundle;
  const qr = bundle.entry?.map((e) => e.resource).find((r) => r?.resourceType === 'QuestionnaireResponse') as QuestionnaireResponse;
  return JSON.parse(JSON.stringify(qr).replace(/"reference":"urn:uuid:[^"]+"/g, '"reference":"Patient/p-1"')) as QuestionnaireResponse &
    Record<string, unknown>;
}

const encode = (s: string) => new TextEncoder().encode(s);
/** A body streamed in chunks without Content-Length (chunked transfer). */
function chunked(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  const chunk = encode(' '.repeat(64 * 1024));
  return new ReadableStream({
    pull(controller) {
      if (sent === 0) controller.enqueue(encode('{"schemaVersion":"1.0","padding":"'));
      if (sent >= total) {
        controller.enqueue(encode('"}'));
        controller.close();
        return;
      }
      controller.enqueue(chunk);
      sent += chunk.length;
    },
  });
}

/** A production deployment (real national ids) authenticating as `m` does. */
const production = (m: Mode, extra: Record<string, unknown> = {}) =>
  ({
    ...env,
    ...m.auth,
    BRIDGE_ENV: 'production',
    ALLOW_SYNTHETIC_IDS: 'false',
    IDENTIFIER_NAMESPACE: 'https://fhir.clinic.example/sid',
    IDENTITY_SECRET: 'attack-suite-identity-secret-0123456789',
    DATA_ENCRYPTION_KEYS: JSON.stringify([{ kid: 'atk-1', k: base64url.encode(new Uint8Array(32).fill(7)) }]),
    ...extra,
  }) as Env;

// ---------------------------------------------------------------------------------------
// The cases. `held`: whether the issue found it holding before; each runs in both modes.

interface Case {
  name: string;
  held: boolean;
  run(m: Mode): Promise<void>;
}

const missingJobBody = async (m: Mode) => (await as(m, m.west, `/v1/jobs/${crypto.randomUUID()}`)).text;

const CASES: Case[] = [
  // --- Tenant crossing
  {
    name: 'tenant crossing: another tenant reading a job gets the 404 of a job that does not exist',
    held: false,
    async run(m) {
      const { failed } = fixtures.get(m.name)!;
      const a = await as(m, m.west, `/v1/jobs/${failed}`);
      refused(a, 404, 'not-found');
      expect(a.text).toBe(await missingJobBody(m));
      expect((await as(m, m.north, `/v1/jobs/${failed}`)).status).toBe(200);
    },
  },
  {
    name: "tenant crossing: another tenant's list does not show the jobs",
    held: false,
    async run(m) {
      const { failed, queued } = fixtures.get(m.name)!;
      const west = await as(m, m.west, '/v1/jobs?limit=1000');
      expect(west.status).toBe(200);
      const ids = (west.json() as { jobs: { id: string }[] }).jobs.map((j) => j.id);
      expect(ids).not.toContain(failed);
      expect(ids).not.toContain(queued);
      const north = (await as(m, m.north, '/v1/jobs?limit=1000')).json() as { jobs: { id: string }[] };
      expect(north.jobs.map((j) => j.id)).toEqual(expect.arrayContaining([failed, queued]));
    },
  },
  {
    name: "tenant crossing: $replay of another tenant's running job tells nothing of its state (404, not 409)",
    held: false,
    async run(m) {
      const { queued } = fixtures.get(m.name)!;
      const a = await as(m, m.west, `/v1/jobs/${queued}/$replay`, { method: 'POST' });
      refused(a, 404, 'not-found');
      expect(a.text).toBe(await missingJobBody(m));
      // Its owner learns the state, as it may.
      refused(await as(m, m.north, `/v1/jobs/${queued}/$replay`, { method: 'POST' }), 409, 'conflict');
    },
  },
  {
    name: 'tenant crossing: another tenant cannot re-send a failed job ($replay 404, the job stays failed)',
    held: false,
    async run(m) {
      const { failed } = fixtures.get(m.name)!;
      refused(await as(m, m.west, `/v1/jobs/${failed}/$replay`, { method: 'POST' }), 404, 'not-found');
      expect((await store().getJob(failed))?.status).toBe('failed');
    },
  },

  // --- Hostile bodies
  {
    name: '10,000-deep nesting: 400 too-costly, not a stack overflow 500',
    held: false,
    async run(m) {
      const deep = '{"resourceType":"Patient","extension":' + '['.repeat(10_000) + ']'.repeat(10_000) + '}';
      refused(await as(m, m.north, '/v1/$validate', { method: 'POST', body: deep }), 400, 'too-costly');
    },
  },
  {
    name: 'huge answers: $validate lists at most 100 issues and says how many more; $import is bounded',
    held: false,
    async run(m) {
      const patient = { resourceType: 'Patient', telecom: Array.from({ length: 3000 }, (_, i) => ({ system: 'phone', value: String(i), bogus: true })) };
      const v = await as(m, m.north, '/v1/$validate', { method: 'POST', body: JSON.stringify(patient) });
      expect(v.status).toBe(200);
      const o = v.json() as Outcome;
      expect([o.resourceType, o.issue.length, o.issue[100]?.code]).toEqual(['OperationOutcome', 101, 'too-costly']);
      expect(o.issue[100]?.details?.text).toMatch(/^2900 more issues/);
      expect(v.text.length).toBeLessThan(64 * 1024);

      const junk = JSON.stringify({ schemaVersion: '1.0', ...Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`unknown${i}`, i])) });
      const body = Array.from({ length: 2000 }, () => junk).join('\n');
      const imp = await as(m, m.north, '/v1/episodes/$import', { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
      expect([imp.status, imp.headers.get('x-rejected')]).toEqual([200, '2000']);
      // Before the cap, this request's answer was about 50 times its size.
      expect(imp.text.length).toBeLessThan(2 * body.length);
      const last = JSON.parse(imp.text.trim().split('\n').at(-1)!) as { status: number; outcome: Outcome };
      expect([last.status, last.outcome.resourceType, last.outcome.issue[0]?.code]).toEqual([400, 'OperationOutcome', 'too-costly']);
    },
  },
  {
    name: '__proto__ and constructor keys are refused (400 structure); toString is an error, not "All OK"',
    held: false,
    async run(m) {
      for (const key of ['__proto__', 'constructor']) {
        const o = refused(await as(m, m.north, '/v1/$validate', { method: 'POST', body: `{"resourceType":"Patient","${key}":{"id":"x"}}` }), 400, 'structure');
        expect(o.issue[0]?.expression).toEqual([`/${key}`]);
      }
      const ts = await as(m, m.north, '/v1/$validate', { method: 'POST', body: '{"resourceType":"Patient","toString":"x"}' });
      expect(ts.status).toBe(200);
      const o = ts.json() as Outcome;
      expect(o.issue.filter((i) => i.severity === 'error').map((i) => i.expression?.[0])).toEqual(['Patient.toString']);
    },
  },
  {
    name: 'duplicate keys, a second parent.nationalId among them: 400 structure at the pointer, nothing stored',
    held: false,
    async run(m) {
      const id = `ATK-${m.name}-DUP`;
      const body = JSON.stringify({ ...completed, episodeId: id }).replace(
        `"nationalId":"${completed.parent.nationalId}"`,
        `"nationalId":"${completed.parent.nationalId}","nationalId":"${activeFather.parent.nationalId}"`,
      );
      expect(body).toContain(activeFather.parent.nationalId);
      const o = refused(await as(m, m.north, `/v1/episodes/${id}`, { method: 'PUT', body }), 400, 'structure');
      expect(o.issue[0]?.expression).toEqual(['/parent/nationalId']);
      const stored = await env.DB.prepare('SELECT count(*) AS n FROM jobs WHERE episode_key = ?1')
        .bind(`${completed.clinic.orgNumber}/${id}`)
        .first<{ n: number }>();
      expect(stored?.n).toBe(0);
    },
  },
  {
    name: 'NUL, ESC and lone surrogates in names and notes, and invalid UTF-8: 400, never mapped',
    held: false,
    async run(m) {
      const bad: [string, (e: typeof completed) => void, string][] = [
        ['NUL in a name', (e) => (e.parent.given = ['Ka\u0000ri']), '/parent/given/0'],
        ['ESC in a note', (e) => (e.sessions[0]!.note = 'Session \u001b[2J went well.'), '/sessions/0/note'],
        ['a lone surrogate in a family name', (e) => (e.parent.family = 'Nord\ud800mann'), '/parent/family'],
      ];
      for (const [what, change, pointer] of bad) {
        const e = structuredClone(completed);
        change(e);
        for (const path of [`/v1/episodes/${completed.episodeId}`, '/v1/episodes/$map']) {
          const o = refused(await as(m, m.north, path, { method: path.endsWith('$map') ? 'POST' : 'PUT', body: JSON.stringify(e) }), 400, 'value');
          expect(
            o.issue.map((i) => i.expression?.[0]),
            what,
          ).toEqual([pointer]);
        }
      }
      const bytes = encode(JSON.stringify({ ...planned, episodeId: `ATK-${m.name}-UTF8` }));
      bytes[bytes.indexOf(0x44 /* D of Dahl */)] = 0xc3;
      const o = refused(await as(m, m.north, `/v1/episodes/ATK-${m.name}-UTF8`, { method: 'PUT', body: bytes }), 400, 'invalid');
      expect(o.issue[0]?.details?.text).toMatch(/^request body is not valid UTF-8: invalid byte sequence at byte offset \d+$/);
    },
  },
  {
    name: '$extract does not copy an unknown tenantId into what it writes',
    held: false,
    async run(m) {
      const qr = rendererResponse();
      qr.tenantId = 'tenant-other-clinic';
      (qr.subject as unknown as Record<string, unknown>).tenantId = 'tenant-other-clinic';
      (qr.item![0] as unknown as Record<string, unknown>).tenantId = 'tenant-other-clinic';
      const a = await as(m, m.north, '/v1/QuestionnaireResponse/$extract', { method: 'POST', body: JSON.stringify(qr) });
      expect(a.status, a.text.slice(0, 300)).toBe(200);
      expect((a.json() as { resourceType: string }).resourceType).toMatch(/^(Bundle|Parameters)$/);
      expect(a.text).not.toContain('tenantId');
      expect(a.text).not.toContain('tenant-other-clinic');
    },
  },
  {
    name: '?limit=2.5 (and other bad query values): 400 naming the parameter, not 500',
    held: false,
    async run(m) {
      for (const q of ['limit=2.5', 'limit=1e3', 'limit=0', 'status=lost', 'limit=1&limit=2']) {
        const o = refused(await as(m, m.north, `/v1/jobs?${q}`), 400, 'invalid');
        expect(o.issue[0]?.expression).toEqual([`/${q.split('=')[0]}`]);
      }
    },
  },

  // --- Tokens (forged, replayed, mistimed). In bearer mode each is simply not a configured token.
  {
    name: 'alg "none" is refused',
    held: true,
    async run(m) {
      const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims(m.north))}.`;
      refused(await read(await call(m.env, '/v1/jobs', { token }), '/v1/jobs'), 401, 'login');
    },
  },
  {
    name: 'HS256 key confusion (HMAC keyed with the published public key) is refused',
    held: true,
    async run(m) {
      const input = `${b64({ alg: 'HS256', kid: 'as-es', typ: 'JWT' })}.${b64(claims(m.north))}`;
      for (const secret of [JSON.stringify(publicJwk), JSON.stringify({ keys: [publicJwk] })]) {
        const key = await crypto.subtle.importKey('raw', encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
        const token = `${input}.${base64url.encode(new Uint8Array(await crypto.subtle.sign('HMAC', key, encode(input))))}`;
        refused(await read(await call(m.env, '/v1/jobs', { token }), '/v1/jobs'), 401, 'login');
      }
    },
  },
  {
    name: "jku, x5u and an embedded jwk pointing at the attacker's key are refused and never fetched",
    held: true,
    async run(m) {
      const headers = [
        { alg: 'ES256', kid: 'attacker-1', jku: 'https://attacker.example/jwks.json' },
        { alg: 'ES256', kid: 'attacker-2', x5u: 'https://attacker.example/cert.pem' },
        { alg: 'ES256', jwk: attackerJwk },
        { alg: 'ES256', kid: 'as-es', jwk: attackerJwk },
      ];
      for (const h of headers) {
        const token = await es256({ ...h, typ: 'JWT' }, claims(m.north), attacker.privateKey);
        refused(await read(await call(m.env, '/v1/jobs', { token }), '/v1/jobs'), 401, 'login');
      }
      expect(strayFetches).toEqual([]);
    },
  },
  {
    name: 'a wrong aud or iss is refused',
    held: true,
    async run(m) {
      for (const wrong of [{ aud: 'https://other-service.example' }, { iss: 'https://attacker.example' }]) {
        const token = await es256({ alg: 'ES256', kid: 'as-es', typ: 'JWT' }, claims(m.north, wrong), signingKey);
        refused(await read(await call(m.env, '/v1/jobs', { token }), '/v1/jobs'), 401, 'login');
      }
    },
  },
  {
    name: 'an unknown crit header is refused',
    held: true,
    async run(m) {
      const token = await es256(
        { alg: 'ES256', kid: 'as-es', typ: 'JWT', crit: ['urn:attack:skip-checks'], 'urn:attack:skip-checks': true },
        claims(m.north),
        signingKey,
      );
      refused(await read(await call(m.env, '/v1/jobs', { token }), '/v1/jobs'), 401, 'login');
    },
  },
  {
    name: 'iat an hour or a day in the future, and exp beyond the maximum lifetime, are refused',
    held: false,
    async run(m) {
      for (const timing of [{ iat: nowS() + 3600 }, { iat: nowS() + 86_400 }, { exp: nowS() + 86_400 }]) {
        const token = await es256({ alg: 'ES256', kid: 'as-es', typ: 'JWT' }, claims(m.north, timing), signingKey);
        const o = refused(await read(await call(m.env, '/v1/jobs', { token }), '/v1/jobs'), 401, 'login');
        if (m.name === 'jwt') expect(o.issue[0]?.details?.text).toMatch(/"(iat|exp)" claim/);
      }
    },
  },
  {
    name: '50 concurrent tokens with unknown kids and junk signatures: at most one key-set fetch',
    held: false,
    async run(m) {
      // A fresh isolate's configuration: nothing of the key set is cached yet.
      const fresh = { ...m.env } as Env;
      const before = jwksFetches;
      const junk = (i: number) => `${b64({ alg: 'ES256', kid: `unknown-${i}`, typ: 'JWT' })}.${b64(claims(m.north))}.${'A'.repeat(86)}`;
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => call(fresh, '/v1/jobs', { token: junk(i) })));
      for (const r of answers) refused(await read(r, '/v1/jobs'), 401, 'login');
      expect(jwksFetches - before).toBe(m.name === 'jwt' ? 1 : 0);
      // The real key still works, without another fetch.
      expect((await as(m, m.north, '/v1/jobs', {}, fresh)).status).toBe(200);
      expect(jwksFetches - before).toBe(m.name === 'jwt' ? 1 : 0);
    },
  },

  // --- Patient data in answers and records
  {
    name: 'a malformed-JSON 400 names the position, never the text around it',
    held: false,
    async run(m) {
      const body = JSON.stringify(completed).replace(`"phone":"${completed.parent.phone}"`, `"phone":"${completed.parent.phone}",,`);
      const o = refused(await as(m, m.north, `/v1/episodes/${completed.episodeId}`, { method: 'PUT', body }), 400, 'invalid');
      expect(o.issue[0]?.details?.text).toMatch(/^request body is not valid JSON: .* at line 1, column \d+ \(offset \d+\)/);
    },
  },
  {
    name: "job records keep a FHIR server's error text only for the owning tenant, redacted",
    held: false,
    async run(m) {
      const { failed } = fixtures.get(m.name)!;
      const a = await as(m, m.north, `/v1/jobs/${failed}`);
      expect(a.status).toBe(200);
      const job = a.json() as { status: string; targets: { clinic: { status: string; httpStatus: number; outcome: Outcome } } };
      expect([job.status, job.targets.clinic.status, job.targets.clinic.httpStatus]).toEqual(['failed', 'failed', 422]);
      const text = job.targets.clinic.outcome.issue[0]?.diagnostics;
      // The server's words are there, without the national ids, names, birth date or phone.
      expect(JSON.stringify(job.targets.clinic.outcome)).toContain('[redacted]');
      expect(text ?? job.targets.clinic.outcome.issue[0]?.details?.text).toMatch(/matches \[redacted\]/);
      refused(await as(m, m.west, `/v1/jobs/${failed}`), 404, 'not-found');
    },
  },

  // --- Unsafe defaults
  {
    name: 'a plain `wrangler deploy` is not open, and an open API is refused in production',
    held: false,
    async run(m) {
      const plain = { ...env, API_AUTH: undefined, BRIDGE_ENV: undefined, ALLOW_SYNTHETIC_IDS: undefined } as unknown as Env;
      // Missing API_AUTH is `required`; an open API where it is not allowed is `invalid`.
      for (const [e, code] of [
        [plain, 'required'],
        [production(m, { API_AUTH: '{"type":"none"}' }), 'invalid'],
      ] as const) {
        for (const path of ['/v1/jobs', '/v1/episodes/$map']) {
          const init = path.endsWith('$map') ? { method: 'POST', body: JSON.stringify(planned) } : {};
          // The Worker refuses before routing, so not even no-store is promised: read it as a non-/v1 answer.
          const o = refused(await read(await call(e, path, init), `(unconfigured) ${path}`), 500, code);
          expect(o.issue.map((i) => i.expression?.[0])).toEqual(['API_AUTH']);
        }
      }
    },
  },
  {
    name: 'where real national ids are accepted, callers authenticate, and synthetic ids are refused',
    held: false,
    async run(m) {
      const e = production(m);
      refused(await read(await call(e, '/v1/episodes/$map', { method: 'POST', body: JSON.stringify(planned) }), '/v1/episodes/$map'), 401, 'login');
      const o = refused(await as(m, m.north, '/v1/episodes/$map', { method: 'POST', body: JSON.stringify(planned) }, e), 400, 'value');
      expect(o.issue[0]?.expression).toEqual(['/parent/nationalId']);
    },
  },
  {
    name: 'the write routes are rate-limited per tenant: 429 throttled with Retry-After',
    held: false,
    async run(m) {
      const limited = { ...m.env, WRITE_RATE_LIMITER: { limit: async () => ({ success: false }) } } as unknown as Env;
      const id = `ATK-${m.name}-RATE`;
      const a = await as(m, m.north, `/v1/episodes/${id}`, { method: 'PUT', body: JSON.stringify({ ...planned, episodeId: id }) }, limited);
      refused(a, 429, 'throttled');
      expect(a.headers.get('retry-after')).toBe('60');
      // Reads are not limited.
      expect((await as(m, m.north, '/v1/jobs', {}, limited)).status).toBe(200);
    },
  },

  // --- Body limits
  {
    name: 'a body over 1 MiB is refused 413 by its Content-Length',
    held: true,
    async run(m) {
      const body = JSON.stringify({ ...planned, padding: 'x'.repeat(1024 * 1024) });
      for (const [method, path] of [
        ['PUT', `/v1/episodes/${planned.episodeId}`],
        ['POST', '/v1/$validate'],
      ] as const) {
        // A string body goes with its Content-Length.
        refused(await as(m, m.north, path, { method, body }), 413, 'too-long');
      }
    },
  },
  {
    name: 'a chunked body over 1 MiB (no Content-Length) is refused 413',
    held: true,
    async run(m) {
      const init = () => ({ method: 'POST', body: chunked(2 * 1024 * 1024), duplex: 'half' }) as RequestInit;
      expect(new Request('http://bridge/', init()).headers.get('content-length')).toBeNull();
      const r = await call(m.env, '/v1/episodes/$map', { ...init(), token: await m.credential(m.north) });
      refused(await read(r, '/v1/episodes/$map'), 413, 'too-long');
    },
  },
];

describe.each(MODES)('attack suite, $name authentication (inside workerd)', (m) => {
  it.each(CASES.map((c) => [c.held ? 'held before' : 'fixed', c.name, c] as const))('[%s] %s', async (_held, _name, c) => {
    await c.run(m);
  });
});

describe('attack suite, afterwards', () => {
  it("the Worker's logs carry no patient data (everything logged during both modes)", () => {
    // What the scans above looked for: ids, names, phones, birth dates and free text of all three examples.
    expect(PATIENT_DATA).toEqual(
      expect.arrayContaining(['02839440092', '11902550331', '15708830116', '21909120095', 'Nordmann', 'Åsheim', '+47 400 00 000', '1994-03-02']),
    );
    expect(PATIENT_DATA.length).toBeGreaterThan(25);
    // The unsafe-defaults cases log configuration errors at least.
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) expectNoPatientData(line, 'a log line');
  });
});
