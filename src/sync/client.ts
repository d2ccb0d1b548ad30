/**
 * A small FHIR REST client for delivery targets, over an injected `fetch`. It knows
 * nothing of retries: every failure becomes a TargetError that says whether and how the
 * caller may retry (see retry.ts).
 */
import type { OperationOutcome } from '@medplum/fhirtypes';
import type { FailureKind } from './retry.ts';
import { FHIR_JSON } from '../fhir/json.ts';


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
  timeoutMs?: number;
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
          signal: AbortSignal.timeout(this.deps.timeoutMs ?? 15_000),
        });
      } catch (e) {
        const name = (e as Error)?.name;
        if (name === 'TimeoutError' || name === 'AbortError') {
          throw new TargetError('timeout', `${method} ${describePath(path)}: no answer within ${this.deps.timeoutMs ?? 15_000} ms`);
        }
        throw new TargetError('network', `${method} ${describePath(path)}: connection failed`);
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
      throw new TargetError('http', `${method} ${describePath(path)}: the server redirected (HTTP ${res.status}); redirects are not followed: configure the target's final base URL`, {
        status: res.status,
      });
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

/** The resource type part of a path, never identifiers or search values (they may be personal data). */
export function describePath(path: string): string {
  if (!path) return '(transaction)';
  const type = path.split(/[/?]/)[0];
  return path.includes('?') ? `${type}?…` : path.includes('/') ? `${type}/…` : (type ?? '');
}
