/**
 * Configuration from the environment: defaults, resolution of secrets, and errors that name
 * every bad setting at once without ever repeating a secret.
 */
import type { JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ConfigEnv, DEFAULT_CLINIC_BASE_URL, loadConfig } from '../../src/config.ts';
import { DEV_IDENTITY } from '../../src/fhir/identity.ts';
import { OperationOutcomeError } from '../../src/fhir/outcome.ts';
import { privateJwk } from '../fixtures/keys.ts';

let rsa: JWK;
let ec: JWK;
beforeAll(async () => {
  [rsa, ec] = await Promise.all([privateJwk('RS384', 'rsa-1'), privateJwk('ES384', 'ec-1')]);
});

const TOKEN = 'clinic-token-Zq8vX3kP9wL2mN7s';

/** API_AUTH is required; these tests are about the other settings, so they opt out of it. */
const NO_API_AUTH = { API_AUTH: '{"type":"none"}', BRIDGE_ENV: 'local' } as const;

/** Runs loadConfig expecting failure; returns the error and the paths its issues name. */
function failure(env: ConfigEnv): { err: OperationOutcomeError; paths: string[]; text: string } {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(OperationOutcomeError);
    const err = e as OperationOutcomeError;
    const paths = (err.outcome.issue ?? []).flatMap((i) => i.expression ?? []);
    return { err, paths, text: `${err.message}\n${JSON.stringify(err.outcome)}` };
  }
  throw new Error('loadConfig accepted a bad configuration');
}

/** Every string member of the private keys, which must never show up in errors or output. */
const privateParts = (...keys: JWK[]): string[] =>
  keys.flatMap((k) => ['d', 'p', 'q', 'dp', 'dq', 'qi'].map((m) => (k as Record<string, unknown>)[m]).filter((v): v is string => typeof v === 'string'));

/** A data encryption key for production-like settings (test only). */
const TEST_DATA_KEYS = JSON.stringify([{ kid: 'test-1', k: 'x'.repeat(43) }]);

