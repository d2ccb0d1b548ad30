/**
 * A local FHIR R4 server for tests, benchmarks and `imh-bridge sandbox`: Node `http` in front
 * of Medplum's FhirRouter over an in-memory repository (see repository.ts). The router does
 * the FHIR work (https://hl7.org/fhir/R4/http.html); this layer turns HTTP into FhirRequests
 * and FhirResponses back into HTTP, and adds what the router leaves to its host: metadata,
 * response headers, all-or-nothing transactions, unknown-type and content-type errors.
 *
 * Data lives in memory and is lost on close. Binds to 127.0.0.1 unless told otherwise.
 * A browser gets readable HTML pages (html.ts); `GET /fhir` answers the CapabilityStatement
 * (JSON) or an index of the resource types held (HTML).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { badRequest, getStatus, isOk, isResourceType, multipleMatches, notFound, OperationOutcomeError, serverError } from '@medplum/core';
import { type FhirRequest, type FhirResponse, FhirRouter, type HttpMethod } from '@medplum/fhir-router';
import type { Bundle, CapabilityStatement, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { capabilityStatement } from './capability.ts';
import { loadR4Definitions } from './definitions.ts';
import { indexPage, prefersHtml, resourcePage } from './html.ts';
import { SandboxRepository } from './repository.ts';
import { createSmartEhr, type SmartEhr, type SmartEhrOptions } from './smart-ehr.ts';

export { SandboxRepository } from './repository.ts';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const HTML = 'text/html; charset=utf-8';
const METHODS = new Set<string>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const WRITE_METHODS = new Set<string>(['POST', 'PUT', 'PATCH']);
const BASE_PATH = '/fhir';

/** Answers to be sent as HTML pages (a browser's GETs): the base URL and the request's path and query. */
const htmlViews = new WeakMap<ServerResponse, { baseUrl: string; pathAndQuery: string }>();

export interface SandboxOptions {
  /** 0 or absent: an ephemeral port. */
  port?: number;
  /** Defaults to 127.0.0.1. */
  host?: string;
  /** Called once per answered request, after the response is sent. `url` is path and query. */
  onRequest?: (method: string, url: string, status: number) => void;
  /** Largest accepted request body; 64 MiB unless told. */
  maxBodyBytes?: number;
  /** false: behave like a server without transactions (not in metadata, POSTed transactions refused). */
  transactions?: boolean;
  /** false: behave like a server without PATCH (405 with `Allow`, as R4 servers that do not support it answer). */
  patch?: boolean;
  /** Also play a psychiatry EHR's SMART authorisation server for these apps (smart-ehr.ts). */
  smart?: SmartEhrOptions;
}

export interface Sandbox {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The FHIR base, `http://127.0.0.1:<port>/fhir`. */
  baseUrl: string;
  port: number;
  repo: SandboxRepository;
  router: FhirRouter;
  /** The EHR's SMART authorisation server, when `smart` was given. */
  smart?: SmartEhr;
  /** Deletes all data (resources, history, indexes). */
  reset(): void;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** A transaction entry failed: everything the transaction wrote is rolled back. */
class TransactionFailed extends Error {
  readonly outcome: OperationOutcome;
  // A plain field, not a parameter property: Node's type stripping runs this file as it is.
  constructor(outcome: OperationOutcome) {
    super('transaction failed');
    this.outcome = outcome;
  }
}

/**
 * Starts the sandbox. Loads the R4 definitions on first use in the process (~0.7 s).
 * Requests are handled one at a time, so a transaction never interleaves with another request.
 */
export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  loadR4Definitions();
  const host = opts.host ?? '127.0.0.1';
  const maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024 * 1024;
  const router = new FhirRouter();
  const repo = new SandboxRepository();
  let baseUrl = '';
  let metadata: string | undefined;
  let ehr: SmartEhr | undefined;
  const startedAt = new Date().toISOString();

