/**
 * GET /v1/coordination: the caller's tenant's episodes with the coordination requests (Task)
 * the bridge keeps on their primary treatment servers, as last read back (shared contract
 * `sharing.md`, "Coordination requests": the bridge reads the status back and shows it to the
 * clinic). Nothing here reaches a FHIR server: the read-backs are the delivery's and the
 * scheduled refresh's (src/sync/coordination.ts).
 */
import { type Context, Hono } from 'hono';
import type { CoordinationEntry } from '../sync/coordination.ts';
import type { DeliveryService } from '../sync/service.ts';
import { type AuthVariables, requestTenant } from './auth.ts';
import { outcomeResponse } from './errors.ts';

type CoordinationQuery = { ok: true; overdueOnly: boolean } | { ok: false; message: string; pointer: string };

/** `?overdue=true|false`, checked like the jobs list's parameters: a bad value is a 400 naming it. */
function coordinationQuery(c: Context): CoordinationQuery {
  const values = c.req.queries('overdue') ?? [];
  if (values.length > 1) return { ok: false, message: 'query parameter overdue is given more than once', pointer: '/overdue' };
  const raw = values[0];
  if (raw !== undefined && raw !== 'true' && raw !== 'false')
    return { ok: false, message: 'query parameter overdue must be true or false', pointer: '/overdue' };
  return { ok: true, overdueOnly: raw === 'true' };
}

/** One episode and primary target as the API shows it. No personal data: ids, codes, statuses and dates. */
const entryView = (e: CoordinationEntry) => ({
  episode: e.episodeKey,
  target: e.target,
  readAt: e.readAt,
  overdue: e.requests.filter((r) => r.overdue).length,
  requests: e.requests,
});

export function coordinationRoutes(service: (c: Context) => DeliveryService): Hono<{ Variables: AuthVariables }> {
  const app = new Hono<{ Variables: AuthVariables }>();

  app.get('/coordination', async (c) => {
    const q = coordinationQuery(c);
    if (!q.ok) return outcomeResponse(c, 400, 'invalid', q.message, q.pointer);
    const entries = await service(c).listCoordination(requestTenant(c));
    const shown = q.overdueOnly ? entries.filter((e) => e.requests.some((r) => r.overdue)) : entries;
    return c.json({ episodes: shown.map(entryView) });
  });

  return app;
}
