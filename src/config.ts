/**
 * Bridge configuration, read from a plain environment record: wrangler vars and secrets in
 * the Worker, `.dev.vars` locally, `process.env` in Node. `loadConfig` validates everything
 * at once and resolves secrets (bearer tokens, API tokens, private signing keys) into
 * `Secret` boxes, so a logged config never shows them. API_AUTH (how callers of the API
 * authenticate) is the one required setting: an open API must be an explicit choice.
 *
 * Errors are one OperationOutcomeError (status 500: the deployment is misconfigured) with an
 * issue per bad setting, each naming the setting by its path (`FHIR_TARGETS.clinic.baseUrl`,
 * `BRIDGE_PRIVATE_JWKS`). Messages never repeat a setting's value: some of them are secrets,
 * and the rest may sit next to one.
 */
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { JWK } from 'jose';
import type * as z from 'zod/mini';
import {
  type ApiAuth,
  ApiAuthSchema,
  CALLER_NAME,
  MIN_API_TOKEN_LENGTH,
  type RawApiAuth,
  type RawTargetAuth,
  type SmartConfig,
  type SmartIssuer,
  type TargetAuth,
  TargetAuthSchema,
} from './auth/config.ts';
import type { PrivateJwks, PublicJwks, SigningAlg } from './auth/jwks.ts';
import { publicJwks, signingKeyProblems } from './auth/jwks.ts';
import { Secret } from './auth/secret.ts';
import { NO_TENANTS, type Tenants } from './auth/tenants.ts';
import { type ConfigEnv, LOOPBACK, targetUrlProblem } from './config-fields.ts';
import { checkOrgNumber } from './domain/identifiers.ts';
import { DEV_IDENTITY, type IdentityOptions } from './fhir/identity.ts';
import { isObject } from './fhir/json.ts';
import { issue, OperationOutcomeError, outcome } from './fhir/outcome.ts';
import { DATA_KEY_BYTES, type DataKey, DEV_DATA_KEY, decodeDataKey } from './sync/crypto.ts';
import { DEFAULT_CLINIC_BASE_URL, DEFAULT_TIMEOUT_MS, type RawTarget, type TargetConfig, TargetSchema } from './sync/target-config.ts';

// Each module owns its settings' types and schemas; they are re-exported here, where the
// whole configuration is composed, for callers that take the configuration as one.
export type { ApiAuth, SmartConfig, SmartIssuer, TargetAuth } from './auth/config.ts';
export {
  DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
  DEFAULT_SMART_SCOPE,
  MAX_TOKEN_LIFETIME_LIMIT_SECONDS,
  MIN_API_TOKEN_LENGTH,
} from './auth/config.ts';
export { type ConfigEnv, targetUrlProblem } from './config-fields.ts';
export { DEFAULT_CLINIC_BASE_URL, DEFAULT_TIMEOUT_MS, type TargetConfig } from './sync/target-config.ts';

/**
 * What the deployment says it is (BRIDGE_ENV): `local` opts in to local development (an open
 * API becomes possible), `production` tightens the defaults; unset is a deployment that has
 * not said, treated as strictly as production where an open API is concerned.
 */
export type BridgeEnv = 'local' | 'production' | undefined;

export interface BridgeConfig {
  /** BRIDGE_ENV. */
  bridgeEnv: BridgeEnv;
  /** Inbound authentication of API callers. */
  apiAuth: ApiAuth;
  targets: {
    clinic: TargetConfig;
    /** Primary-care (adult psychiatry) targets keyed by 9-digit organisation number. */
    primary: Record<string, TargetConfig>;
  };
  /** The private signing keys from BRIDGE_PRIVATE_JWKS, if set. */
  signingKeys?: Secret<PrivateJwks>;
  /** Public half of the signing keys, for `/.well-known/jwks.json`; empty when none. */
  publicJwks: PublicJwks;
  allowSyntheticIds: boolean;
  /**
   * Identifier namespace and pseudonym secret (IDENTIFIER_NAMESPACE, IDENTITY_SECRET): permanent
   * for a deployment, see fhir/identity.ts. Boxed, since it holds the secret.
   */
  identity: Secret<IdentityOptions>;
  deliveryMaxAttempts: number;
  retryAfterCapSeconds: number;
  /** Scheduled recovery and retention (see src/sync/sweep.ts). */
  sweep: {
    /** SWEEP_QUEUED_AFTER_MINUTES: a `queued` job untouched this long is re-queued. */
    queuedAfterMinutes: number;
    /** SWEEP_RETRY_GRACE_MINUTES: a `retrying` job this long past its next attempt is re-queued. */
    retryGraceMinutes: number;
    /** BUNDLE_RETENTION_DAYS: a finished job's Bundle is purged this long after it finished. */
    bundleRetentionDays: number;
  };
  /**
   * COORDINATION_REFRESH_MINUTES: the scheduled handler reads the coordination requests of an
   * episode again once its last read-back is this old and one of them is still open
   * (src/sync/coordination.ts `refreshCoordination`).
   */
  coordinationRefreshMinutes: number;
  /** TENANTS: callers grouped into tenants; every other caller is a tenant of its own. */
  tenants: Tenants;
  /**
   * DATA_ENCRYPTION_KEYS: keys of the JWE encryption of patient data in D1, the first one
   * encrypting (src/sync/crypto.ts). Boxed, since they are secrets.
   */
  dataKeys: Secret<readonly DataKey[]>;
  /** SMART_ISSUERS: the EHRs that may launch the coordination summary (SMART App Launch). */
  smart: SmartConfig;
}

