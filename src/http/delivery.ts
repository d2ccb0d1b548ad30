/** Delivery routes: episodes in, jobs out. */

import type { OperationOutcome } from '@medplum/fhirtypes';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { LOCAL_CALLER } from '../auth/inbound.ts';
import { capOutcome, isOperationOutcomeError, issue, OperationOutcomeError, outcome } from '../fhir/outcome.ts';
import { errorKind, log } from '../log.ts';
import { redactOutcome } from '../sync/redact.ts';
import type { DeliveryService, Owner } from '../sync/service.ts';
import type { Job, JobAudit, JobStatus } from '../sync/types.ts';
import { type AuthVariables, requestTenant } from './auth.ts';
import { fhirJson, outcomeResponse } from './errors.ts';
import { JsonBodyError, parseJsonBody } from './json.ts';
import { jsonErrorCode, limitBody, readJsonBody, requireJson } from './middleware.ts';

const STATUSES: JobStatus[] = ['queued', 'retrying', 'delivered', 'failed', 'dead'];
/** Largest NDJSON import in one request. */
export const MAX_IMPORT_BYTES = 32 * 1024 * 1024;
const IMPORT_CHUNK = 100;
/** Most episodes (non-blank lines) in one import: bounds the work and the answer. */
export const MAX_IMPORT_LINES = 10_000;
/** Most issues listed for one line of an import. */
export const MAX_LINE_ISSUES = 20;
/**
 * Bytes of an import answer that may go to listing issues; after that, a rejected line only
 * says how many it had. With MAX_IMPORT_LINES this bounds the answer to a few MiB.
 */
export const MAX_IMPORT_DETAIL_BYTES = 2 * 1024 * 1024;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/**
 * The non-blank lines of an NDJSON body, as bytes: each is decoded on its own, so that one
 * line of invalid UTF-8 refuses that line only. Splitting at 0x0A is safe in UTF-8, where
 * that byte never occurs inside a multi-byte sequence.
 */
function ndjsonLines(bytes: Uint8Array): { line: number; bytes: Uint8Array }[] {
  const lines: { line: number; bytes: Uint8Array }[] = [];
  let start = 0;
  let line = 1;
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) {
      const b = bytes[k];
      if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
    }
    return true;
  };
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x0a) continue;
    const end = i > start && bytes[i - 1] === 0x0d ? i - 1 : i;
    if (!blank(start, end)) lines.push({ line, bytes: bytes.subarray(start, end) });
    start = i + 1;
    line++;
  }
  return lines;
}

type ListQuery = { ok: true; status?: JobStatus[]; limit: number } | { ok: false; message: string; pointer: string };

/** `?status=a,b&limit=n` of GET /jobs, checked: a bad value is a 400 naming the parameter, never a 500. */
function listQuery(c: Context): ListQuery {
  for (const name of ['status', 'limit']) {
    if ((c.req.queries(name)?.length ?? 0) > 1) return { ok: false, message: `query parameter ${name} is given more than once`, pointer: `/${name}` };
  }
  const rawStatus = c.req.query('status');
  let status: JobStatus[] | undefined;
  if (rawStatus !== undefined) {
    const list = rawStatus.split(',');
    if (!list.every((s) => STATUSES.includes(s as JobStatus))) {
      return { ok: false, message: `query parameter status must be one or more of ${STATUSES.join(', ')}, separated by commas`, pointer: '/status' };
    }
    status = list as JobStatus[];
  }
  const rawLimit = c.req.query('limit');
  let limit = DEFAULT_LIMIT;
  if (rawLimit !== undefined) {
    if (!/^[0-9]{1,4}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > MAX_LIMIT) {
      return { ok: false, message: `query parameter limit must be a whole number from 1 to ${MAX_LIMIT}`, pointer: '/limit' };
    }
    limit = Number(rawLimit);
  }
  return { ok: true, ...(status ? { status } : {}), limit };
}

