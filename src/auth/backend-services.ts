/**
 * Authorization for requests to a FHIR target. For `smart-backend` targets this is the SMART
 * Backend Services client-credentials flow
 * (https://hl7.org/fhir/smart-app-launch/backend-services.html): a short-lived JWT client
 * assertion (RFC 7523) signed with our private key buys an access token, which is cached
 * until shortly before it expires.
 *
 * Runs in workerd and Node alike: signing goes through jose on WebCrypto, I/O (fetch, clock)
 * is passed in.
 */
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { CryptoKey } from 'jose';
import { importJWK, SignJWT } from 'jose';
import * as z from 'zod/mini';
import { issue, OperationOutcomeError, outcome } from '../fhir/outcome.ts';
import type { TargetAuth } from './config.ts';

export interface TokenProviderDeps {
  fetch: typeof fetch;
  /** Milliseconds since the epoch, like `Date.now`. */
  now: () => number;
}

export interface TokenProvider {
  /** The `Authorization` header value for the next request, or undefined for no auth. */
  authorization(): Promise<string | undefined>;
  /** Forgets the cached access token; call after the target answered 401. */
  invalidate(): void;
}

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/**
 * The spec caps assertion lifetime at five minutes; we stay a minute under it so a server
 * whose clock runs ahead of ours still sees `exp` within its limit.
 */
export const ASSERTION_LIFETIME_SECONDS = 240;
/** Refresh this long before the token's `expires_in` runs out (at most half its life). */
export const REFRESH_MARGIN_SECONDS = 60;
/** Used when a token response omits `expires_in` (the spec recommends five minutes or less). */
export const DEFAULT_EXPIRES_IN_SECONDS = 300;

const TokenResponse = z.object({
  access_token: z.string().check(z.regex(/^[\x21-\x7e]+$/)),
  token_type: z.string().check(z.regex(/^bearer$/i)),
  expires_in: z.optional(z.coerce.number().check(z.positive())),
});

const OAuthError = z.object({
  error: z.string().check(z.regex(/^[\x20\x21\x23-\x5b\x5d-\x7e]{1,100}$/)),
  error_description: z.optional(z.string()),
});

/** What a token provider needs of a target's configuration (sync/target-config.ts). */
export interface TokenTarget {
  /** For logs and error messages. */
  name: string;
  auth: TargetAuth;
  timeoutMs: number;
}

/**
 * Makes the `Authorization` source for one target: nothing for `none`, the configured token
 * for `bearer`, and a cached SMART Backend Services access token for `smart-backend`.
 */
export function createTokenProvider(target: TokenTarget, deps: TokenProviderDeps): TokenProvider {
  const auth = target.auth;
  switch (auth.type) {
    case 'none':
      return { authorization: async () => undefined, invalidate: () => {} };
    case 'bearer':
      return { authorization: async () => `Bearer ${auth.token.reveal()}`, invalidate: () => {} };
    case 'smart-backend':
      return smartBackendProvider(auth, target.name, target.timeoutMs, deps);
  }
}

type SmartAuth = Extract<TargetAuth, { type: 'smart-backend' }>;

