/** Delivery routes: episodes in, jobs out. */
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { OperationOutcomeError, isOperationOutcomeError, issue, outcome } from '../fhir/outcome.ts';
import type { DeliveryService, Owner } from '../sync/service.ts';
import type { Job, JobStatus } from '../sync/types.ts';
import { LOCAL_CALLER } from '../auth/inbound.ts';
import { type AuthVariables, requestTenant } from './auth.ts';
import { fhirJson, outcomeResponse } from './errors.ts';
import { limitBody, requireJson } from './middleware.ts';

const STATUSES: JobStatus[] = ['queued', 'retrying', 'delivered', 'failed', 'dead'];
/** Largest NDJSON import in one request. */
export const MAX_IMPORT_BYTES = 32 * 1024 * 1024;
const IMPORT_CHUNK = 100;

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
  targets: job.targets,
  ...(job.caller ? { caller: job.caller } : {}),
  ...(job.purgedAt ? { contentPurgedAt: job.purgedAt } : {}),
});

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
    let input: unknown;
    try {
      input = await c.req.json();
    } catch (e) {
      return outcomeResponse(c, 400, 'invalid', `request body is not valid JSON: ${(e as Error).message}`);
    }
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
      const lines = (await c.req.text()).split(/\r?\n/);
      const out: string[] = [];
      let accepted = 0;
      let rejected = 0;
      for (let start = 0; start < lines.length; start += IMPORT_CHUNK) {
        const chunk = lines.slice(start, start + IMPORT_CHUNK).map((text, i) => ({ line: start + i + 1, text }));
        const parsed: { line: number; value?: unknown; error?: string }[] = [];
        for (const { line, text } of chunk) {
          if (!text.trim()) continue;
          try {
            parsed.push({ line, value: JSON.parse(text) });
          } catch (e) {
            parsed.push({ line, error: `line ${line} is not valid JSON: ${(e as Error).message}` });
          }
        }
        const valid = parsed.filter((p) => p.error === undefined);
        const results = await service(c).submitMany(valid.map((p) => p.value), owner);
        let k = 0;
        for (const p of parsed) {
          if (p.error !== undefined) {
            rejected++;
            out.push(JSON.stringify({ line: p.line, status: 400, outcome: outcome([issue('invalid', p.error)]) }));
            continue;
          }
          const r = results[k++];
          if (r?.ok) {
            accepted++;
            out.push(JSON.stringify({ line: p.line, status: 202, jobId: r.job.id, location: location(r.job) }));
          } else {
            rejected++;
            const o = isOperationOutcomeError(r?.error) ? r.error.outcome : outcome([issue('exception', 'internal error')]);
            out.push(JSON.stringify({ line: p.line, status: 400, outcome: o }));
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
    const status = c.req.query('status')?.split(',').filter(Boolean);
    const bad = status?.find((s) => !STATUSES.includes(s as JobStatus));
    if (bad) return outcomeResponse(c, 400, 'invalid', `status must be one or more of ${STATUSES.join(', ')}`, '/status');
    const limit = Math.min(Math.max(Number(c.req.query('limit') ?? 100) || 100, 1), 1000);
    const jobs = await service(c).listJobs(requestTenant(c), status as JobStatus[] | undefined, limit);
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
    console.error('unhandled error', err instanceof Error ? err.name : typeof err);
    return outcomeResponse(c, 500, 'exception', 'internal error');
  });
  return app;
}
