/** OperationOutcome responses: the only error shape the HTTP API sends. */
import type { Parameters as FhirParameters, OperationOutcome } from '@medplum/fhirtypes';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { FHIR_JSON } from '../fhir/json.ts';
import { capOutcome, issue, outcome } from '../fhir/outcome.ts';

const FHIR_JSON_UTF8 = `${FHIR_JSON}; charset=utf-8`;

/**
 * Caps every OperationOutcome an answer carries (the body itself, or the `issues` of an SDC
 * Parameters answer) at MAX_ISSUES issues: see capOutcome.
 */
function capped(body: unknown): unknown {
  const b = body as { resourceType?: unknown } | null;
  if (b?.resourceType === 'OperationOutcome') return capOutcome(b as OperationOutcome);
  if (b?.resourceType === 'Parameters') {
    const p = b as FhirParameters;
    if (!p.parameter?.some((x) => x.resource?.resourceType === 'OperationOutcome')) return p;
    return {
      ...p,
      parameter: p.parameter.map((x) => (x.resource?.resourceType === 'OperationOutcome' ? { ...x, resource: capOutcome(x.resource) } : x)),
    };
  }
  return body;
}

export function fhirJson(c: Context, body: unknown, status: ContentfulStatusCode = 200, headers: Record<string, string> = {}): Response {
  return c.body(JSON.stringify(capped(body)), status, { 'content-type': FHIR_JSON_UTF8, ...headers });
}

export function outcomeResponse(c: Context, status: ContentfulStatusCode, code: Parameters<typeof issue>[0], message: string, pointer?: string): Response {
  return fhirJson(c, outcome([issue(code, message, pointer)]), status);
}

export function sendOutcome(c: Context, o: OperationOutcome, status: ContentfulStatusCode): Response {
  return fhirJson(c, o, status);
}
