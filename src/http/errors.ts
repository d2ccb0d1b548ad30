/** OperationOutcome responses: the only error shape the HTTP API sends. */
import type { OperationOutcome } from '@medplum/fhirtypes';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { issue, outcome } from '../fhir/outcome.ts';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

export function fhirJson(c: Context, body: unknown, status: ContentfulStatusCode = 200, headers: Record<string, string> = {}): Response {
  return c.body(JSON.stringify(body), status, { 'content-type': FHIR_JSON, ...headers });
}

export function outcomeResponse(c: Context, status: ContentfulStatusCode, code: Parameters<typeof issue>[0], message: string, pointer?: string): Response {
  return fhirJson(c, outcome([issue(code, message, pointer)]), status);
}

export function sendOutcome(c: Context, o: OperationOutcome, status: ContentfulStatusCode): Response {
  return fhirJson(c, o, status);
}