describe('loadConfig defaults', () => {
  it('points the clinic at the local sandbox with no auth and has no primary targets', () => {
    const config = loadConfig(NO_API_AUTH);
    expect(config.targets.clinic).toEqual({ name: 'clinic', baseUrl: DEFAULT_CLINIC_BASE_URL, auth: { type: 'none' }, timeoutMs: 15_000 });
    expect(DEFAULT_CLINIC_BASE_URL).toBe('http://127.0.0.1:8103/fhir');
    expect(config.targets.primary).toEqual({});
    expect(config.allowSyntheticIds).toBe(true);
    expect(config.deliveryMaxAttempts).toBe(8);
    expect(config.retryAfterCapSeconds).toBe(300);
    expect(config.signingKeys).toBeUndefined();
    expect(config.publicJwks).toEqual({ keys: [] });
  });

  it('treats empty values as unset and reads the scalar settings', () => {
    const config = loadConfig({
      API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
      API_TOKENS: 'test-api-token-0123456789abcdefghij',
      FHIR_TARGETS: '  ',
      ALLOW_SYNTHETIC_IDS: ' ',
      DELIVERY_MAX_ATTEMPTS: '3',
      RETRY_AFTER_CAP_SECONDS: '0',
    });
    expect(config.targets.clinic.baseUrl).toBe(DEFAULT_CLINIC_BASE_URL);
    expect(config.allowSyntheticIds).toBe(true);
    expect(config.deliveryMaxAttempts).toBe(3);
    expect(config.retryAfterCapSeconds).toBe(0);
  });

  it('never falls back to the local sandbox where real national ids are accepted', () => {
    const realIds = {
      API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
      API_TOKENS: 'test-api-token-0123456789abcdefghij',
      ALLOW_SYNTHETIC_IDS: 'false',
      IDENTIFIER_NAMESPACE: 'https://fhir.clinic.example/sid',
      IDENTITY_SECRET: 'test-identity-secret-0123456789abcdef',
      DATA_ENCRYPTION_KEYS: TEST_DATA_KEYS,
    };
    let error: unknown;
    try {
      loadConfig({ ...realIds, FHIR_TARGETS: ' ' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OperationOutcomeError);
    expect((error as OperationOutcomeError).outcome.issue.map((i) => i.expression?.[0])).toEqual(['FHIR_TARGETS']);
    const target = { clinic: { baseUrl: 'https://fhir.clinic.example/r4', auth: { type: 'none' } } };
    expect(loadConfig({ ...realIds, FHIR_TARGETS: JSON.stringify(target) }).targets.clinic.baseUrl).toBe('https://fhir.clinic.example/r4');
  });
});

describe('loadConfig with targets', () => {
  const targets = () => ({
    clinic: { baseUrl: 'https://fhir.clinic.example/r4///', auth: { type: 'bearer', tokenSecret: 'CLINIC_FHIR_TOKEN' } },
    primary: {
      '974557746': {
        baseUrl: 'https://fhir.psych.example/fhir',
        auth: { type: 'smart-backend', tokenUrl: 'https://auth.psych.example/token', clientId: 'imh-bridge', keyId: 'rsa-1', alg: 'RS384' },
        timeoutMs: 5000,
      },
      '923456783': {
        baseUrl: 'https://fhir.dps.example/fhir/',
        auth: {
          type: 'smart-backend',
          tokenUrl: 'https://auth.dps.example/token',
          clientId: 'bridge',
          scope: 'system/Bundle.c',
          keyId: 'ec-1',
          alg: 'ES384',
          jku: 'https://bridge.example/.well-known/jwks.json',
        },
      },
    },
  });
  const env = (): ConfigEnv => ({
    ...NO_API_AUTH,
    FHIR_TARGETS: JSON.stringify(targets()),
    CLINIC_FHIR_TOKEN: `${TOKEN}\n`,
    BRIDGE_PRIVATE_JWKS: JSON.stringify({ keys: [rsa, ec] }),
  });

  it('resolves every target, normalises base URLs and fills defaults', () => {
    const config = loadConfig(env());
    const { clinic, primary } = config.targets;
    expect(clinic.baseUrl).toBe('https://fhir.clinic.example/r4');
    expect(clinic.timeoutMs).toBe(15_000);
    expect(clinic.auth.type === 'bearer' && clinic.auth.token.reveal()).toBe(TOKEN);
    expect(Object.keys(primary).sort()).toEqual(['923456783', '974557746']);

    const psych = primary['974557746']!;
    expect(psych).toMatchObject({ name: 'primary.974557746', baseUrl: 'https://fhir.psych.example/fhir', timeoutMs: 5000 });
    expect(psych.auth).toMatchObject({ type: 'smart-backend', clientId: 'imh-bridge', scope: 'system/*.write system/*.read', keyId: 'rsa-1', alg: 'RS384' });
    expect(psych.auth.type === 'smart-backend' && psych.auth.privateKey.reveal().d).toBe(rsa.d);

    const dps = primary['923456783']!;
    expect(dps.baseUrl).toBe('https://fhir.dps.example/fhir');
    expect(dps.auth).toMatchObject({ scope: 'system/Bundle.c', alg: 'ES384', jku: 'https://bridge.example/.well-known/jwks.json' });
  });

  it('publishes the public keys with the alg each target signs with', () => {
    const { publicJwks } = loadConfig(env());
    expect(publicJwks.keys.map((k) => [k.kid, k.kty, k.alg])).toEqual([
      ['rsa-1', 'RSA', 'RS384'],
      ['ec-1', 'EC', 'ES384'],
    ]);
  });

  it('keeps secrets out of a logged or serialised config', () => {
    const config = loadConfig(env());
    const printed = JSON.stringify(config) + String(config.signingKeys) + String((config.targets.clinic.auth as { token: unknown }).token);
    expect(printed).toContain('[redacted]');
    for (const secret of [TOKEN, ...privateParts(rsa, ec)]) expect(printed).not.toContain(secret);
  });

  it('allows http with credentials only on localhost', () => {
    const t = targets();
    t.clinic.baseUrl = 'http://localhost:8103/fhir';
    expect(loadConfig({ ...env(), FHIR_TARGETS: JSON.stringify(t) }).targets.clinic.baseUrl).toBe('http://localhost:8103/fhir');
    t.clinic.baseUrl = 'http://fhir.clinic.example/fhir';
    expect(failure({ ...env(), FHIR_TARGETS: JSON.stringify(t) }).paths).toEqual(['FHIR_TARGETS.clinic.baseUrl']);
    t.clinic.baseUrl = 'https://fhir.clinic.example/fhir';
    t.primary['974557746'].auth.tokenUrl = 'http://auth.psych.example/token';
    expect(failure({ ...env(), FHIR_TARGETS: JSON.stringify(t) }).paths).toEqual(['FHIR_TARGETS.primary.974557746.auth.tokenUrl']);
    t.primary['974557746'].auth.tokenUrl = 'http://127.0.0.1:8104/token';
    expect(loadConfig({ ...env(), FHIR_TARGETS: JSON.stringify(t) }).targets.primary['974557746']?.auth).toMatchObject({
      tokenUrl: 'http://127.0.0.1:8104/token',
    });
  });
});

describe('loadConfig errors', () => {
  it('names every bad setting at once, by path, without repeating any secret', () => {
    const keyWithoutKid = { ...rsa, kid: undefined };
    const env: ConfigEnv = {
      ...NO_API_AUTH,
      ALLOW_SYNTHETIC_IDS: 'yes',
      DELIVERY_MAX_ATTEMPTS: '0',
      RETRY_AFTER_CAP_SECONDS: 'soon',
      FHIR_TARGETS: JSON.stringify({
        clinic: { baseUrl: 'ftp://fhir.clinic.example/', auth: { type: 'bearer', tokenSecret: 'NOT_SET_TOKEN' } },
        primary: {
          '123': {
            baseUrl: 'https://a.example/fhir',
            auth: { type: 'smart-backend', tokenUrl: 'https://a.example/token', clientId: 'c', keyId: 'missing-kid', alg: 'RS384' },
          },
          '974557746': { baseUrl: 'https://b.example/fhir', auth: { type: 'bearer', tokenSecret: 'B_TOKEN', token: 'raw-token-in-json-8fJ2' } },
          '923456783': {
            baseUrl: 'https://c.example/fhir',
            auth: { type: 'smart-backend', tokenUrl: 'not a url', clientId: '', keyId: 'rsa-1', alg: 'ES384' },
            timeoutMs: -1,
          },
          '993778125': { baseUrl: 'https://d.example/fhir', auth: { type: 'oauth' } },
        },
        extra: true,
      }),
      B_TOKEN: TOKEN,
      BRIDGE_PRIVATE_JWKS: JSON.stringify({ keys: [rsa, keyWithoutKid, { kty: 'oct', kid: 'hmac', k: 'c2VjcmV0LWhtYWMta2V5LXZhbHVl' }] }),
    };
    const { err, paths, text } = failure(env);
    expect(err.status).toBe(500);
    expect(paths).toEqual(
      expect.arrayContaining([
        'ALLOW_SYNTHETIC_IDS',
        'DELIVERY_MAX_ATTEMPTS',
        'RETRY_AFTER_CAP_SECONDS',
        'FHIR_TARGETS.extra',
        'FHIR_TARGETS.clinic.baseUrl',
        'FHIR_TARGETS.clinic.auth.tokenSecret',
        'FHIR_TARGETS.primary.123',
        'FHIR_TARGETS.primary.123.auth.keyId',
        'FHIR_TARGETS.primary.974557746.auth.token',
        'FHIR_TARGETS.primary.923456783.auth.tokenUrl',
        'FHIR_TARGETS.primary.923456783.auth.clientId',
        'FHIR_TARGETS.primary.923456783.timeoutMs',
        'FHIR_TARGETS.primary.993778125.auth.type',
        'BRIDGE_PRIVATE_JWKS.keys.1.kid',
        'BRIDGE_PRIVATE_JWKS.keys.2.kty',
      ]),
    );
    // Each message starts with the setting it is about.
    for (const i of err.outcome.issue ?? []) expect(i.details?.text?.startsWith(`${i.expression?.[0]}: `)).toBe(true);
    expect(text).toMatch(/FHIR_TARGETS\.clinic\.auth\.tokenSecret: names the secret NOT_SET_TOKEN, which is not set/);
    expect(text).toMatch(/auth\.token: is not a known setting; secrets never go in FHIR_TARGETS/);
    // Plain sentences, never zod's own wording ("Too small: expected number to be >=1", "Invalid input").
    expect(text).toContain('FHIR_TARGETS.primary.923456783.timeoutMs: must be at least 1');
    expect(text).not.toMatch(/Invalid input|Too (small|big)|expected .* to be/);
    for (const secret of [TOKEN, 'raw-token-in-json-8fJ2', 'c2VjcmV0LWhtYWMta2V5LXZhbHVl', ...privateParts(rsa)]) {
      expect(text).not.toContain(secret);
    }
  });

  it('checks a smart-backend key against the alg: ES384 cannot use an RSA key', () => {
    const { paths, text } = failure({
      ...NO_API_AUTH,
      FHIR_TARGETS: JSON.stringify({
        clinic: {
          baseUrl: 'https://c.example/fhir',
          auth: { type: 'smart-backend', tokenUrl: 'https://c.example/token', clientId: 'c', keyId: 'rsa-1', alg: 'ES384' },
        },
      }),
      BRIDGE_PRIVATE_JWKS: JSON.stringify({ keys: [rsa] }),
    });
    expect(paths).toEqual(['FHIR_TARGETS.clinic.auth.keyId']);
    expect(text).toMatch(/kty "EC" for ES384/);
  });

  it('requires BRIDGE_PRIVATE_JWKS when a target uses smart-backend', () => {
    const { paths, err } = failure({
      ...NO_API_AUTH,
      FHIR_TARGETS: JSON.stringify({
        clinic: {
          baseUrl: 'https://c.example/fhir',
          auth: { type: 'smart-backend', tokenUrl: 'https://c.example/token', clientId: 'c', keyId: 'k', alg: 'RS384' },
        },
      }),
    });
    expect(paths).toEqual(['BRIDGE_PRIVATE_JWKS']);
    expect(err.outcome.issue?.[0]?.code).toBe('required');
  });

  it('reports unparseable JSON without quoting it', () => {
    const leaked = `{"keys":[{"kty":"RSA","d":"${rsa.d}"`;
    const { paths, text } = failure({ ...NO_API_AUTH, BRIDGE_PRIVATE_JWKS: leaked, FHIR_TARGETS: '{clinic:' });
    expect(paths).toEqual(['BRIDGE_PRIVATE_JWKS', 'FHIR_TARGETS']);
    expect(text).toMatch(/BRIDGE_PRIVATE_JWKS: is not valid JSON/);
    expect(text).not.toContain(rsa.d);
  });

  it('rejects a public key where a private one is needed', () => {
    const { d, p, q, dp, dq, qi, ...pub } = rsa;
    void [d, p, q, dp, dq, qi];
    expect(failure({ ...NO_API_AUTH, BRIDGE_PRIVATE_JWKS: JSON.stringify({ keys: [pub] }) }).paths).toEqual(['BRIDGE_PRIVATE_JWKS.keys.0']);
  });

  it('requires the clinic when FHIR_TARGETS is set, and a JSON object for the primary targets', () => {
    expect(failure({ ...NO_API_AUTH, FHIR_TARGETS: JSON.stringify({ primary: [] }) }).paths).toEqual(['FHIR_TARGETS.clinic', 'FHIR_TARGETS.primary']);
    expect(failure({ ...NO_API_AUTH, FHIR_TARGETS: '[]' }).paths).toEqual(['FHIR_TARGETS']);
  });

  it('rejects credentials in URLs without echoing them', () => {
    const { paths, text } = failure({
      ...NO_API_AUTH,
      FHIR_TARGETS: JSON.stringify({ clinic: { baseUrl: 'https://user:pa55w0rd-xyz@c.example/fhir', auth: { type: 'none' } } }),
    });
    expect(paths).toEqual(['FHIR_TARGETS.clinic.baseUrl']);
    expect(text).not.toContain('pa55w0rd-xyz');
  });

  it('rejects a bearer secret with whitespace inside without echoing it', () => {
    const { paths, text } = failure({
      ...NO_API_AUTH,
      FHIR_TARGETS: JSON.stringify({ clinic: { baseUrl: 'https://c.example/fhir', auth: { type: 'bearer', tokenSecret: 'T' } } }),
      T: 'Bearer abc-secret-123',
    });
    expect(paths).toEqual(['FHIR_TARGETS.clinic.auth.tokenSecret']);
    expect(text).not.toContain('abc-secret-123');
  });
});

describe('API_AUTH (caller authentication of the API)', () => {
  const T1 = 'api-token-1-kJ8sQ2vN5xR7tY3wZ6mB9cD4';
  const T2 = 'api-token-2-pL4hG7fE2aS9dK1jU5iO8yT3';

  it('is required, and the message says how local development opts out', () => {
    for (const unset of [{}, { API_AUTH: '' }, { API_AUTH: '  ' }]) {
      const { err, paths, text } = failure(unset);
      expect(paths).toEqual(['API_AUTH']);
      expect(err.outcome.issue?.[0]?.code).toBe('required');
      expect(text).toContain('set API_AUTH; {"type":"none"} is only for local development (BRIDGE_ENV "local")');
    }
  });

  it('accepts the explicit opt-out', () => {
    expect(loadConfig({ API_AUTH: '{"type":"none"}', BRIDGE_ENV: 'local' }).apiAuth).toEqual({ type: 'none' });
  });

  it('reads static tokens from the secret it names, as a JSON array or a comma-separated list', () => {
    for (const value of [JSON.stringify([T1, T2]), ` ${T1} , ${T2},`, JSON.stringify([T1, T2, T1])]) {
      const { apiAuth } = loadConfig({ API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: value });
      expect(apiAuth.type).toBe('bearer');
      expect(apiAuth.type === 'bearer' && apiAuth.tokens.reveal()).toEqual([T1, T2]);
      const printed = JSON.stringify(apiAuth) + String(apiAuth.type === 'bearer' && apiAuth.tokens);
      expect(printed).not.toContain(T1);
      expect(printed).toContain('[redacted]');
    }
  });

  it('refuses short, blank or missing tokens without echoing them', () => {
    const short = 'short-token-abc123';
    const cases: [ConfigEnv, RegExp][] = [
      [{ API_TOKENS: `${T1},${short}` }, /token 2 in the secret API_TOKENS is shorter than 32 characters/],
      [{ API_TOKENS: JSON.stringify([T1, 42]) }, /token 2 in the secret API_TOKENS is not a string/],
      [{ API_TOKENS: `["${T1}"` }, /neither a JSON array of strings nor a comma-separated list/],
      [{ API_TOKENS: ' , ' }, /holds no tokens/],
      [{ API_TOKENS: `${T1} ${T2}` }, /token 1 in the secret API_TOKENS has spaces/],
      [{}, /names the secret API_TOKENS, which is not set or is empty/],
    ];
    for (const [env, message] of cases) {
      const { paths, text } = failure({ API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', ...env });
      expect(paths).toEqual(['API_AUTH.tokensSecret']);
      expect(text).toMatch(message);
      for (const secret of [T1, T2, short]) expect(text).not.toContain(secret);
    }
  });

  it('reads the JWT settings and checks them by path', () => {
    const jwt = { type: 'jwt', jwksUrl: 'https://auth.example/jwks', issuer: 'https://auth.example', audience: 'https://bridge.example' };
    expect(loadConfig({ API_AUTH: JSON.stringify(jwt) }).apiAuth).toEqual({ ...jwt, maxLifetimeSeconds: 3600 });
    expect(failure({ API_AUTH: JSON.stringify({ ...jwt, jwksUrl: 'http://auth.example/jwks' }) }).paths).toEqual(['API_AUTH.jwksUrl']);
    expect(failure({ API_AUTH: JSON.stringify({ type: 'jwt', jwksUrl: 'https://auth.example/jwks' }) }).paths).toEqual([
      'API_AUTH.issuer',
      'API_AUTH.audience',
    ]);
    expect(loadConfig({ API_AUTH: JSON.stringify({ ...jwt, jwksUrl: 'http://127.0.0.1:9/jwks' }) }).apiAuth).toMatchObject({
      jwksUrl: 'http://127.0.0.1:9/jwks',
    });
  });

  it('names unknown types and keys, never echoing a token put in the JSON', () => {
    expect(failure({ API_AUTH: '{"type":"basic"}' }).paths).toEqual(['API_AUTH.type']);
    expect(failure({ API_AUTH: '"none"' }).paths).toEqual(['API_AUTH']);
    const { paths, text } = failure({ API_AUTH: JSON.stringify({ type: 'bearer', tokensSecret: 'X', tokens: [T1] }), X: T2 });
    expect(paths).toEqual(['API_AUTH.tokens']);
    expect(text).toMatch(/tokens never go in API_AUTH/);
    expect(text).not.toContain(T1);
    const bad = failure({ API_AUTH: `{"type":"bearer","tokensSecret":"${T1}` });
    expect(bad.text).toMatch(/API_AUTH: is not valid JSON/);
    expect(bad.text).not.toContain(T1);
  });

  it('is reported together with every other bad setting', () => {
    expect(failure({ ALLOW_SYNTHETIC_IDS: 'maybe' }).paths).toEqual(['API_AUTH', 'ALLOW_SYNTHETIC_IDS']);
  });
});

describe('API_AUTH and real national ids', () => {
  it('refuses an open API where real national ids are accepted', () => {
    let error: unknown;
    try {
      loadConfig({
        API_AUTH: '{"type":"none"}',
        ALLOW_SYNTHETIC_IDS: 'false',
        FHIR_TARGETS: '{"clinic":{"baseUrl":"https://fhir.clinic.example/r4","auth":{"type":"none"}}}',
        IDENTIFIER_NAMESPACE: 'https://fhir.clinic.example/sid',
        IDENTITY_SECRET: 'test-identity-secret-0123456789abcdef',
        DATA_ENCRYPTION_KEYS: TEST_DATA_KEYS,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OperationOutcomeError);
    const issues = (error as OperationOutcomeError).outcome.issue;
    expect(issues.map((i) => i.expression?.[0])).toEqual(['API_AUTH']);
    expect(issues[0]?.details?.text).toMatch(/must authenticate its callers/);
  });
});

describe('identity settings (IDENTIFIER_NAMESPACE, IDENTITY_SECRET)', () => {
  const production = {
    API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
    API_TOKENS: 'test-api-token-0123456789abcdefghij',
    ALLOW_SYNTHETIC_IDS: 'false',
    FHIR_TARGETS: '{"clinic":{"baseUrl":"https://fhir.clinic.example/r4","auth":{"type":"none"}}}',
    DATA_ENCRYPTION_KEYS: TEST_DATA_KEYS,
  };
  const problemsOf = (env: Record<string, string>): { at: string | undefined; text: string }[] => {
    try {
      loadConfig(env);
      return [];
    } catch (e) {
      return (e as OperationOutcomeError).outcome.issue.map((i) => ({ at: i.expression?.[0], text: i.details?.text ?? '' }));
    }
  };

  it('uses the development defaults where synthetic ids are allowed', () => {
    const identity = loadConfig({ API_AUTH: '{"type":"none"}', BRIDGE_ENV: 'local' }).identity.reveal();
    expect(identity).toEqual(DEV_IDENTITY);
  });

  it("refuses to start with real national ids unless both are set to the deployment's own values", () => {
    expect(problemsOf(production).map((p) => p.at)).toEqual(['IDENTIFIER_NAMESPACE', 'IDENTITY_SECRET']);
    expect(problemsOf(production)[0]?.text).toMatch(/can never change/);
    const dev = problemsOf({ ...production, IDENTIFIER_NAMESPACE: DEV_IDENTITY.namespace, IDENTITY_SECRET: DEV_IDENTITY.secret });
    expect(dev.map((p) => p.at)).toEqual(['IDENTIFIER_NAMESPACE', 'IDENTITY_SECRET']);
    expect(dev.map((p) => p.text).join(' ')).toMatch(/development default/);
    const ok = loadConfig({ ...production, IDENTIFIER_NAMESPACE: 'https://fhir.clinic.example/sid', IDENTITY_SECRET: 'x'.repeat(40) });
    expect(ok.identity.reveal().namespace).toBe('https://fhir.clinic.example/sid');
  });

  it('names a malformed namespace or a short secret without echoing either', () => {
    for (const bad of ['http://fhir.clinic.example/sid', 'https://fhir.clinic.example/sid/', 'not a url', 'https://fhir.clinic.example/sid?x=1']) {
      const problems = problemsOf({ API_AUTH: '{"type":"none"}', BRIDGE_ENV: 'local', IDENTIFIER_NAMESPACE: bad });
      expect(problems.map((p) => p.at)).toEqual(['IDENTIFIER_NAMESPACE']);
      expect(problems[0]?.text).not.toContain(bad);
    }
    const short = problemsOf({ API_AUTH: '{"type":"none"}', BRIDGE_ENV: 'local', IDENTITY_SECRET: 'short-secret-value' });
    expect(short.map((p) => p.at)).toEqual(['IDENTITY_SECRET']);
    expect(short[0]?.text).not.toContain('short-secret-value');
  });

  it('keeps the secret out of logs and JSON', () => {
    const config = loadConfig({ API_AUTH: '{"type":"none"}', BRIDGE_ENV: 'local', IDENTITY_SECRET: 'a-very-secret-identity-key-0123456789' });
    expect(JSON.stringify(config)).not.toContain('a-very-secret-identity-key');
  });
});