/** The public view of a job. */
const view = (job: Job) => ({
  id: job.id,
  episode: job.episodeKey,
  status: job.status,
  attempts: job.attempts,
  createdAt: job.createdAt,
  updatedAt: job.updatedAt,
  ...(job.nextAttemptAt ? { nextAttemptAt: job.nextAttemptAt } : {}),
  mappingVersion: job.mappingVersion,
  // Stored redacted and capped since deliveries redact (sync/redact.ts); records from before
  // that get at least the national ids and phone numbers taken out here.
  targets: Object.fromEntries(Object.entries(job.targets).map(([name, t]) => [name, t.outcome ? { ...t, outcome: redactOutcome(t.outcome) } : t])),
  ...(job.audits?.length ? { audits: job.audits.map(auditView) } : {}),
  ...(job.caller ? { caller: job.caller } : {}),
  ...(job.purgedAt ? { contentPurgedAt: job.purgedAt } : {}),
});

/**
 * A disclosure or consent refusal of the job as audited on the clinic's server (shared contract
 * `sharing.md`, "Audit"): to which primary target, the outcome recorded, and whether its
 * AuditEvent is written yet. Only fields the job holds without personal data; the AuditEvent
 * itself (patient, consent, what was sent) stays on the clinic's server.
 */
function auditView(a: JobAudit) {
  return {
    target: a.target,
    kind: a.kind,
    status: a.status,
    round: a.round,
    ...(a.outcome ? { outcome: a.outcome } : {}),
    ...(a.at ? { at: a.at } : {}),
    ...(a.reason ? { reason: a.reason } : {}),
    attempts: a.attempts,
    ...(a.writtenAt ? { writtenAt: a.writtenAt } : {}),
    ...(a.error ? { error: a.error } : {}),
    ...(a.httpStatus !== undefined ? { httpStatus: a.httpStatus } : {}),
  };
}

/**
 * Who is calling, as jobs record it (the authenticated caller, or `local` where the API is
 * open), and the tenant whose jobs the request may see and change.
 */
const ownerOf = (c: Context<{ Variables: AuthVariables }>): Owner => ({ caller: c.get('caller')?.name ?? LOCAL_CALLER, tenant: requestTenant(c) });

/** Another tenant's job gets exactly the answer of a job that does not exist. */
const noSuchJob = (c: Context) => outcomeResponse(c, 404, 'not-found', 'no such job');

const location = (job: Job) => `/v1/jobs/${job.id}`;

