/**
 * A small FHIR REST client for delivery targets, over an injected `fetch`. It knows
 * nothing of retries: every failure becomes a TargetError that says whether and how the
 * caller may retry (see retry.ts).
 */
import type { OperationOutcome } from '@medplum/fhirtypes';
import { FHIR_JSON } from '../fhir/json.ts';
import type { FailureKind } from './retry.ts';

/** The end of the message of a request not sent because the delivery's deadline has passed. */
export const TIME_IS_UP = "not sent, the delivery's time is up";

/** A failed request to a target. Carries no request body and no credentials. */
export class TargetError extends Error {
  readonly kind: FailureKind;
  readonly status?: number;
  readonly retryAfter?: string | null;
  /** The server's OperationOutcome, when it sent one. */
  readonly outcome?: OperationOutcome;

  constructor(kind: FailureKind, message: string, init: { status?: number; retryAfter?: string | null; outcome?: OperationOutcome } = {}) {
    super(message);
    this.name = 'TargetError';
    this.kind = kind;
    this.status = init.status;
    this.retryAfter = init.retryAfter;
    this.outcome = init.outcome;
  }
}

export interface TargetResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export interface ClientDeps {
  fetch: typeof fetch;
  /** Authorization header value for the next request, if the target needs one. */
  authorization?: () => Promise<string | undefined>;
  /** Drops cached credentials after a 401. */
  invalidateAuthorization?: () => void;
  /** Longest wait for one answer (default 15 s). */
  timeoutMs?: number;
  /**
   * Epoch milliseconds after which no request may still be waiting (the CLI's `--timeout` for a
   * whole delivery): each request's own timeout is shortened to what is left.
   */
  deadline?: number;
}

export class FhirTargetClient {
  readonly baseUrl: string;
  private readonly deps: ClientDeps;

