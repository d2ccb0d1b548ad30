/**
 * One FHIR target as FHIR_TARGETS configures it: its base URL, how the bridge authenticates
 * to it (auth/config.ts) and the timeout of each request. config.ts reads FHIR_TARGETS with
 * this schema and resolves the auth secrets.
 */
import * as z from 'zod/mini';
import { type TargetAuth, TargetAuthSchema } from '../auth/config.ts';
import { targetBaseUrl } from '../config-fields.ts';

/** The clinic's FHIR server when FHIR_TARGETS is not set: the local sandbox. */
export const DEFAULT_CLINIC_BASE_URL = 'http://127.0.0.1:8103/fhir';
export const DEFAULT_TIMEOUT_MS = 15_000;

export interface TargetConfig {
  /** `clinic` or `primary.<orgNumber>`: for logs and error messages. */
  name: string;
  /** FHIR base URL, no trailing slash. */
  baseUrl: string;
  auth: TargetAuth;
  timeoutMs: number;
}

export const TargetSchema = z.strictObject({
  baseUrl: targetBaseUrl,
  auth: TargetAuthSchema,
  timeoutMs: z._default(z.int().check(z.gte(1), z.lte(600_000)), DEFAULT_TIMEOUT_MS),
});
/** A target as written, before its auth secrets are resolved. */
export type RawTarget = z.output<typeof TargetSchema>;
