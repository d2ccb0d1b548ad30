/**
 * Authentication of callers of the bridge's own API (API_AUTH): static API tokens compared
 * in constant time, or SMART Backend Services-style access tokens (JWTs) verified against
 * the authorisation server's JWKS, and the scopes each kind of request needs.
 *
 * Nothing here knows HTTP; `src/http/auth.ts` turns results into 401/403 responses.
 * Results never contain the presented token.
 */
import { createRemoteJWKSet, customFetch, errors, type JWTPayload, jwtVerify } from 'jose';
import type { ApiAuth } from './config.ts';

/** Signature algorithms accepted on access tokens (SMART Backend Services: RS384, ES384; plus the common 256 variants). */
export const ACCESS_TOKEN_ALGS = ['RS384', 'ES384', 'RS256', 'ES256'] as const;
/** Allowed clock skew between the bridge and the authorisation server, in seconds. */
export const CLOCK_TOLERANCE_SECONDS = 30;

/** What jobs record as their caller where the API is open (API_AUTH none). */
export const LOCAL_CALLER = 'local';

/** Who called, as far as the token says. */
export interface Caller {
  kind: 'static-token' | 'jwt';
  /**
   * Who this is, as jobs record it: a JWT's `client_id`, else `azp`, else `sub`; a static
   * token's configured name (or `token:` and the first 12 hex digits of its SHA-256 when
   * unnamed); `local` where the API is open. Never the token.
   */
  name: string;
  /** `sub` (or `client_id`) of an access token; absent for static tokens. */
  subject?: string;
  /** Granted scopes; static API tokens are trusted with everything. */
  scopes: readonly string[] | 'all';
}

export type Verification =
  | { ok: true; caller: Caller }
  /** `unavailable`: the token could not be checked (JWKS unreachable), not found wrong. */
  | { ok: false; reason: string; unavailable?: boolean };

export interface InboundAuthenticator {
  readonly type: ApiAuth['type'];
  /** Checks a bearer token. Never throws for a bad token; never puts the token in the result. */
  verify(token: string): Promise<Verification>;
}

export interface InboundAuthDeps {
  /** fetch for the JWKS; the global one by default. */
  fetch?: typeof fetch;
}

const encoder = new TextEncoder();
const sha256 = async (s: string) => new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(s)));

/** Equal-length digests compared without an early exit. */
function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/**
 * Builds the verifier for API_AUTH. Create it once per process or isolate: it caches the
 * token digests and the remote key set.
 */
