/** Request guards shared by every route that takes a body. */
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { FHIR_JSON } from '../fhir/json.ts';
import { outcomeResponse } from './errors.ts';
import { JsonBodyError, parseJsonBody } from './json.ts';

/** Largest request body the API accepts. */
export const MAX_BODY_BYTES = 1024 * 1024;

const JSON_TYPES = new Set(['application/json', FHIR_JSON]);

/** 415 unless the body is JSON (`application/json` or `application/fhir+json`). */
export const requireJson: MiddlewareHandler = async (c, next) => {
  const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!JSON_TYPES.has(type)) {
    return outcomeResponse(
      c,
      415,
      'not-supported',
      `content type ${type ? `"${type}"` : '(none)'} is not supported: send application/json or application/fhir+json`,
    );
  }
  await next();
};

/** 413 for bodies over 1 MiB, whether or not Content-Length is sent. */
export const limitBody: MiddlewareHandler = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: (c) => outcomeResponse(c, 413, 'too-long', `request body is larger than ${MAX_BODY_BYTES} bytes (1 MiB)`),
});

/**
 * Reads and parses a JSON body once, with the strict parser (json.ts), or answers 400 with
 * an OperationOutcome that names the position, never the text. The one way routes read
 * JSON bodies.
 */
export async function readJsonBody(c: Context): Promise<{ ok: true; value: unknown } | { ok: false; response: Response }> {
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  try {
    return { ok: true, value: parseJsonBody(bytes) };
  } catch (e) {
    if (!(e instanceof JsonBodyError)) throw e;
    return { ok: false, response: outcomeResponse(c, 400, jsonErrorCode(e), e.message, e.pointer || undefined) };
  }
}

/** The OperationOutcome issue type for a refused body. */
export function jsonErrorCode(e: JsonBodyError): 'invalid' | 'structure' | 'too-costly' {
  return e.kind === 'depth' ? 'too-costly' : e.kind === 'duplicate-key' || e.kind === 'forbidden-key' ? 'structure' : 'invalid';
}

/** Paths whose answers hold nothing about patients and may be cached. */
const PUBLIC_PATHS = new Set(['/healthz', '/openapi.json', '/docs', '/', '/.well-known/jwks.json']);

/**
 * `Cache-Control: no-store` on every answer but the public ones: answers under /v1 (errors
 * included) can carry patient data, which no browser or proxy may keep
 * (RFC 9111 §5.2.2.5). Registered first, so it also covers refusals by later middleware.
 */
export const noStore: MiddlewareHandler = async (c, next) => {
  await next();
  if (!PUBLIC_PATHS.has(new URL(c.req.url).pathname)) c.res.headers.set('cache-control', 'no-store');
};