  constructor(baseUrl: string, deps: ClientDeps) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.deps = deps;
  }

  /** Sends one request; `path` is relative to the base URL (`Patient/123`, `metadata`, `` for the base). */
  async request<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<TargetResponse<T>> {
    const send = async (): Promise<Response> => {
      const auth = await this.deps.authorization?.();
      const url = path ? `${this.baseUrl}/${path}` : this.baseUrl;
      const own = this.deps.timeoutMs ?? 15_000;
      const left = this.deps.deadline === undefined ? Infinity : this.deps.deadline - Date.now();
      if (left <= 0) throw new TargetError('timeout', `${method} ${describePath(path)}: ${TIME_IS_UP}`);
      const timeoutMs = Math.min(own, left);
      try {
        return await this.deps.fetch(url, {
          method,
          headers: {
            accept: FHIR_JSON,
            ...(body !== undefined ? { 'content-type': FHIR_JSON } : {}),
            ...(auth ? { authorization: auth } : {}),
            ...headers,
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          // A redirect would take the Bundle and the credentials to a URL nobody configured.
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (e) {
        const name = (e as Error)?.name;
        if (name === 'TimeoutError' || name === 'AbortError') {
          throw new TargetError(
            'timeout',
            `${method} ${describePath(path)}: no answer within ${timeoutMs} ms${timeoutMs < own ? " (what was left of the delivery's time)" : ''}`,
          );
        }
        const cause = networkCause(e);
        throw new TargetError('network', `${method} ${describePath(path)}: connection failed${cause ? ` (${cause})` : ''}`);
      }
    };

    let res = await send();
    if (res.status === 401 && this.deps.invalidateAuthorization) {
      await res.body?.cancel();
      this.deps.invalidateAuthorization();
      res = await send();
    }
    if (isRedirect(res)) {
      await res.body?.cancel().catch(() => undefined);
      // The Location is not repeated: it may carry search parameters with personal data.
      throw new TargetError(
        'http',
        `${method} ${describePath(path)}: the server redirected (HTTP ${res.status}); redirects are not followed: configure the target's final base URL`,
        {
          status: res.status,
        },
      );
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      const name = (e as Error)?.name;
      throw new TargetError(name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network', `${method} ${describePath(path)}: response was cut off`);
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const outcome = (parsed as { resourceType?: string } | undefined)?.resourceType === 'OperationOutcome' ? (parsed as OperationOutcome) : undefined;
      throw new TargetError('http', `${method} ${describePath(path)}: HTTP ${res.status}`, {
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        outcome,
      });
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }
}

/**
 * A redirect answered to `redirect: 'manual'`: a 3xx other than 304 (Not Modified is an
 * answer, not a redirect), or the opaque redirect Fetch-conforming runtimes give instead.
 */
function isRedirect(res: Response): boolean {
  return res.type === 'opaqueredirect' || (res.status >= 300 && res.status < 400 && res.status !== 304);
}

/** TLS failures as Node reports them (`error.cause.code` of fetch), said in words. */
const TLS_CODES: Record<string, string> = {
  CERT_HAS_EXPIRED: "the server's certificate has expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the server's certificate is self-signed",
  SELF_SIGNED_CERT_IN_CHAIN: "a self-signed certificate in the server's chain",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the server's certificate chain cannot be verified",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the issuer of the server's certificate is not trusted here",
  ERR_TLS_CERT_ALTNAME_INVALID: "the server's certificate is for another host name",
  CERT_NOT_YET_VALID: "the server's certificate is not valid yet",
};

/**
 * Why a fetch failed before any answer, from Node's `error.cause` (undici): the error code with
 * the host and port it concerned (`ECONNREFUSED 127.0.0.1:8103`, `ENOTFOUND fhir.example.org`),
 * a TLS failure in words, or undefined where the runtime gives no cause (workerd). Only codes,
 * host names, addresses and ports are taken: never a message, which could quote a URL with a
 * query or credentials.
 */
export function networkCause(e: unknown): string | undefined {
  let c = (e as { cause?: unknown })?.cause as
    | { code?: unknown; address?: unknown; port?: unknown; hostname?: unknown; host?: unknown; cause?: unknown; errors?: unknown }
    | undefined;
  // undici wraps some causes once more (e.g. a connect timeout); AggregateError (several addresses) has errors[].
  if (c && typeof c.code !== 'string' && c.cause) c = c.cause as typeof c;
  if (c && typeof c.code !== 'string' && Array.isArray(c.errors) && c.errors.length) c = c.errors[0] as typeof c;
  // The Fetch standard's port blocklist: no connection is even tried.
  if (c && (c as { message?: unknown }).message === 'bad port') return 'a port that fetch refuses to use (bad port)';
  if (!c || typeof c.code !== 'string' || !/^[A-Z0-9_]{2,64}$/.test(c.code)) return undefined;
  const code = c.code;
  if (TLS_CODES[code]) return `TLS: ${TLS_CODES[code]} (${code})`;
  const safe = (v: unknown) => (typeof v === 'string' && /^[\w.:-]{1,253}$/.test(v) ? v : undefined);
  const host = safe(c.address) ?? safe(c.hostname) ?? safe(c.host);
  const port = typeof c.port === 'number' ? c.port : undefined;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `DNS lookup failed${host ? ` for ${host}` : ''} (${code})`;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connecting timed out (UND_ERR_CONNECT_TIMEOUT)';
  if (code === 'UND_ERR_SOCKET') return 'the server closed the connection (UND_ERR_SOCKET)';
  return `${code}${host ? ` ${host.includes(':') && port !== undefined ? `[${host}]` : host}${port !== undefined ? `:${port}` : ''}` : ''}`;
}

/** The resource type part of a path, never identifiers or search values (they may be personal data). */
export function describePath(path: string): string {
  if (!path) return '(transaction)';
  const type = path.split(/[/?]/)[0];
  return path.includes('?') ? `${type}?…` : path.includes('/') ? `${type}/…` : (type ?? '');
}
