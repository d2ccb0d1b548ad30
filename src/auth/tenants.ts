/**
 * Tenants: whose jobs, ledger rows and stored episodes a caller may see and change. A tenant
 * is the caller by default (a JWT's client id, a static token's name); TENANTS groups several
 * callers into one (e.g. the journal and an integration engine of one clinic). Several
 * clinics may share one deployment; none sees another's data.
 */
import type { InboundAuthenticator } from './inbound.ts';

/** The tenant of the open API (API_AUTH none), and of jobs stored before tenancy without a caller. */
export const DEFAULT_TENANT = 'local';

/** What JWTs naming no client are recorded as (src/auth/inbound.ts): not a tenant anyone may share. */
const UNNAMED_JWT = 'jwt:unnamed';

/** TENANTS as configured: each grouped caller's tenant, and every configured tenant's name. */
export interface Tenants {
  readonly groups: ReadonlyMap<string, string>;
  readonly names: ReadonlySet<string>;
}

export const NO_TENANTS: Tenants = Object.freeze({ groups: new Map<string, string>(), names: new Set<string>() });

/**
 * The tenant of a caller, or undefined where the caller cannot be given one safely: a JWT
 * naming no client, an authenticated caller named `local` (that name is the open API's and
 * holds unattributed older jobs), or an ungrouped caller whose name is a configured tenant's
 * (it would otherwise join that tenant by accident). `open`: the API is open (API_AUTH none).
 */
export function tenantOf(tenants: Tenants, callerName: string, open = false): string | undefined {
  const grouped = tenants.groups.get(callerName);
  if (grouped !== undefined) return grouped;
  if (open) return callerName;
  if (callerName === UNNAMED_JWT || callerName === DEFAULT_TENANT || tenants.names.has(callerName)) return undefined;
  return callerName;
}

/** An authenticator that also knows the deployment's tenants (see `withTenants`). */
export interface TenantAwareAuthenticator extends InboundAuthenticator {
  readonly tenants: Tenants;
}

/** Attaches TENANTS to the API's authenticator, so the auth middleware can name each caller's tenant. */
export function withTenants(auth: InboundAuthenticator, tenants: Tenants): TenantAwareAuthenticator {
  return { type: auth.type, verify: (token) => auth.verify(token), tenants };
}

/** The tenants an authenticator knows; every caller is its own tenant when none are configured. */
export function tenantsOf(auth: InboundAuthenticator): Tenants {
  return 'tenants' in auth ? (auth as TenantAwareAuthenticator).tenants : NO_TENANTS;
}
