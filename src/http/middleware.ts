/** Request guards shared by every route that takes a body. */
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { outcomeResponse } from './errors.ts';

/** Largest request body the API accepts. */
export const MAX_BODY_BYTES = 1024 * 1024;

const JSON_TYPES = new Set(['application/json', 'application/fhir+json']);

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
