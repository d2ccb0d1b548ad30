/**
 * The deployment's identity settings: the namespace of every identifier system the bridge
 * writes, and the secret under which keys derived from national ids are computed.
 *
 * Both are permanent for a deployment. Every resource the bridge writes is found again by its
 * business identifier (`PUT Type?identifier=system|value`); changing the namespace or the
 * secret gives every resource a new identity, so the next send would duplicate everything on
 * the servers. Changing them needs a migration of the servers' identifiers, not a redeploy.
 */
import { createHmac } from 'node:crypto';

export interface IdentityOptions {
  /**
   * Base of the identifier systems, e.g. `https://fhir.clinic.example/sid`: systems are
   * `{namespace}/{clinic org number}/{kind}`. An absolute https URL the deployment controls.
   */
  namespace: string;
  /** Secret key of the pseudonyms derived from national ids (HMAC-SHA-256). */
  secret: string;
}

/**
 * Development defaults: fine for the local sandbox and tests, refused where real national ids
 * are accepted (see config.ts). Their values are public, so pseudonyms under them are not.
 */
export const DEV_IDENTITY: Readonly<IdentityOptions> = Object.freeze({
  namespace: 'https://imh-bridge.example.no/fhir/sid',
  secret: 'imh-bridge-development-identity-secret',
});

/**
 * A keyed pseudonym of a string that contains a national id: HMAC-SHA-256 under the
 * deployment's secret, as 32 hex digits (128 bits). A plain hash of a national id can be
 * reversed by trying the ~1,000 candidates of a birth date; without the secret this cannot.
 * Synchronous (node:crypto, which workerd provides with nodejs_compat), so that mapping stays a
 * pure, synchronous function.
 */
export function pseudonym(identity: IdentityOptions, text: string): string {
  return createHmac('sha256', identity.secret).update(text, 'utf8').digest('hex').slice(0, 32);
}

/** Identifier system for one kind of business identifier of one clinic. */
export function businessIdSystem(identity: IdentityOptions, clinicOrgNumber: string, kind: string): string {
  return `${identity.namespace}/${clinicOrgNumber}/${kind}`;
}