export function createInboundAuthenticator(auth: ApiAuth, deps: InboundAuthDeps = {}): InboundAuthenticator {
  if (auth.type === 'none') {
    return { type: 'none', verify: async () => ({ ok: true, caller: { kind: 'static-token', name: LOCAL_CALLER, scopes: 'all' } }) };
  }

  if (auth.type === 'bearer') {
    // Hashing both sides gives equal-length inputs, so the comparison's time says nothing
    // about the configured tokens' contents or lengths.
    let digests: Promise<Uint8Array[]> | undefined;
    return {
      type: 'bearer',
      async verify(token) {
        digests ??= Promise.all(auth.tokens.reveal().map(sha256));
        const presented = await sha256(token);
        let match = -1;
        (await digests).forEach((d, i) => {
          if (sameDigest(presented, d) && match < 0) match = i;
        });
        if (match < 0) return { ok: false, reason: 'the token is not valid' };
        const name = auth.names[match] ?? `token:${[...presented.slice(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
        return { ok: true, caller: { kind: 'static-token', name, scopes: 'all' } };
      },
    };
  }

  const keys = createRemoteJWKSet(new URL(auth.jwksUrl), {
    cooldownDuration: JWKS_COOLDOWN_MS,
    cacheMaxAge: 600_000,
    timeoutDuration: JWKS_TIMEOUT_MS,
    [customFetch]: singleFlight(deps.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a))),
  });
  return {
    type: 'jwt',
    async verify(token) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          issuer: auth.issuer,
          audience: auth.audience,
          algorithms: [...ACCESS_TOKEN_ALGS],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          requiredClaims: ['exp'],
        }));
      } catch (e) {
        return jwtFailure(e);
      }
      const timing = timingProblem(payload, auth.maxLifetimeSeconds, Math.floor(Date.now() / 1000));
      if (timing) return { ok: false, reason: timing };
      const subject = typeof payload.sub === 'string' ? payload.sub : typeof payload.client_id === 'string' ? payload.client_id : undefined;
      // The client is who sends episodes (RFC 9068 §2.2: client_id; OIDC: azp); a token
      // without one names its subject. A token naming nobody is still recorded as such.
      const name = [payload.client_id, payload.azp, payload.sub].find((v): v is string => typeof v === 'string' && v !== '') ?? 'jwt:unnamed';
      return { ok: true, caller: { kind: 'jwt', name, ...(subject ? { subject } : {}), scopes: scopesOf(payload.scope) } };
    },
  };
}

/** Minimum time between two key-set fetches for an unknown `kid` (jose's cooldown). */
export const JWKS_COOLDOWN_MS = 30_000;
/** How long a key-set fetch may take, for the request that started it and those waiting on it. */
export const JWKS_TIMEOUT_MS = 5_000;

/**
 * What jose's signature and claim checks leave open (RFC 7519 §4.1.4, §4.1.6): an `iat` in the
 * future beyond the clock tolerance (a token minted ahead of time, or by a clock that cannot
 * be trusted), and an `exp` farther ahead than `maxLifetimeSeconds`: a long-lived token is a
 * long-lived risk if it leaks. Returns why the token is refused, without its values.
 */
export function timingProblem(payload: JWTPayload, maxLifetimeSeconds: number, nowSeconds: number): string | undefined {
  if (typeof payload.iat === 'number' && payload.iat > nowSeconds + CLOCK_TOLERANCE_SECONDS) {
    return 'the access token\'s "iat" claim is in the future';
  }
  if (typeof payload.exp === 'number' && payload.exp - nowSeconds > maxLifetimeSeconds + CLOCK_TOLERANCE_SECONDS) {
    return `the access token's "exp" claim is more than ${maxLifetimeSeconds} s ahead (longer than this bridge accepts)`;
  }
  return undefined;
}

/** A key-set answer as plain data, so requests other than the one that fetched it can use it. */
interface SharedAnswer {
  status: number;
  contentType: string | null;
  body: string;
}

/**
 * Makes concurrent key-set fetches share one request. jose keeps one fetch in flight per key
 * set, except in Cloudflare Workers, where it starts a fetch per caller (a Response belongs to
 * the request that fetched it): 50 concurrent tokens with unknown `kid`s there meant 50 fetches
 * of the authorisation server's keys. Here the first caller fetches and reads the body; the
 * others wait for that text (plain data, not an I/O object) and get a Response of their own,
 * each bounded by its own timeout signal, so a waiter never hangs on a request that went
 * away. jose's cooldown then keeps unknown `kid`s from fetching again for 30 s.
 */
export function singleFlight(fetchImpl: typeof fetch): typeof fetch {
  const inflight = new Map<string, Promise<SharedAnswer>>();
  return async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    let answer = inflight.get(url);
    if (!answer) {
      const p: Promise<SharedAnswer> = (async () => {
        const res = await fetchImpl(input, init);
        return { status: res.status, contentType: res.headers.get('content-type'), body: await res.text() };
      })().finally(() => {
        if (inflight.get(url) === p) inflight.delete(url);
      });
      inflight.set(url, p);
      answer = p;
    }
    const { status, contentType, body } = await bounded(answer, init?.signal ?? undefined);
    return new Response(status === 204 || status === 304 ? null : body, { status, headers: contentType ? { 'content-type': contentType } : {} });
  };
}

/** `p`, or the signal's reason once it aborts, whichever comes first. */
function bounded<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Why a JWT was refused, in words that never include the token or its claims' values. */
function jwtFailure(e: unknown): Verification {
  if (e instanceof errors.JWTExpired) return { ok: false, reason: 'the access token has expired' };
  if (e instanceof errors.JWTClaimValidationFailed) {
    return { ok: false, reason: `the access token's "${e.claim}" claim is missing or not accepted here` };
  }
  if (e instanceof errors.JWKSNoMatchingKey) return { ok: false, reason: 'the access token is not signed by a key of the configured issuer' };
  if (e instanceof errors.JWSSignatureVerificationFailed) return { ok: false, reason: "the access token's signature does not verify" };
  if (e instanceof errors.JOSEAlgNotAllowed) return { ok: false, reason: `the access token's alg is not one of ${ACCESS_TOKEN_ALGS.join(', ')}` };
  if (e instanceof errors.JWKSMultipleMatchingKeys) return { ok: false, reason: "the access token's header matches more than one key; send a kid" };
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid || e instanceof errors.JOSENotSupported) {
    return { ok: false, reason: 'the access token is not a valid signed JWT' };
  }
  // Anything else (timeout, an unreachable or unreadable key set) means the token could
  // not be checked: the caller is not at fault, and may try again.
  return { ok: false, reason: "the authorisation server's keys could not be fetched; try again later", unavailable: true };
}

/** The `scope` claim: space-separated (RFC 8693 §4.2); an array is tolerated. */
export function scopesOf(claim: unknown): string[] {
  if (typeof claim === 'string') return claim.split(' ').filter(Boolean);
  if (Array.isArray(claim)) return claim.filter((s): s is string => typeof s === 'string' && s !== '');
  return [];
}

/** What a request does with the bridge's data. */
export type Access = 'write' | 'read' | 'any';

/**
 * Resource types whose scopes cover the bridge's API: the wildcard, and EpisodeOfCare (an
 * episode is what the bridge writes and what its jobs deliver).
 */
const RESOURCES = new Set(['*', 'EpisodeOfCare']);

/**
 * Whether granted scopes allow `access`. Only `system/` scopes count: the API is for
 * back-end systems, so `user/` and `patient/` scopes (on behalf of a person) do not.
 *
 * - write: `system/*.write`, `system/*.*`, `system/EpisodeOfCare.write|*`, or SMART v2
 *   `system/*.cu…` (permissions including create and update);
 * - read: `system/*.read`, `system/*.*`, `system/EpisodeOfCare.read|*`, or v2 with `r`;
 * - any: a valid token, whatever its scopes.
 *
 * A write scope does not imply read (as in SMART). Scopes with v2 query parameters
 * (`?category=…`) are not honoured: the API cannot filter by them.
 */
export function allows(scopes: Caller['scopes'], access: Access): boolean {
  if (access === 'any' || scopes === 'all') return true;
  return scopes.some((s) => {
    const m = /^system\/([A-Za-z*]+)\.([a-z*]+)$/.exec(s);
    if (!m || !RESOURCES.has(m[1]!)) return false;
    const perm = m[2]!;
    if (perm === '*' || perm === access) return true;
    // SMART v2: letters from "cruds" in that order.
    if (!/^c?r?u?d?s?$/.test(perm)) return false;
    return access === 'write' ? perm.includes('c') && perm.includes('u') : perm.includes('r');
  });
}

/** The scope to name in a 403's WWW-Authenticate. */
export const SCOPE_NEEDED: Record<Exclude<Access, 'any'>, string> = { write: 'system/*.write', read: 'system/*.read' };