export const DEFAULT_DELIVERY_MAX_ATTEMPTS = 8;
export const DEFAULT_RETRY_AFTER_CAP_SECONDS = 300;
/** Queue messages normally arrive within seconds; a quarter of an hour means one was lost. */
export const DEFAULT_SWEEP_QUEUED_AFTER_MINUTES = 15;
/** Beyond the longest backoff and Retry-After cap (5 minutes by default), with room to spare. */
export const DEFAULT_SWEEP_RETRY_GRACE_MINUTES = 15;
export const DEFAULT_BUNDLE_RETENTION_DAYS = 30;
/** Hourly: a risk follow-up is due a day after the assessment, so the clinic sees its status the same day. */
export const DEFAULT_COORDINATION_REFRESH_MINUTES = 60;
const EXPECTED: Record<string, string> = {
  string: 'a string',
  object: 'a JSON object',
  int: 'an integer',
  number: 'a number',
  array: 'an array',
};

/**
 * Plain sentences for what the schemas do not word themselves. The schemas are zod/mini, which
 * carries no locale, so every kind of issue gets its sentence here; none repeats the input.
 */
const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'invalid_type') {
    return iss.input === undefined ? 'is required' : `must be ${EXPECTED[iss.expected] ?? iss.expected}`;
  }
  if (iss.code === 'invalid_union' && 'options' in iss && Array.isArray(iss.options)) {
    return `must be one of ${iss.options.map((o) => JSON.stringify(o)).join(', ')}`;
  }
  if (iss.code === 'invalid_value') {
    return `must be ${iss.values.length === 1 ? '' : 'one of '}${iss.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (iss.code === 'too_small') return iss.origin === 'string' ? 'must not be empty' : `must be at least ${String(iss.minimum)}`;
  if (iss.code === 'too_big') return iss.origin === 'string' ? `must be at most ${String(iss.maximum)} characters` : `must be at most ${String(iss.maximum)}`;
  return 'is not valid';
};

const TOKEN_KEYS = /token|secret|password|key$/i;

// ---------------------------------------------------------------------------------------

class Problems {
  readonly issues: OperationOutcomeIssue[] = [];
  add(path: string, message: string, code: OperationOutcomeIssue['code'] = 'invalid'): void {
    this.issues.push(issue(code, `${path}: ${message}`, path));
  }
}

/**
 * Parses one target. When the target as a whole is invalid, its `auth` may still be, and is
 * returned alone so its secrets and keys get checked too: all problems are reported at once.
 */
function parseTarget(raw: unknown, path: string, problems: Problems): { target?: RawTarget; auth?: RawTargetAuth } {
  const r = TargetSchema.safeParse(raw, { error: errorMap });
  if (r.success) return { target: r.data, auth: r.data.auth };
  const auth = isObject(raw) ? TargetAuthSchema.safeParse(raw.auth) : undefined;
  for (const iss of r.error.issues) {
    const at = [path, ...iss.path.map(String)].join('.');
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) {
        const hint =
          TOKEN_KEYS.test(key) && key !== 'tokenSecret' && key !== 'keyId'
            ? '; secrets never go in FHIR_TARGETS: put the token in its own secret and name it in tokenSecret'
            : '';
        problems.add(`${at}.${key}`, `is not a known setting${hint}`);
      }
    } else {
      problems.add(at, iss.message, iss.message === 'is required' ? 'required' : 'invalid');
    }
  }
  return auth?.success ? { auth: auth.data } : {};
}

function present(env: ConfigEnv, name: string): string | undefined {
  const v = env[name];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    // The SyntaxError quotes part of the input, which may be a private key: drop it.
    return { ok: false };
  }
}

function readBoolean(env: ConfigEnv, name: string, fallback: boolean, problems: Problems): boolean {
  const v = present(env, name);
  if (v === undefined) return fallback;
  if (/^true$/i.test(v)) return true;
  if (/^false$/i.test(v)) return false;
  problems.add(name, 'must be "true" or "false"');
  return fallback;
}

function readInt(env: ConfigEnv, name: string, fallback: number, min: number, max: number, problems: Problems): number {
  const v = present(env, name);
  if (v === undefined) return fallback;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    problems.add(name, `must be a whole number from ${min} to ${max}`);
    return fallback;
  }
  return n;
}

/** Parses BRIDGE_PRIVATE_JWKS: keys by kid, or undefined when unset (false when unusable). */
function readJwks(env: ConfigEnv, problems: Problems): Map<string, JWK> | undefined | false {
  const NAME = 'BRIDGE_PRIVATE_JWKS';
  const text = present(env, NAME);
  if (text === undefined) return undefined;
  const parsed = parseJson(text);
  if (!parsed.ok) {
    problems.add(NAME, 'is not valid JSON');
    return false;
  }
  const set = parsed.value;
  if (!isObject(set) || !Array.isArray(set.keys)) {
    problems.add(NAME, 'must be a JSON Web Key Set: {"keys": [<private JWK>, ...]}');
    return false;
  }
  if (set.keys.length === 0) problems.add(`${NAME}.keys`, 'must hold at least one key');
  const byKid = new Map<string, JWK>();
  set.keys.forEach((key: unknown, i: number) => {
    const at = `${NAME}.keys.${i}`;
    if (!isObject(key)) {
      problems.add(at, 'must be a JWK object');
      return;
    }
    let ok = true;
    if (key.kty !== 'RSA' && key.kty !== 'EC') {
      problems.add(`${at}.kty`, 'must be "RSA" or "EC"');
      ok = false;
    }
    if (typeof key.kid !== 'string' || key.kid.trim() === '') {
      problems.add(`${at}.kid`, 'is required: targets name their signing key by kid', 'required');
      ok = false;
    } else if (byKid.has(key.kid)) {
      problems.add(`${at}.kid`, 'is used by more than one key; kids must be unique');
      ok = false;
    }
    if (typeof key.d !== 'string') {
      problems.add(at, 'is not a private key (no "d" member); the bridge signs with it, so it needs the private key', 'required');
      ok = false;
    }
    if (ok) byKid.set(key.kid as string, key as JWK);
  });
  return byKid;
}

const API_AUTH_FORMS =
  '{"type":"bearer","tokensSecret":"<NAME>"}, {"type":"jwt","jwksUrl":"https://…","issuer":"…","audience":"…"}, or {"type":"none"} (local development only, with BRIDGE_ENV "local")';

/**
 * Reads API_AUTH, which is required: without it the API would be open, and it carries
 * mental-health data. Static tokens are read from the secret it names and boxed.
 */
function readApiAuth(env: ConfigEnv, problems: Problems): ApiAuth | undefined {
  const NAME = 'API_AUTH';
  const text = present(env, NAME);
  if (text === undefined) {
    problems.add(NAME, `is required: set API_AUTH; {"type":"none"} is only for local development (BRIDGE_ENV "local"). Forms: ${API_AUTH_FORMS}`, 'required');
    return undefined;
  }
  const parsed = parseJson(text);
  if (!parsed.ok) {
    problems.add(NAME, 'is not valid JSON');
    return undefined;
  }
  if (!isObject(parsed.value)) {
    problems.add(NAME, `must be a JSON object: ${API_AUTH_FORMS}`);
    return undefined;
  }
  const r = ApiAuthSchema.safeParse(parsed.value, { error: errorMap });
  if (!r.success) {
    for (const iss of r.error.issues) {
      const at = [NAME, ...iss.path.map(String)].join('.');
      if (iss.code === 'unrecognized_keys') {
        for (const key of iss.keys) {
          const hint = TOKEN_KEYS.test(key) ? '; tokens never go in API_AUTH: put them in their own secret and name it in tokensSecret' : '';
          problems.add(`${at}.${key}`, `is not a known setting${hint}`);
        }
      } else {
        problems.add(at, iss.message, iss.message === 'is required' ? 'required' : 'invalid');
      }
    }
    return undefined;
  }
  const a: RawApiAuth = r.data;
  if (a.type !== 'bearer') return a;

  const at = `${NAME}.tokensSecret`;
  const value = present(env, a.tokensSecret);
  if (value === undefined) {
    problems.add(at, `names the secret ${a.tokensSecret}, which is not set or is empty`, 'required');
    return undefined;
  }
  // A JSON object names each token ({"<caller name>": "<token>"}): the name is what jobs
  // record as their caller. Unnamed tokens (array, comma-separated list) are recorded by a
  // short digest instead (src/auth/inbound.ts).
  let list: { name?: string; value: unknown }[];
  if (value.startsWith('[') || value.startsWith('{')) {
    const tokens = parseJson(value);
    if (!tokens.ok || !(Array.isArray(tokens.value) || isObject(tokens.value))) {
      problems.add(
        at,
        `names the secret ${a.tokensSecret}, which is neither a JSON array of strings nor a comma-separated list, nor a JSON object of named tokens`,
      );
      return undefined;
    }
    list = Array.isArray(tokens.value)
      ? tokens.value.map((v: unknown) => ({ value: v }))
      : Object.entries(tokens.value).map(([name, v]) => ({ name, value: v }));
  } else {
    list = value.split(',').map((v) => ({ value: v }));
  }
  const tokens: string[] = [];
  const names: (string | undefined)[] = [];
  let ok = true;
  list.forEach(({ name, value: t }, i) => {
    const where = `token ${i + 1} in the secret ${a.tokensSecret}`;
    if (name !== undefined && !CALLER_NAME.test(name)) {
      // The name is not a secret, but it sits beside one: say what is wrong, not what it is.
      problems.add(at, `${where} has a name that is not 1 to 64 letters, digits or . _ : @ -`);
      ok = false;
    }
    if (typeof t !== 'string') {
      problems.add(at, `${where} is not a string`);
      ok = false;
      return;
    }
    const token = t.trim();
    if (token === '') return; // a trailing comma or blank entry
    if (!/^[\x21-\x7e]+$/.test(token)) {
      problems.add(at, `${where} has spaces or characters not allowed in a bearer token`);
      ok = false;
    } else if (token.length < MIN_API_TOKEN_LENGTH) {
      problems.add(at, `${where} is shorter than ${MIN_API_TOKEN_LENGTH} characters; use long random tokens`);
      ok = false;
    } else if (tokens.includes(token)) {
      if (name !== undefined && names[tokens.indexOf(token)] !== name) {
        problems.add(at, `${where} is the same token as another one with a different name; each caller needs its own token`);
        ok = false;
      }
    } else {
      tokens.push(token);
      names.push(name);
    }
  });
  if (ok && tokens.length === 0) {
    problems.add(at, `names the secret ${a.tokensSecret}, which holds no tokens`, 'required');
    return undefined;
  }
  return ok ? { type: 'bearer', tokensSecret: a.tokensSecret, tokens: new Secret<readonly string[]>(tokens), names } : undefined;
}

function defaultTargets(): { clinic: TargetConfig; primary: Record<string, TargetConfig> } {
  return {
    clinic: { name: 'clinic', baseUrl: DEFAULT_CLINIC_BASE_URL, auth: { type: 'none' }, timeoutMs: DEFAULT_TIMEOUT_MS },
    primary: {},
  };
}

/**
 * Reads and validates the bridge configuration. Throws one OperationOutcomeError (500)
 * listing every bad setting by path; messages never contain setting values.
 */
export function loadConfig(env: ConfigEnv): BridgeConfig {
  const problems = new Problems();

  const apiAuth = readApiAuth(env, problems);
  const { bridgeEnv, allowSyntheticIds } = readDeployment(env, problems);
  if (apiAuth?.type === 'none' && (bridgeEnv !== 'local' || !allowSyntheticIds)) {
    // An open API is a local developer's choice, never a deployment's default; and a
    // deployment that takes real national ids must know who calls it.
    problems.add(
      'API_AUTH',
      '{"type":"none"} (an open API) is only allowed for local development: where BRIDGE_ENV is "local" and ALLOW_SYNTHETIC_IDS is not false. A deployment must authenticate its callers: ' +
        'set API_AUTH to {"type":"bearer",…} or {"type":"jwt",…}',
    );
  }
  const identity = readIdentity(env, allowSyntheticIds, problems);
  const deliveryMaxAttempts = readInt(env, 'DELIVERY_MAX_ATTEMPTS', DEFAULT_DELIVERY_MAX_ATTEMPTS, 1, 100, problems);
  const retryAfterCapSeconds = readInt(env, 'RETRY_AFTER_CAP_SECONDS', DEFAULT_RETRY_AFTER_CAP_SECONDS, 0, 86_400, problems);
  const sweep = {
    queuedAfterMinutes: readInt(env, 'SWEEP_QUEUED_AFTER_MINUTES', DEFAULT_SWEEP_QUEUED_AFTER_MINUTES, 1, 10_080, problems),
    retryGraceMinutes: readInt(env, 'SWEEP_RETRY_GRACE_MINUTES', DEFAULT_SWEEP_RETRY_GRACE_MINUTES, 1, 10_080, problems),
    bundleRetentionDays: readInt(env, 'BUNDLE_RETENTION_DAYS', DEFAULT_BUNDLE_RETENTION_DAYS, 1, 3_650, problems),
  };
  const coordinationRefreshMinutes = readInt(env, 'COORDINATION_REFRESH_MINUTES', DEFAULT_COORDINATION_REFRESH_MINUTES, 1, 10_080, problems);
  const jwks = readJwks(env, problems);
  const tenants = readTenants(env, apiAuth, problems);
  const dataKeys = readDataKeys(env, allowSyntheticIds, problems);
  const smart = readSmartIssuers(env, problems);

  // Targets as written, keyed by their path in FHIR_TARGETS.
  const raw: { path: string; name: string; orgNumber?: string; target?: RawTarget; auth?: RawTargetAuth }[] = [];
  const targetsText = present(env, 'FHIR_TARGETS');
  if (targetsText === undefined && !allowSyntheticIds) {
    // The default target is the local development sandbox: never where real national ids are taken
    // (which production always is: there ALLOW_SYNTHETIC_IDS defaults to false and true is refused).
    problems.add(
      'FHIR_TARGETS',
      'is required where BRIDGE_ENV is "production" or ALLOW_SYNTHETIC_IDS is false: without it deliveries would go to the local development sandbox',
      'required',
    );
  }
  if (targetsText !== undefined) {
    const parsed = parseJson(targetsText);
    if (!parsed.ok) {
      problems.add('FHIR_TARGETS', 'is not valid JSON');
    } else if (!isObject(parsed.value)) {
      problems.add('FHIR_TARGETS', 'must be a JSON object: {"clinic": <target>, "primary": {"<orgNumber>": <target>}}');
    } else {
      const { clinic, primary, ...rest } = parsed.value;
      for (const key of Object.keys(rest)) problems.add(`FHIR_TARGETS.${key}`, 'is not a known setting (expected "clinic" and "primary")');
      if (clinic === undefined) {
        problems.add('FHIR_TARGETS.clinic', 'is required when FHIR_TARGETS is set', 'required');
      } else {
        raw.push({ path: 'FHIR_TARGETS.clinic', name: 'clinic', ...parseTarget(clinic, 'FHIR_TARGETS.clinic', problems) });
      }
      if (primary !== undefined && !isObject(primary)) {
        problems.add('FHIR_TARGETS.primary', 'must be a JSON object keyed by 9-digit organisation number');
      } else if (primary !== undefined) {
        for (const [org, value] of Object.entries(primary)) {
          const path = `FHIR_TARGETS.primary.${org}`;
          const bad = checkOrgNumber(org);
          if (bad) problems.add(path, `the key must be an organisation number: ${bad}`);
          raw.push({ path, name: `primary.${org}`, ...(bad ? {} : { orgNumber: org }), ...parseTarget(value, path, problems) });
        }
      }
    }
  }

  // Resolve secrets and check what depends on other settings.
  const resolved: { path: string; orgNumber?: string; config: TargetConfig }[] = [];
  const algByKid = new Map<string, SigningAlg>();
  let jwksRequiredBy: string | undefined;
  for (const { path, name, orgNumber, target, auth: a } of raw) {
    if (!a) continue;
    let auth: TargetAuth | undefined;
    if (a.type === 'none') {
      auth = a;
    } else if (a.type === 'bearer') {
      const token = present(env, a.tokenSecret);
      if (token === undefined) {
        problems.add(`${path}.auth.tokenSecret`, `names the secret ${a.tokenSecret}, which is not set or is empty`, 'required');
      } else if (!/^[\x21-\x7e]+$/.test(token)) {
        problems.add(`${path}.auth.tokenSecret`, `names the secret ${a.tokenSecret}, whose value has spaces or characters not allowed in a bearer token`);
      } else {
        auth = { type: 'bearer', tokenSecret: a.tokenSecret, token: new Secret(token) };
      }
    } else {
      if (jwks === undefined) {
        jwksRequiredBy ??= path;
      } else if (jwks !== false) {
        const key = jwks.get(a.keyId);
        if (!key) {
          problems.add(`${path}.auth.keyId`, 'names no key in BRIDGE_PRIVATE_JWKS (no key has this kid)');
        } else {
          const keyProblems = signingKeyProblems(key as Record<string, unknown>, a.alg);
          const otherAlg = algByKid.get(a.keyId);
          if (otherAlg && otherAlg !== a.alg) keyProblems.push('another target uses the same key with a different alg');
          for (const p of keyProblems) problems.add(`${path}.auth.keyId`, `the key it names in BRIDGE_PRIVATE_JWKS is unusable: ${p}`);
          if (keyProblems.length === 0) {
            algByKid.set(a.keyId, a.alg);
            auth = { ...a, privateKey: new Secret<JWK>({ ...key, alg: a.alg }) };
          }
        }
      }
    }
    if (!target || !auth) continue;
    const { baseUrl, timeoutMs } = target;
    resolved.push({ path, ...(orgNumber ? { orgNumber } : {}), config: { name, baseUrl, auth, timeoutMs } });
  }
  if (jwksRequiredBy) {
    problems.add('BRIDGE_PRIVATE_JWKS', `is required: ${jwksRequiredBy} uses smart-backend auth`, 'required');
  }

  if (problems.issues.length || !apiAuth) throw new OperationOutcomeError(outcome(problems.issues), 500);

  const targets = defaultTargets();
  if (targetsText !== undefined) {
    for (const r of resolved) {
      if (r.path === 'FHIR_TARGETS.clinic') targets.clinic = r.config;
      else if (r.orgNumber) targets.primary[r.orgNumber] = r.config;
    }
  }

  // Publish each key with the alg the targets sign with, so verifiers need not guess.
  const keys = jwks ? [...jwks.values()].map((k) => (k.kid && algByKid.has(k.kid) ? { ...k, alg: algByKid.get(k.kid) } : k)) : [];
  return {
    bridgeEnv,
    apiAuth,
    targets,
    ...(jwks ? { signingKeys: new Secret<PrivateJwks>({ keys }) } : {}),
    publicJwks: publicJwks({ keys }),
    allowSyntheticIds,
    identity: new Secret(identity),
    deliveryMaxAttempts,
    retryAfterCapSeconds,
    sweep,
    coordinationRefreshMinutes,
    tenants,
    dataKeys: new Secret(dataKeys),
    smart,
  };
}

/**
 * The identity settings alone (for the CLI, which needs no targets or API authentication):
 * the same rules as in {@link loadConfig}. Throws an OperationOutcomeError naming bad settings.
 */
export function loadIdentity(env: ConfigEnv): { allowSyntheticIds: boolean; identity: IdentityOptions } {
  const problems = new Problems();
  const { allowSyntheticIds } = readDeployment(env, problems);
  const identity = readIdentity(env, allowSyntheticIds, problems);
  if (problems.issues.length) throw new OperationOutcomeError(outcome(problems.issues), 500);
  return { allowSyntheticIds, identity };
}

/**
 * BRIDGE_ENV and ALLOW_SYNTHETIC_IDS. `local` (only wrangler.toml's `[env.local]`, `npm start`
 * and the tests set it) is local development, which uses synthetic ids, so it is refused
 * beside ALLOW_SYNTHETIC_IDS=false: a configuration that takes real national ids is a
 * deployment. `production` takes real ids only: ALLOW_SYNTHETIC_IDS defaults to false there
 * and "true" is refused.
 */
function readDeployment(env: ConfigEnv, problems: Problems): { bridgeEnv: BridgeEnv; allowSyntheticIds: boolean } {
  const NAME = 'BRIDGE_ENV';
  const value = present(env, NAME);
  let bridgeEnv: BridgeEnv;
  if (value === 'local' || value === 'production') bridgeEnv = value;
  else if (value !== undefined) problems.add(NAME, 'must be "local" or "production" (or unset)');
  const allowSyntheticIds = readBoolean(env, 'ALLOW_SYNTHETIC_IDS', bridgeEnv !== 'production', problems);
  if (bridgeEnv === 'production' && allowSyntheticIds) {
    problems.add('ALLOW_SYNTHETIC_IDS', 'must be false where BRIDGE_ENV is "production": production takes real national ids only');
  }
  if (bridgeEnv === 'local' && !allowSyntheticIds) {
    problems.add(
      NAME,
      '"local" (local development) is refused where ALLOW_SYNTHETIC_IDS is false: a configuration that accepts real national ids is a deployment, not local development',
    );
  }
  return { bridgeEnv, allowSyntheticIds };
}

/** Shortest IDENTITY_SECRET accepted: 32 characters of a random value is far past guessing. */
export const MIN_IDENTITY_SECRET_LENGTH = 32;

/**
 * IDENTIFIER_NAMESPACE and IDENTITY_SECRET. Outside production the development defaults serve;
 * a deployment that accepts real national ids (ALLOW_SYNTHETIC_IDS=false) must set both to its
 * own values, because both become part of every identity it writes and cannot change later.
 */
function readIdentity(env: ConfigEnv, allowSyntheticIds: boolean, problems: Problems): IdentityOptions {
  const permanent = 'it becomes part of every identity the bridge writes and can never change afterwards (README, "Identities")';
  let namespace = present(env, 'IDENTIFIER_NAMESPACE');
  if (namespace !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(namespace);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:' || url.search || url.hash || namespace.endsWith('/') || url.username) {
      problems.add(
        'IDENTIFIER_NAMESPACE',
        'must be an absolute https URL the deployment controls, without a trailing slash, query or fragment (e.g. https://fhir.clinic.example/sid)',
      );
      namespace = undefined;
    }
  }
  const secret = present(env, 'IDENTITY_SECRET');
  if (secret !== undefined && secret.length < MIN_IDENTITY_SECRET_LENGTH) {
    problems.add('IDENTITY_SECRET', `must be at least ${MIN_IDENTITY_SECRET_LENGTH} characters (a random value)`);
  }
  if (!allowSyntheticIds) {
    if (present(env, 'IDENTIFIER_NAMESPACE') === undefined) {
      problems.add('IDENTIFIER_NAMESPACE', `is required where ALLOW_SYNTHETIC_IDS is false: ${permanent}`, 'required');
    } else if (namespace === DEV_IDENTITY.namespace) {
      problems.add('IDENTIFIER_NAMESPACE', `must not be the development default where ALLOW_SYNTHETIC_IDS is false: ${permanent}`);
    }
    if (secret === undefined) {
      problems.add('IDENTITY_SECRET', `is required where ALLOW_SYNTHETIC_IDS is false: ${permanent}`, 'required');
    } else if (secret === DEV_IDENTITY.secret) {
      problems.add('IDENTITY_SECRET', 'must not be the development default where ALLOW_SYNTHETIC_IDS is false: it is public');
    }
  }
  return { namespace: namespace ?? DEV_IDENTITY.namespace, secret: secret ?? DEV_IDENTITY.secret };
}

/** A caller's name as TENANTS lists it: a static token's name or a JWT's client id (printable, no spaces). */
const TENANT_MEMBER = /^[\x21-\x7e]{1,256}$/;

/**
 * TENANTS: `{"<tenant>": ["<caller>", ...], ...}`, grouping callers (static token names, JWT
 * client ids) into tenants that share their jobs. Unset: every caller is its own tenant.
 * Problems name the tenant by position, never by name or member.
 */
function readTenants(env: ConfigEnv, apiAuth: ApiAuth | undefined, problems: Problems): Tenants {
  const NAME = 'TENANTS';
  const text = present(env, NAME);
  if (text === undefined) return NO_TENANTS;
  const parsed = parseJson(text);
  if (!parsed.ok || !isObject(parsed.value)) {
    problems.add(NAME, 'must be a JSON object: {"<tenant>": ["<caller name or client id>", ...]}');
    return NO_TENANTS;
  }
  const groups = new Map<string, string>();
  const names = new Set<string>();
  let ok = true;
  Object.entries(parsed.value).forEach(([tenant, members], i) => {
    const where = `tenant ${i + 1}`;
    if (!CALLER_NAME.test(tenant)) {
      problems.add(NAME, `${where} has a name that is not 1 to 64 letters, digits or . _ : @ -`);
      ok = false;
    }
    if (!Array.isArray(members) || members.length === 0) {
      problems.add(NAME, `${where} must list its callers: a non-empty JSON array of names`);
      ok = false;
      return;
    }
    members.forEach((m: unknown, j: number) => {
      if (typeof m !== 'string' || !TENANT_MEMBER.test(m)) {
        problems.add(NAME, `${where}, caller ${j + 1} is not a caller name (1 to 256 printable characters, no spaces)`);
        ok = false;
      } else if (groups.has(m) && groups.get(m) !== tenant) {
        problems.add(NAME, `${where}, caller ${j + 1} is listed in more than one tenant; a caller belongs to one`);
        ok = false;
      } else groups.set(m, tenant);
    });
    names.add(tenant);
  });
  // A caller named like a tenant it is not in would share that tenant's data by accident.
  for (const [member, tenant] of groups) {
    if (names.has(member) && member !== tenant) {
      problems.add(NAME, 'a caller listed in one tenant has the name of another tenant; rename the tenant');
      ok = false;
    }
  }
  if (apiAuth?.type === 'bearer') {
    apiAuth.names.forEach((n, i) => {
      if (n !== undefined && names.has(n) && groups.get(n) !== n) {
        problems.add(
          `${NAME}`,
          `token ${i + 1} in the secret ${apiAuth.tokensSecret} has the name of a tenant it is not listed in; rename the tenant or list the token in it`,
        );
        ok = false;
      }
    });
  }
  return ok ? { groups, names } : NO_TENANTS;
}

const DATA_KID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * DATA_ENCRYPTION_KEYS: `[{"kid": "...", "k": "<256 bits, base64url>"}, ...]`, the first
 * encrypting, all decrypting (key rotation). Where synthetic ids are allowed the development
 * key serves by default; where they are not, the setting is required and the development key
 * refused. Problems name the key by position, never its value.
 */
function readDataKeys(env: ConfigEnv, allowSyntheticIds: boolean, problems: Problems): DataKey[] {
  const NAME = 'DATA_ENCRYPTION_KEYS';
  const dev = [decodeDataKey(DEV_DATA_KEY)];
  const text = present(env, NAME);
  if (text === undefined) {
    if (!allowSyntheticIds) {
      problems.add(NAME, 'is required where ALLOW_SYNTHETIC_IDS is false: patient data in D1 is encrypted under it (README, "Data at rest")', 'required');
    }
    return dev;
  }
  const parsed = parseJson(text);
  if (!parsed.ok || !Array.isArray(parsed.value) || parsed.value.length === 0) {
    problems.add(NAME, 'must be a non-empty JSON array of keys: [{"kid": "<key id>", "k": "<256-bit key, base64url>"}, ...]');
    return dev;
  }
  const keys: DataKey[] = [];
  let ok = true;
  parsed.value.forEach((raw: unknown, i: number) => {
    const at = `${NAME}.${i}`;
    if (!isObject(raw)) {
      problems.add(at, 'must be a JSON object {"kid", "k"}');
      ok = false;
      return;
    }
    for (const key of Object.keys(raw)) {
      if (key !== 'kid' && key !== 'k') {
        problems.add(`${at}.${key}`, 'is not a known setting (expected "kid" and "k")');
        ok = false;
      }
    }
    const { kid, k } = raw;
    if (typeof kid !== 'string' || !DATA_KID.test(kid)) {
      problems.add(`${at}.kid`, 'must be 1 to 64 letters, digits or . _ -', typeof kid === 'string' ? 'invalid' : 'required');
      ok = false;
    } else if (keys.some((x) => x.kid === kid)) {
      problems.add(`${at}.kid`, 'is used by more than one key; key ids must be unique');
      ok = false;
    }
    if (typeof k !== 'string' || !BASE64URL.test(k)) {
      problems.add(`${at}.k`, 'must be a 256-bit key in base64url (43 characters)', typeof k === 'string' ? 'invalid' : 'required');
      ok = false;
      return;
    }
    let key: DataKey | undefined;
    try {
      key = decodeDataKey({ kid: String(kid), k });
    } catch {
      key = undefined;
    }
    if (!key || key.key.length !== DATA_KEY_BYTES) {
      const bits = key ? `; this key has ${key.key.length * 8} bits` : '';
      problems.add(`${at}.k`, `must be 256 bits (${DATA_KEY_BYTES} bytes, 43 base64url characters)${bits}`);
      ok = false;
    } else if (!allowSyntheticIds && k === DEV_DATA_KEY.k) {
      problems.add(`${at}.k`, 'must not be the development key where ALLOW_SYNTHETIC_IDS is false: it is public');
      ok = false;
    }
    if (ok && key) keys.push(key);
  });
  return ok ? keys : dev;
}

const ORIGIN = /^https?:\/\/[^/?#\s]+$/;
const hostOf = (origin: string): string => {
  try {
    return new URL(origin).hostname;
  } catch {
    return '';
  }
};

/**
 * SMART_ISSUERS: `[{"iss": "<EHR FHIR base URL>", "orgNumber": "<9 digits>", "clientId": "…",
 * "clientSecretSecret": "<env var>", "frameAncestors": ["https://ehr.example"]}]`, the EHRs that
 * may launch the coordination summary (https://hl7.org/fhir/smart-app-launch/app-launch.html)
 * and the organisation each speaks for. Unset: no EHR can launch it. Problems name the issuer
 * by position and setting, never a value.
 */
function readSmartIssuers(env: ConfigEnv, problems: Problems): SmartConfig {
  const NAME = 'SMART_ISSUERS';
  const text = present(env, NAME);
  if (text === undefined) return { issuers: [] };
  const parsed = parseJson(text);
  if (!parsed.ok || !Array.isArray(parsed.value)) {
    problems.add(NAME, 'must be a JSON array: [{"iss", "orgNumber", "clientId", "clientSecretSecret", "frameAncestors"?}, ...]');
    return { issuers: [] };
  }
  const issuers: SmartIssuer[] = [];
  parsed.value.forEach((raw: unknown, i: number) => {
    const at = `${NAME}.${i}`;
    if (!isObject(raw)) {
      problems.add(at, 'must be a JSON object {"iss", "orgNumber", "clientId", "clientSecretSecret", "frameAncestors"?}');
      return;
    }
    let ok = true;
    const bad = (path: string, message: string, code: OperationOutcomeIssue['code'] = 'invalid') => {
      problems.add(`${at}.${path}`, message, code);
      ok = false;
    };
    for (const key of Object.keys(raw)) {
      if (!['iss', 'orgNumber', 'clientId', 'clientSecretSecret', 'frameAncestors'].includes(key)) {
        bad(
          key,
          `is not a known setting${TOKEN_KEYS.test(key) && key !== 'clientSecretSecret' ? '; secrets never go in SMART_ISSUERS: put the client secret in its own secret and name it in clientSecretSecret' : ''}`,
        );
      }
    }
    const { iss, orgNumber, clientId, clientSecretSecret, frameAncestors } = raw;
    let base: string | undefined;
    if (typeof iss !== 'string') bad('iss', "is required: the EHR's FHIR base URL", 'required');
    else {
      const problem = targetUrlProblem(iss.trim());
      if (problem) bad('iss', problem);
      else base = iss.trim().replace(/\/+$/, '');
      if (base && issuers.some((x) => x.iss === base)) bad('iss', 'is listed more than once');
    }
    if (typeof orgNumber !== 'string') bad('orgNumber', 'is required: the 9-digit organisation number of the primary treatment team', 'required');
    else {
      const problem = checkOrgNumber(orgNumber);
      if (problem) bad('orgNumber', problem);
    }
    if (typeof clientId !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(clientId))
      bad(
        'clientId',
        'must be the client id the EHR registered (1 to 256 printable characters, no spaces)',
        typeof clientId === 'string' ? 'invalid' : 'required',
      );
    let secret: string | undefined;
    if (typeof clientSecretSecret !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(clientSecretSecret)) {
      bad(
        'clientSecretSecret',
        'must be the name of the environment variable holding the client secret',
        typeof clientSecretSecret === 'string' ? 'invalid' : 'required',
      );
    } else {
      secret = present(env, clientSecretSecret);
      if (secret === undefined) bad('clientSecretSecret', `names the secret ${clientSecretSecret}, which is not set or is empty`, 'required');
      else if (!/^[\x20-\x7e]+$/.test(secret))
        bad('clientSecretSecret', `names the secret ${clientSecretSecret}, whose value has characters other than printable ASCII`);
    }
    const ancestors: string[] = [];
    if (frameAncestors !== undefined) {
      if (!Array.isArray(frameAncestors)) bad('frameAncestors', 'must be a JSON array of origins (https://ehr.example)');
      else
        frameAncestors.forEach((o: unknown, j: number) => {
          if (typeof o !== 'string' || !ORIGIN.test(o) || (!o.startsWith('https://') && !LOOPBACK.test(hostOf(o)))) {
            bad(`frameAncestors.${j}`, 'must be an origin: https://host[:port] (http only for localhost)');
          } else ancestors.push(o);
        });
    }
    if (ok && base && typeof orgNumber === 'string' && typeof clientId === 'string' && typeof clientSecretSecret === 'string' && secret !== undefined) {
      issuers.push({ iss: base, orgNumber, clientId, clientSecretSecret, clientSecret: new Secret(secret), frameAncestors: ancestors });
    }
  });
  return { issuers };
}
