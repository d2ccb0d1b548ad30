/**
 * Caller authentication for the HTTP API (RFC 6750 bearer tokens). Everything is protected
 * except a short list of public service routes; each request needs a scope for what it does
 * (write, read or just a valid token). Failures are OperationOutcomes: 401 `login` with
 * `WWW-Authenticate: Bearer`, 403 `forbidden` for a missing scope, 503 `transient` when the
 * authorisation server's keys cannot be fetched. Responses never repeat the token.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { type Access, allows, type Caller, type InboundAuthenticator, LOCAL_CALLER, SCOPE_NEEDED } from '../auth/inbound.ts';
import { DEFAULT_TENANT, tenantOf, tenantsOf } from '../auth/tenants.ts';
import { issue, OperationOutcomeError, outcome } from '../fhir/outcome.ts';
import { fhirJson } from './errors.ts';

const REALM = 'imh-bridge';

/** Routes anyone may call: liveness, the API description and the bridge's public keys. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/', '/healthz', '/openapi.json', '/docs', '/.well-known/jwks.json']);

/** POST operations that only compute an answer (nothing stored), so any valid token may call them. */
const COMPUTE_ONLY = new Set(['/v1/episodes/$map', '/v1/$validate', '/v1/QuestionnaireResponse/$extract']);

/**
 * What a request does. Reads of jobs, of delivery health, of coordination requests and of an episode's coordination summary need read; reads of published content and the
 * compute-only operations need a valid token; everything else, including methods and
 * routes not listed (PUT /v1/episodes/{id}, $import, $replay), needs write.
 */
export function accessFor(method: string, path: string): Access {
  const m = method.toUpperCase();
  if (m === 'GET' || m === 'HEAD')
    return /^\/v1\/(jobs|coordination|health)(\/|$)/.test(path) || /^\/v1\/episodes\/[^/]+\/summary$/.test(path) ? 'read' : 'any';
  if (m === 'POST' && COMPUTE_ONLY.has(path)) return 'any';
  return 'write';
}

/** `Authorization: Bearer <token>` → the token; undefined when absent or another scheme. */
function bearerToken(header: string | undefined): { token?: string; malformed?: boolean } {
  if (!header) return {};
  const m = /^Bearer(?: +(.*))?$/i.exec(header.trim());
  if (!m) return {};
  const token = m[1]?.trim();
  return token && /^[\x21-\x7e]+$/.test(token) ? { token } : { malformed: true };
}

function deny(c: Context, status: 401 | 403 | 503, code: 'login' | 'forbidden' | 'transient', message: string, challenge?: string): Response {
  return fhirJson(c, outcome([issue(code, message)]), status, challenge ? { 'www-authenticate': challenge } : {});
}

/**
 * `caller`: who is calling; `tenant`: whose data the request may see and change (undefined
 * when the caller has no tenant: see `tenantOf`).
 */
export type AuthVariables = { caller?: Caller; tenant?: string };

/**
 * The tenant of the request: the authenticated caller's, the open API's (`local`) where
 * nothing is checked. Throws 403 for a caller that has none (see `tenantOf`).
 */
export function requestTenant(c: Context<{ Variables: AuthVariables }>): string {
  if (!c.get('caller')) return DEFAULT_TENANT;
  const tenant = c.get('tenant');
  if (tenant === undefined) {
    throw new OperationOutcomeError(
      outcome([
        issue(
          'forbidden',
          "this caller belongs to no tenant: its access token names no client, or its name is reserved or a tenant's it is not listed in (TENANTS)",
        ),
      ]),
      403,
    );
  }
  return tenant;
}

/** Middleware guarding every route but PUBLIC_PATHS; sets `caller` and `tenant` for handlers. */
export function requireAuth(auth: InboundAuthenticator): MiddlewareHandler<{ Variables: AuthVariables }> {
  const tenants = tenantsOf(auth);
  return async (c, next) => {
    if (PUBLIC_PATHS.has(c.req.path)) return next();
    if (auth.type === 'none') {
      c.set('caller', { kind: 'static-token', name: LOCAL_CALLER, scopes: 'all' });
      c.set('tenant', tenantOf(tenants, LOCAL_CALLER, true));
      return next();
    }

    const { token, malformed } = bearerToken(c.req.header('authorization'));
    if (!token) {
      return malformed
        ? deny(c, 401, 'login', 'the Authorization header is not "Bearer <token>"', `Bearer realm="${REALM}", error="invalid_token"`)
        : deny(c, 401, 'login', 'authentication required: send Authorization: Bearer <token>', `Bearer realm="${REALM}"`);
    }
    const result = await auth.verify(token);
    if (!result.ok) {
      if (result.unavailable) return deny(c, 503, 'transient', `the access token could not be checked: ${result.reason}`);
      return deny(c, 401, 'login', `authentication failed: ${result.reason}`, `Bearer realm="${REALM}", error="invalid_token"`);
    }
    const access = accessFor(c.req.method, c.req.path);
    if (!allows(result.caller.scopes, access)) {
      const needed = SCOPE_NEEDED[access as Exclude<Access, 'any'>];
      return deny(
        c,
        403,
        'forbidden',
        `this request needs ${access} access: a token with ${needed} or system/*.* (user/ and patient/ scopes are not accepted)`,
        `Bearer realm="${REALM}", error="insufficient_scope", scope="${needed}"`,
      );
    }
    c.set('caller', result.caller);
    c.set('tenant', tenantOf(tenants, result.caller.name));
    return next();
  };
}
