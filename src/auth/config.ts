/**
 * The authentication settings the bridge reads, as types and zod schemas: how the bridge
 * authenticates to each FHIR target (FHIR_TARGETS.*.auth: none, a bearer token, or SMART
 * Backend Services, https://hl7.org/fhir/smart-app-launch/backend-services.html), how callers
 * of its API authenticate (API_AUTH), and the EHRs that may launch the coordination summary
 * (SMART_ISSUERS, https://hl7.org/fhir/smart-app-launch/app-launch.html). config.ts reads the
 * environment with these and resolves the secrets they name.
 */
import type { JWK } from 'jose';
import * as z from 'zod/mini';
import { endpointUrl, envName, noControl, oauthScope } from '../config-fields.ts';
import { SIGNING_ALGS, type SigningAlg } from './jwks.ts';
import type { Secret } from './secret.ts';

/** The scope a SMART Backend Services target is asked for when its settings name none. */
export const DEFAULT_SMART_SCOPE = 'system/*.write system/*.read';
/** RFC 9068 access tokens are short-lived; an hour is the usual ceiling of authorisation servers. */
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 3_600;
export const MAX_TOKEN_LIFETIME_LIMIT_SECONDS = 86_400;
/** Shortest static API token accepted: 32 characters of a random token is far past guessing. */
export const MIN_API_TOKEN_LENGTH = 32;
/** A static API token's name, as jobs record their caller. */
export const CALLER_NAME = /^[A-Za-z0-9._:@-]{1,64}$/;

/** How the bridge authenticates to one FHIR target. Secrets are resolved and boxed. */
export type TargetAuth =
  | { type: 'none' }
  | {
      type: 'bearer';
      /** Name of the environment variable that held the token. */
      tokenSecret: string;
      token: Secret<string>;
    }
  | {
      /** SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html). */
      type: 'smart-backend';
      tokenUrl: string;
      clientId: string;
      scope: string;
      keyId: string;
      alg: SigningAlg;
      /** Optional JWKS URL put in the assertion header, for servers that fetch our keys. */
      jku?: string;
      /** The private JWK named by keyId in BRIDGE_PRIVATE_JWKS. */
      privateKey: Secret<JWK>;
    };

/**
 * How callers of the bridge's own HTTP API authenticate (API_AUTH). There is no default:
 * a deployment says which, and `none` is an explicit opt-out for local sandboxes.
 */
export type ApiAuth =
  | { type: 'none' }
  | {
      /** Static API tokens; each caller sends one as `Authorization: Bearer <token>`. */
      type: 'bearer';
      /** Name of the environment variable that held the tokens. */
      tokensSecret: string;
      tokens: Secret<readonly string[]>;
      /** The configured name of each token (same order), recorded as the caller of its jobs. */
      names: readonly (string | undefined)[];
    }
  | {
      /** SMART Backend Services-style access tokens (JWTs) issued by an authorisation server. */
      type: 'jwt';
      jwksUrl: string;
      issuer: string;
      audience: string;
      /** Longest an access token may still be valid when it arrives (`exp` − now), in seconds. */
      maxLifetimeSeconds: number;
    };

/**
 * One EHR (SMART App Launch issuer) that may open the coordination summary, and the primary
 * treatment organisation it speaks for (SMART_ISSUERS).
 */
export interface SmartIssuer {
  /** The EHR's FHIR base URL, the `iss` of its launches, no trailing slash. */
  iss: string;
  /** 9-digit organisation number of the primary treatment team this EHR belongs to. */
  orgNumber: string;
  /** The client id the EHR registered the bridge under. */
  clientId: string;
  /** Name of the environment variable holding the client secret (client_secret_basic). */
  clientSecretSecret: string;
  clientSecret: Secret<string>;
  /** Origins allowed to frame the summary page (CSP frame-ancestors); none: it may not be framed. */
  frameAncestors: readonly string[];
}

export interface SmartConfig {
  issuers: readonly SmartIssuer[];
}

/** FHIR_TARGETS.*.auth. */
export const TargetAuthSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({ type: z.literal('bearer'), tokenSecret: envName }),
  z.strictObject({
    type: z.literal('smart-backend'),
    tokenUrl: endpointUrl,
    clientId: noControl,
    scope: z._default(oauthScope, DEFAULT_SMART_SCOPE),
    keyId: noControl,
    alg: z.enum(SIGNING_ALGS),
    jku: z.optional(endpointUrl),
  }),
]);

/** API_AUTH. */
export const ApiAuthSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({ type: z.literal('bearer'), tokensSecret: envName }),
  z.strictObject({
    type: z.literal('jwt'),
    // JWKS fetched over https (http only on loopback), kept exactly as configured.
    jwksUrl: endpointUrl,
    issuer: noControl,
    audience: noControl,
    maxLifetimeSeconds: z._default(
      z
        .int({ error: `must be a whole number of seconds from 60 to ${MAX_TOKEN_LIFETIME_LIMIT_SECONDS}` })
        .check(
          z.gte(60, { error: `must be a whole number of seconds from 60 to ${MAX_TOKEN_LIFETIME_LIMIT_SECONDS}` }),
          z.lte(MAX_TOKEN_LIFETIME_LIMIT_SECONDS, { error: `must be a whole number of seconds from 60 to ${MAX_TOKEN_LIFETIME_LIMIT_SECONDS}` }),
        ),
      DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
    ),
  }),
]);
/** API_AUTH as written, before the secret it names is resolved. */
export type RawApiAuth = z.output<typeof ApiAuthSchema>;

/** FHIR_TARGETS.*.auth as written, before the secret it names is resolved. */
export type RawTargetAuth = z.output<typeof TargetAuthSchema>;