function smartBackendProvider(auth: SmartAuth, name: string, timeoutMs: number, deps: TokenProviderDeps): TokenProvider {
  let cached: { header: string; refreshAt: number } | undefined;
  let inflight: Promise<string> | undefined;
  let key: Promise<CryptoKey | Uint8Array> | undefined;

  const signingKey = () => {
    key ??= importJWK(auth.privateKey.reveal(), auth.alg).catch((e: unknown) => {
      key = undefined;
      throw fail(name, 502, 'security', 'the configured signing key could not be imported', e);
    });
    return key;
  };

  async function assertion(): Promise<string> {
    const iat = Math.floor(deps.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: auth.alg, kid: auth.keyId, typ: 'JWT', ...(auth.jku ? { jku: auth.jku } : {}) })
      .setIssuer(auth.clientId)
      .setSubject(auth.clientId)
      .setAudience(auth.tokenUrl)
      .setJti(crypto.randomUUID())
      .setIssuedAt(iat)
      .setExpirationTime(iat + ASSERTION_LIFETIME_SECONDS)
      .sign(await signingKey());
  }

  async function requestToken(): Promise<{ header: string; refreshAt: number }> {
    const startedAt = deps.now();
    const jwt = await assertion();
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: auth.scope,
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: jwt,
    });
    let res: Response;
    try {
      res = await deps.fetch(auth.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: body.toString(),
        // A redirect would carry the assertion somewhere we did not configure.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      throw timedOut
        ? fail(name, 504, 'timeout', 'the token endpoint did not answer in time', e)
        : fail(name, 502, 'transient', 'the token endpoint could not be reached', e);
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) throw refusal(name, res, text, jwt);

    const json = parseJsonOrUndefined(text);
    const parsed = TokenResponse.safeParse(json);
    if (!parsed.success) {
      throw fail(name, 502, 'security', 'the token endpoint answered without a usable bearer access_token');
    }
    const expiresIn = parsed.data.expires_in ?? DEFAULT_EXPIRES_IN_SECONDS;
    const margin = Math.min(REFRESH_MARGIN_SECONDS, expiresIn / 2);
    return {
      header: `Bearer ${parsed.data.access_token}`,
      // Counted from when we asked, not when the answer came: errs on the early side.
      refreshAt: startedAt + (expiresIn - margin) * 1000,
    };
  }

  return {
    async authorization() {
      if (cached && deps.now() < cached.refreshAt) return cached.header;
      if (!inflight) {
        const p: Promise<string> = requestToken().then(
          (token) => {
            if (inflight === p) {
              cached = token;
              inflight = undefined;
            }
            return token.header;
          },
          (e: unknown) => {
            if (inflight === p) inflight = undefined;
            throw e;
          },
        );
        inflight = p;
      }
      // The provider is shared by every delivery in the isolate; a request that joins another
      // one's token request waits at most the target's timeout, so it cannot hang on a request
      // the runtime has cancelled.
      return waitAtMost(inflight, timeoutMs + 1_000, () => fail(name, 504, 'timeout', 'the token endpoint did not answer in time'));
    },
    invalidate() {
      cached = undefined;
      inflight = undefined;
    },
  };
}

function waitAtMost<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function fail(name: string, status: number, code: OperationOutcomeIssue['code'], message: string, cause?: unknown): OperationOutcomeError {
  const err = new OperationOutcomeError(outcome([issue(code, `Token request for FHIR target ${name} failed: ${message}`)]), status);
  // The cause is kept for debugging but never put into the message; it holds no request body.
  if (cause !== undefined) Object.defineProperty(err, 'cause', { value: cause, enumerable: false });
  return err;
}

/** A body as JSON, or undefined when it is not JSON. */
function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const JWT_LIKE = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g;

/** A token endpoint's refusal, with its OAuth error text but never our assertion. */
function refusal(name: string, res: Response, text: string, jwt: string): OperationOutcomeError {
  const json = parseJsonOrUndefined(text);
  const oauth = OAuthError.safeParse(json);
  let detail = `HTTP ${res.status}`;
  if (oauth.success) {
    detail += ` ${oauth.data.error}`;
    const description = oauth.data.error_description
      // A server that echoes what it was sent must not get our assertion into our logs.
      ?.split(jwt)
      .join('[redacted]')
      .replace(JWT_LIKE, '[redacted]')
      .replace(/[\x00-\x1f\x7f]+/g, ' ')
      .slice(0, 300);
    if (description) detail += `: ${description}`;
  }
  const error = oauth.success ? oauth.data.error : undefined;
  if (res.status === 429) return fail(name, 503, 'throttled', `the token endpoint is rate limiting (${detail})`);
  if (res.status >= 500) return fail(name, 503, 'transient', `the token endpoint had an error (${detail})`);
  if (res.status >= 300 && res.status < 400) return fail(name, 502, 'security', `the token endpoint redirected (${detail}); configure its final URL`);
  const code = res.status === 403 || error === 'invalid_scope' || error === 'unauthorized_client' || error === 'access_denied' ? 'security' : 'login';
  return fail(name, 502, code, `the token endpoint refused the request (${detail})`);
}