export function deliveryRoutes(service: (c: Context) => DeliveryService): Hono<{ Variables: AuthVariables }> {
  const app = new Hono<{ Variables: AuthVariables }>();

  /**
   * The rate limit of the write routes, per tenant: checked before the body is read, so a
   * tenant over its limit costs one lookup. 429 with Retry-After, code `throttled`.
   */
  const throttle: MiddlewareHandler<{ Variables: AuthVariables }> = async (c, next) => {
    const svc = service(c);
    if (svc.admit) {
      const a = await svc.admit(requestTenant(c));
      if (!a.ok) {
        return fhirJson(c, outcome([issue('throttled', `too many writes: try again in ${a.retryAfterSeconds} seconds`)]), 429, {
          'retry-after': String(a.retryAfterSeconds),
        });
      }
    }
    return next();
  };

  app.put('/episodes/:episodeId', throttle, limitBody, requireJson, async (c) => {
    const body = await readJsonBody(c);
    if (!body.ok) return body.response;
    const input = body.value;
    const episodeId = c.req.param('episodeId');
    if (!input || typeof input !== 'object' || (input as { episodeId?: unknown }).episodeId !== episodeId) {
      throw new OperationOutcomeError(outcome([issue('invalid', `episodeId in the body must equal the episodeId in the URL`, '/episodeId')]), 400);
    }
    const job = await service(c).submit(input, ownerOf(c));
    return c.json(view(job), 202, { location: location(job) });
  });

  app.post(
    '/episodes/$import',
    throttle,
    bodyLimit({ maxSize: MAX_IMPORT_BYTES, onError: (c) => outcomeResponse(c, 413, 'too-long', `import is larger than ${MAX_IMPORT_BYTES} bytes`) }),
    async (c) => {
      const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== 'application/x-ndjson' && type !== 'application/fhir+ndjson' && type !== 'application/ndjson') {
        return outcomeResponse(c, 415, 'not-supported', 'send NDJSON (application/x-ndjson): one episode per line');
      }
      const owner = ownerOf(c);
      const lines = ndjsonLines(new Uint8Array(await c.req.arrayBuffer()));
      if (lines.length > MAX_IMPORT_LINES) {
        return outcomeResponse(c, 413, 'too-long', `import has ${lines.length} episodes; at most ${MAX_IMPORT_LINES} are taken in one request: split it`);
      }
      const out: string[] = [];
      let outBytes = 0;
      const emit = (record: object) => {
        const text = JSON.stringify(record);
        out.push(text);
        outBytes += text.length + 1;
      };
      /** A rejected line's outcome: capped, and only a count once the answer's detail budget is spent. */
      const rejection = (line: number, o: OperationOutcome) => {
        const detailed = capOutcome(o, MAX_LINE_ISSUES);
        const fits = outBytes + JSON.stringify(detailed).length <= MAX_IMPORT_DETAIL_BYTES;
        const count = o.issue?.length ?? 0;
        emit({
          line,
          status: 400,
          outcome: fits
            ? detailed
            : outcome([
                issue(
                  'too-costly',
                  `${count} issue${count === 1 ? '' : 's'} on this line not listed: this answer already lists ${MAX_IMPORT_DETAIL_BYTES} bytes of detail; send the line alone to see them`,
                ),
              ]),
        });
      };
      let accepted = 0;
      let rejected = 0;
      for (let start = 0; start < lines.length; start += IMPORT_CHUNK) {
        const parsed: { line: number; value?: unknown; error?: OperationOutcome }[] = [];
        for (const { line, bytes } of lines.slice(start, start + IMPORT_CHUNK)) {
          try {
            parsed.push({ line, value: parseJsonBody(bytes, { what: `line ${line}` }) });
          } catch (e) {
            if (!(e instanceof JsonBodyError)) throw e;
            parsed.push({ line, error: outcome([issue(jsonErrorCode(e), e.message, e.pointer || undefined)]) });
          }
        }
        const valid = parsed.filter((p) => p.error === undefined);
        const results = await service(c).submitMany(
          valid.map((p) => p.value),
          owner,
        );
        let k = 0;
        for (const p of parsed) {
          if (p.error !== undefined) {
            rejected++;
            rejection(p.line, p.error);
            continue;
          }
          const r = results[k++];
          if (r?.ok) {
            accepted++;
            emit({ line: p.line, status: 202, jobId: r.job.id, location: location(r.job) });
          } else {
            rejected++;
            rejection(p.line, isOperationOutcomeError(r?.error) ? r.error.outcome : outcome([issue('exception', 'internal error')]));
          }
        }
      }
      return c.body(out.join('\n') + (out.length ? '\n' : ''), 200, {
        'content-type': 'application/x-ndjson; charset=utf-8',
        'x-accepted': String(accepted),
        'x-rejected': String(rejected),
      });
    },
  );

  app.get('/jobs', async (c) => {
    const q = listQuery(c);
    if (!q.ok) return outcomeResponse(c, 400, 'invalid', q.message, q.pointer);
    const jobs = await service(c).listJobs(requestTenant(c), q.status, q.limit);
    return c.json({ jobs: jobs.map(view) });
  });

  app.get('/jobs/:id', async (c) => {
    const job = await service(c).getJob(c.req.param('id'), requestTenant(c));
    if (!job) return noSuchJob(c);
    return c.json(view(job));
  });

  app.post('/jobs/:id/$replay', throttle, async (c) => {
    const r = await service(c).replay(c.req.param('id'), requestTenant(c));
    if (!r) return noSuchJob(c);
    const { job } = r;
    if (!r.replayed && job.purgedAt) {
      return outcomeResponse(
        c,
        410,
        'deleted',
        `the content of this job is no longer held (purged ${job.purgedAt} under the retention rule); re-send the episode with PUT /v1/episodes/{episodeId}`,
      );
    }
    if (!r.replayed) return outcomeResponse(c, 409, 'conflict', `only dead or failed jobs can be replayed; this one is ${job.status}`);
    return c.json(view(job), 202, { location: location(job) });
  });

  app.onError((err, c) => {
    if (isOperationOutcomeError(err)) return fhirJson(c, err.outcome, err.status as 400);
    log('http.unhandled_error', { error: errorKind(err) });
    return outcomeResponse(c, 500, 'exception', 'internal error');
  });
  return app;
}
