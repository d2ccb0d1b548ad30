/**
 * Building blocks of every module's configuration schema (auth/config.ts,
 * sync/target-config.ts, config.ts): the environment record, zod schemas of common fields,
 * and the rule for URLs that patient data or credentials travel to. Depends on nothing else
 * in the bridge, so each module can own its schema without importing config.ts.
 */
import * as z from 'zod/mini';

/** Environment as wrangler, `.dev.vars` or `process.env` supply it. */
export type ConfigEnv = Readonly<Record<string, string | undefined>>;

/** Hosts where plain http crosses no network. */
export const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/**
 * Why `url` cannot be a FHIR target's base URL, or undefined when it can: an absolute https
 * URL (http only on loopback, where nothing crosses a network), without credentials, query or
 * fragment. Patient data travels there, so plain http to another host is never allowed,
 * with or without credentials. The message never repeats the URL.
 */
export function targetUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'must be an absolute https URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must be an https URL';
  if (u.protocol !== 'https:' && !LOOPBACK.test(u.hostname)) return 'must use https (http is allowed only for localhost)';
  if (u.username || u.password) return 'must not contain credentials; use the auth settings instead';
  if (u.hash) return 'must not have a #fragment';
  if (u.search) return 'must not have a ?query';
  return undefined;
}

function urlSchema(kind: 'base' | 'endpoint') {
  return z.pipe(
    z.string().check(z.trim()),
    z.transform((s: string, ctx) => {
      const fail = (message: string) => {
        ctx.issues.push({ code: 'custom', message, input: s });
        return z.NEVER;
      };
      let u: URL;
      try {
        u = new URL(s);
      } catch {
        return fail('must be an absolute http(s) URL');
      }
      if (kind === 'base') {
        const problem = targetUrlProblem(s);
        return problem ? fail(problem) : u.href.replace(/\/+$/, '');
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return fail('must be an http(s) URL');
      if (u.username || u.password) return fail('must not contain credentials; use the auth settings instead');
      if (u.hash) return fail('must not have a #fragment');
      // The assertion and token travel to and from here.
      if (u.protocol !== 'https:' && !LOOPBACK.test(u.hostname)) return fail('must use https (http is allowed only for localhost)');
      // The token URL is also the assertion's `aud`: keep it exactly as configured.
      return s;
    }),
  );
}

/** A FHIR target's base URL (see targetUrlProblem), without a trailing slash. */
export const targetBaseUrl = urlSchema('base');
/** A token or JWKS endpoint: https (http on loopback), kept exactly as configured. */
export const endpointUrl = urlSchema('endpoint');

export const nonEmpty = z.string().check(z.trim(), z.minLength(1, { error: 'must not be empty' }));
export const noControl = nonEmpty.check(z.regex(/^[^\x00-\x1f\x7f]+$/, { error: 'must not contain control characters' }));
/** RFC 6749 §3.3: space-separated scope-tokens. */
export const oauthScope = nonEmpty.check(
  z.regex(/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/, {
    error: 'must be space-separated OAuth scope tokens',
  }),
);
/** The name of an environment variable that holds a secret. */
export const envName = nonEmpty.check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be the name of an environment variable (letters, digits, _)' }));