  // One request at a time: MemoryRepository has no isolation, and the transaction journal
  // must not see another request's writes.
  let tail: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    if (opts.onRequest) res.once('finish', () => opts.onRequest?.(method, url, res.statusCode));
    handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, serverError(err as Error));
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const u = new URL(req.url ?? '/', 'http://sandbox');
    const pretty = u.searchParams.get('_pretty') === 'true';
    if (ehr && (await ehr.handle(req, res, u))) return;
    if (method === 'GET') {
      res.setHeader('vary', 'Accept');
      if (u.searchParams.get('_format') !== 'json' && prefersHtml(req.headers.accept)) htmlViews.set(res, { baseUrl, pathAndQuery: u.pathname + u.search });
    }
    if (ehr?.checkBearer(req.headers.authorization)) {
      await drain(req);
      res.setHeader('www-authenticate', 'Bearer realm="sandbox-ehr", error="invalid_token"');
      return send(res, 401, outcomeOf('exception', 'The access token is not valid'));
    }
    if (u.pathname !== BASE_PATH && !u.pathname.startsWith(`${BASE_PATH}/`)) {
      await drain(req);
      return send(res, 404, notFoundOutcome(`No FHIR endpoint at ${u.pathname}; the base is ${BASE_PATH}`));
    }
    const rel = u.pathname.slice(BASE_PATH.length).replace(/^\/+|\/+$/g, '');
    const segments = rel ? rel.split('/') : [];
    if (!METHODS.has(method) || (method === 'PATCH' && opts.patch === false)) {
      await drain(req);
      res.setHeader('allow', [...METHODS].filter((m) => m !== 'PATCH' || opts.patch !== false).join(', '));
      return send(res, 405, outcomeOf('not-supported', `Method ${method} is not supported`));
    }
    if (rel === 'metadata') {
      await drain(req);
      if (method !== 'GET') {
        res.setHeader('allow', 'GET');
        return send(res, 405, outcomeOf('not-supported', `Method ${method} is not supported on metadata`));
      }
      return sendMetadata(res, pretty);
    }
    // The base itself: what this server is (JSON), or what it holds (a browser).
    if (rel === '' && method === 'GET' && !u.searchParams.has('_type')) {
      await drain(req);
      if (!htmlViews.has(res)) return sendMetadata(res, pretty);
      const text = indexPage(repo.countByType(), baseUrl);
      res.writeHead(200, { 'content-type': HTML, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    const type = segments[0];
    if (type && !type.startsWith('$') && !isResourceType(type)) {
      await drain(req);
      return send(res, 404, notFoundOutcome(`Unknown resource type: ${type}`));
    }

    let body: unknown;
    try {
      body = await readBody(req, maxBodyBytes);
    } catch (e) {
      const oo = e instanceof OperationOutcomeError ? e.outcome : badRequest((e as Error).message);
      res.setHeader('connection', 'close');
      return send(res, getStatus(oo), oo);
    }
    if (WRITE_METHODS.has(method) && (body === undefined || body === null || typeof body !== 'object')) {
      return send(res, 400, badRequest(`${method} needs a JSON body`));
    }

    const request: FhirRequest = {
      method: method as HttpMethod,
      url: rel + u.search,
      pathname: '',
      params: Object.create(null),
      query: Object.create(null),
      body,
      headers: req.headers,
      // Without `transactions` the router processes a transaction Bundle with batch semantics;
      // with it, it refuses conditional transactions of more than 8 entries (a limit for its
      // Postgres isolation). All-or-nothing comes from the repository's journal instead.
      config: { transactions: false },
    };

    const isTransaction = method === 'POST' && rel === '' && (body as Bundle)?.resourceType === 'Bundle' && (body as Bundle).type === 'transaction';

    if (isTransaction && opts.transactions === false) {
      return send(res, 501, outcomeOf('not-supported', 'This server does not support transactions'));
    }

    await serially(async () => {
      const existedBefore = method === 'PUT' && segments.length === 2 && type ? repo.has(type, segments[1] as string) : true;
      // Entries of a batch or transaction that PUT to an id nothing has yet: they create (201).
      const upserts = isBundleRequest(method, rel, body) ? newIdPuts(body as Bundle) : undefined;
      let result: FhirResponse;
      if (isTransaction) {
        try {
          result = await repo.withTransaction(async () => {
            const r = await router.handleRequest(request, repo);
            const failure = transactionFailure(r);
            if (failure) throw new TransactionFailed(failure);
            return r;
          });
        } catch (e) {
          if (!(e instanceof TransactionFailed)) throw e;
          result = [e.outcome];
        }
      } else {
        result = await router.handleRequest(request, repo);
      }
      if (upserts?.size) markCreated(result, upserts);
      respond(req, res, method, result, !existedBefore, pretty);
    });
  }

  function sendMetadata(res: ServerResponse, pretty: boolean): void {
    metadata ??= JSON.stringify(capabilityStatement(baseUrl, startedAt, opts.transactions ?? true, opts.patch ?? true) satisfies CapabilityStatement);
    if (htmlViews.has(res) || pretty) return send(res, 200, JSON.parse(metadata) as CapabilityStatement, pretty);
    res.writeHead(200, { 'content-type': FHIR_JSON });
    res.end(metadata);
  }

  function respond(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    [outcome, resource]: FhirResponse,
    createdByUpdate: boolean,
    pretty: boolean,
  ): void {
    let status = getStatus(outcome);
    if (!isOk(outcome) || !resource) return send(res, status, outcome, pretty);
    // PUT to a new id creates it (https://hl7.org/fhir/R4/http.html#upsert): 201, not the router's 200.
    if (status === 200 && createdByUpdate) status = 201;
    const prefer = preferReturn(req.headers.prefer);
    if (resource.resourceType === 'Bundle') decorateBundle(resource as Bundle, prefer, req.url ?? '');
    const vid = resource.meta?.versionId;
    if (resource.id && vid && resource.resourceType !== 'Bundle') {
      res.setHeader('etag', `W/"${vid}"`);
      if (resource.meta?.lastUpdated) res.setHeader('last-modified', new Date(resource.meta.lastUpdated).toUTCString());
      if (WRITE_METHODS.has(method)) res.setHeader('location', `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${vid}`);
    }
    const isWrite = WRITE_METHODS.has(method) && !(method === 'POST' && resource.resourceType === 'Bundle' && req.url?.includes('_search'));
    if (isWrite && prefer === 'minimal') {
      res.writeHead(status);
      res.end();
      return;
    }
    send(res, status, isWrite && prefer === 'OperationOutcome' ? outcome : resource, pretty);
  }

  /**
   * Search sets get fullUrls and self, previous and next links (by `_offset`,
   * https://hl7.org/fhir/R4/http.html#paging); transaction and batch responses get versioned
   * locations and ETags.
   */
  function decorateBundle(bundle: Bundle, prefer: string | undefined, requestUrl: string): void {
    if (bundle.type === 'searchset') {
      for (const e of bundle.entry ?? []) {
        if (e.resource?.id) e.fullUrl = `${baseUrl}/${e.resource.resourceType}/${e.resource.id}`;
      }
      if (!bundle.link?.length) bundle.link = pagingLinks(bundle, new URL(requestUrl, baseUrl));
      return;
    }
    if (bundle.type !== 'transaction-response' && bundle.type !== 'batch-response') return;
    for (const e of bundle.entry ?? []) {
      const r = e.resource as Resource | undefined;
      const vid = r?.meta?.versionId;
      if (e.response && r?.id && vid && r.resourceType !== 'Bundle' && e.response.location) {
        e.response.location = `${r.resourceType}/${r.id}/_history/${vid}`;
        e.response.etag = `W/"${vid}"`;
        if (r.meta?.lastUpdated) e.response.lastModified = r.meta.lastUpdated;
      }
      if (prefer === 'minimal') delete e.resource;
      else if (prefer === 'OperationOutcome' && e.response?.outcome) {
        e.resource = e.response.outcome;
      }
    }
  }

  /** Indices of `PUT Type/id` entries whose id does not exist yet. */
  function newIdPuts(bundle: Bundle): Set<number> {
    const out = new Set<number>();
    (bundle.entry ?? []).forEach((e, i) => {
      const m = e.request?.method === 'PUT' ? /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(e.request.url ?? '') : null;
      if (m && !repo.has(m[1] as string, m[2] as string)) out.add(i);
    });
    return out;
  }

  /** Self, previous and next of a search page: the same search with another `_offset`. */
  function pagingLinks(bundle: Bundle, request: URL): NonNullable<Bundle['link']> {
    const query = new URLSearchParams(request.search);
    query.delete('_format');
    const count = Number.parseInt(query.get('_count') ?? '', 10);
    const offset = Math.max(0, Number.parseInt(query.get('_offset') ?? '0', 10) || 0);
    const at = (o: number) => {
      const q = new URLSearchParams(query);
      if (o > 0) q.set('_offset', String(o));
      else q.delete('_offset');
      const text = q.toString();
      return `${baseUrl}${request.pathname.slice(BASE_PATH.length)}${text ? `?${text}` : ''}`;
    };
    const shown = bundle.entry?.length ?? 0;
    const size = Number.isFinite(count) && count > 0 ? count : shown;
    const links: NonNullable<Bundle['link']> = [{ relation: 'self', url: at(offset) }];
    if (offset > 0 && size > 0) links.push({ relation: 'previous', url: at(Math.max(0, offset - size)) });
    const more = bundle.total !== undefined ? offset + shown < bundle.total : shown > 0 && shown === size;
    if (more && shown > 0) links.push({ relation: 'next', url: at(offset + shown) });
    return links;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  baseUrl = `${url}${BASE_PATH}`;
  if (opts.smart) ehr = await createSmartEhr(opts.smart, { url, baseUrl, repo });

  return {
    url,
    baseUrl,
    port,
    repo,
    router,
    ...(ehr ? { smart: ehr } : {}),
    reset: () => repo.clear(),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

const isBundleRequest = (method: string, rel: string, body: unknown): boolean =>
  method === 'POST' && rel === '' && (body as Bundle | undefined)?.resourceType === 'Bundle';

/**
 * PUT to a new id creates it (https://hl7.org/fhir/R4/http.html#upsert): in a batch or
 * transaction response too, such an entry says 201, not the router's 200.
 */
function markCreated([outcome, resource]: FhirResponse, upserts: Set<number>): void {
  if (!isOk(outcome) || resource?.resourceType !== 'Bundle') return;
  (resource as Bundle).entry?.forEach((e, i) => {
    if (upserts.has(i) && e.response?.status?.startsWith('200')) e.response.status = '201';
  });
}

/**
 * The outcome that fails a transaction, if any entry failed. A conditional update that
 * matches more than one resource is 412 (https://hl7.org/fhir/R4/http.html#cond-update);
 * the router's preprocessing reports it as 400, so it is mapped here.
 */
function transactionFailure([outcome, resource]: FhirResponse): OperationOutcome | undefined {
  if (!isOk(outcome)) return outcome;
  const entries = (resource as Bundle | undefined)?.entry ?? [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const status = Number.parseInt(e?.response?.status ?? '', 10);
    if (status >= 200 && status < 400) continue;
    const o = (e?.response?.outcome as OperationOutcome | undefined) ?? outcomeOf('exception', `Bundle.entry[${i}] has no result`);
    const text = o.issue?.map((x) => x.details?.text ?? x.diagnostics ?? '').join('; ') ?? '';
    const expression = o.issue?.flatMap((x) => x.expression ?? []) ?? [];
    const where = expression.length ? expression : [`Bundle.entry[${i}]`];
    if (/matched multiple resources/i.test(text)) {
      return {
        ...multipleMatches,
        issue: (multipleMatches.issue ?? []).map((x) => ({ ...x, diagnostics: text, expression: where })),
      };
    }
    return { ...o, issue: (o.issue ?? []).map((x) => ({ ...x, expression: x.expression ?? where })) };
  }
  return undefined;
}

function preferReturn(prefer: string | string[] | undefined): string | undefined {
  return /return=(minimal|representation|OperationOutcome)/.exec([prefer ?? ''].flat().join(','))?.[1];
}

function outcomeOf(code: 'not-supported' | 'exception' | 'not-found', text: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

function notFoundOutcome(text: string): OperationOutcome {
  return { ...notFound, issue: [{ severity: 'error', code: 'not-found', details: { text } }] };
}

function send(res: ServerResponse, status: number, body: Resource, pretty = false): void {
  const view = htmlViews.get(res);
  const text = view ? resourcePage(body, status, view.baseUrl, view.pathAndQuery) : JSON.stringify(body, undefined, pretty ? 2 : undefined);
  res.writeHead(status, {
    'content-type': view ? HTML : FHIR_JSON,
    'content-length': Buffer.byteLength(text),
    ...(view ? { 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'" } : {}),
  });
  res.end(text);
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req) {
    // discard
  }
}

/** JSON (FHIR, JSON Patch) or a form-encoded `_search`; undefined when there is no body. */
async function readBody(req: IncomingMessage, max: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      throw new OperationOutcomeError({
        resourceType: 'OperationOutcome',
        id: 'content-too-large',
        issue: [{ severity: 'error', code: 'too-long', details: { text: `Request body over ${max} bytes` } }],
      });
    }
    chunks.push(chunk);
  }
  if (!size) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/x-www-form-urlencoded') {
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of new URLSearchParams(text)) {
      const prev = out[k];
      out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    return out;
  }
  if (type && !type.endsWith('json')) {
    throw new OperationOutcomeError({
      resourceType: 'OperationOutcome',
      id: 'unsupported-media-type',
      issue: [{ severity: 'error', code: 'not-supported', details: { text: `Unsupported content type: ${type}` } }],
    });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new OperationOutcomeError(badRequest(`Body is not valid JSON: ${(e as Error).message}`));
  }
}
