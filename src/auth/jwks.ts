/**
 * The bridge's signing keys as a JSON Web Key Set (RFC 7517). Targets that use SMART Backend
 * Services (https://hl7.org/fhir/smart-app-launch/backend-services.html) fetch the public half
 * from the bridge's JWKS URL, or have it registered, to verify our client assertions.
 */
import type { JWK } from 'jose';

/** The client-assertion algorithms SMART Backend Services requires servers to support. */
export const SIGNING_ALGS = ['RS384', 'ES384'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/** A public verification key as published; never carries private members. */
export interface PublicJwk {
  kty: 'RSA' | 'EC';
  kid?: string;
  alg?: string;
  use: 'sig';
  key_ops: ['verify'];
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
}

export interface PublicJwks {
  keys: PublicJwk[];
}

export interface PrivateJwks {
  keys: JWK[];
}

const EC_ALG_BY_CRV: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };

const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/**
 * Public JWKS for a set of private keys: copies only the public members (kty, n, e, crv, x,
 * y, kid, alg) by allow-list, so private members (d, p, q, dp, dq, qi, oth, k) can never slip
 * through. Keys that have no public half (symmetric `oct`) or an unsupported type are left out.
 */
export function publicJwks(privateJwks: { keys: readonly JWK[] }): PublicJwks {
  const keys: PublicJwk[] = [];
  for (const k of privateJwks.keys) {
    let pub: PublicJwk;
    if (k.kty === 'RSA' && str(k.n) && str(k.e)) {
      pub = { kty: 'RSA', n: k.n, e: k.e, use: 'sig', key_ops: ['verify'] };
    } else if (k.kty === 'EC' && str(k.crv) && str(k.x) && str(k.y)) {
      pub = { kty: 'EC', crv: k.crv, x: k.x, y: k.y, use: 'sig', key_ops: ['verify'] };
    } else {
      continue;
    }
    if (str(k.kid)) pub.kid = k.kid;
    const alg = str(k.alg) ? k.alg : k.kty === 'EC' ? EC_ALG_BY_CRV[k.crv as string] : undefined;
    if (alg) pub.alg = alg;
    keys.push(pub);
  }
  return { keys };
}

const B64URL = /^[A-Za-z0-9_-]+$/;
const RSA_PRIVATE = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'] as const;
const EC_PRIVATE = ['x', 'y', 'd'] as const;
/** 2048-bit modulus = 256 bytes = 342 base64url characters (RFC 7518 §3.3 minimum). */
const MIN_RSA_N_CHARS = 342;

/**
 * Checks that a private JWK can sign with `alg`. Returns the problems found; messages name
 * the members, never their values.
 */
export function signingKeyProblems(jwk: Record<string, unknown>, alg: SigningAlg): string[] {
  const problems: string[] = [];
  const members = alg === 'RS384' ? RSA_PRIVATE : EC_PRIVATE;
  const kty = alg === 'RS384' ? 'RSA' : 'EC';
  if (jwk.kty !== kty) {
    problems.push(`the key must have kty "${kty}" for ${alg}`);
    return problems;
  }
  if (alg === 'ES384' && jwk.crv !== 'P-384') problems.push('the key must have crv "P-384" for ES384');
  const missing = members.filter((m) => !(typeof jwk[m] === 'string' && B64URL.test(jwk[m] as string)));
  if (missing.length) problems.push(`the key lacks private key member(s) ${missing.join(', ')} as base64url strings`);
  if (alg === 'RS384' && typeof jwk.n === 'string' && jwk.n.length < MIN_RSA_N_CHARS) {
    problems.push('the RSA modulus must be at least 2048 bits');
  }
  if (jwk.alg !== undefined && jwk.alg !== alg) problems.push(`the key's alg must be ${alg} (or absent)`);
  if (jwk.use !== undefined && jwk.use !== 'sig') problems.push('the key\'s use must be "sig" (or absent)');
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('sign'))) {
    problems.push('the key\'s key_ops must include "sign" (or be absent)');
  }
  return problems;
}
