/**
 * `GET /v1/episodes/{episodeId}/summary`: the coordination summary of one of the tenant's episodes
 * for the clinic's own callers, built from the latest version of the episode the tenant sent
 * (src/sync/episodes.ts). Shared contract `sharing.md`: the consent decides whether there is a
 * summary and what it shows; a closed gate is a 403 OperationOutcome, never an empty document.
 *
 * - `Accept: text/html` → the page (src/coordination/summary-page.ts), sent with the
 *   Content-Security-Policy it is made for; `application/fhir+json`, `application/json` or
 *   nothing → the FHIR document, signed with the bridge's key where BRIDGE_PRIVATE_JWKS is set.
 * - `?lang=nb|en`, else `Accept-Language` (bokmål for nb, no and nn), else bokmål.
 * - `?at=` (ISO 8601 date-time with offset): the moment the gate is evaluated and the document
 *   dated; default now.
 * - `?clinic=` (organisation number): which clinic's episode, where one tenant has sent the same
 *   episode id for two clinics.
 *
 * The coordination requests show the status the primary team gave them, as last read back after
 * a delivery (`GET /v1/jobs/{id}` shows the same read).
 *
 * Views by the clinic's own callers are not audited (they read their own record); views from
 * outside the clinic come through the SMART launch, which audits them.
 */

import type { Task } from '@medplum/fhirtypes';
import { type Context, Hono } from 'hono';
import { buildSummary, type SummaryLang } from '../coordination/summary.ts';
import { renderSummaryPage, SUMMARY_PAGE_CSP } from '../coordination/summary-page.ts';
import { businessIdSystem, DEV_IDENTITY, type IdentityOptions } from '../fhir/identity.ts';
import { FHIR_JSON } from '../fhir/json.ts';
import { isOperationOutcomeError } from '../fhir/outcome.ts';
import type { DeliveryService } from '../sync/service.ts';
import type { CoordinationRecord } from '../sync/types.ts';
import { type AuthVariables, requestTenant } from './auth.ts';
import { fhirJson, outcomeResponse, sendOutcome } from './errors.ts';

/** Episode ids as the episode format allows them. */
const EPISODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
const ORG_NUMBER = /^[0-9]{9}$/;

/** One entry of an Accept or Accept-Language header, with its quality. */
function preferences(header: string | undefined): string[] {
  if (!header) return [];
  return header
    .split(',')
    .map((part, i) => {
      const [value = '', ...params] = part.split(';').map((x) => x.trim());
      const q = params.find((p) => /^q=/i.test(p));
      const quality = q ? Number(q.slice(2)) : 1;
      return { value: value.toLowerCase(), q: Number.isFinite(quality) ? quality : 0, i };
    })
    .filter((p) => p.value && p.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i)
    .map((p) => p.value);
}

/** The representation asked for: the page, the FHIR document, or none the route has. */
export function representation(accept: string | undefined): 'html' | 'fhir' | undefined {
  const prefs = preferences(accept);
  if (!prefs.length) return 'fhir';
  for (const type of prefs) {
    if (type === 'text/html' || type === 'application/xhtml+xml' || type === 'text/*') return 'html';
    if (type === FHIR_JSON || type === 'application/json' || type === 'application/*' || type === '*/*') return 'fhir';
  }
  return undefined;
}

/** Bokmål or English from `Accept-Language` (nb, no and nn read as bokmål); bokmål by default. */
export function languageOf(acceptLanguage: string | undefined): SummaryLang {
  for (const tag of preferences(acceptLanguage)) {
    const primary = tag.split('-')[0];
    if (primary === 'nb' || primary === 'no' || primary === 'nn') return 'nb';
    if (primary === 'en') return 'en';
  }
  return 'nb';
}

/**
 * The requests read back, as the Tasks the summary builder matches by identifier (the bridge's
 * own identifier system of coordination requests for the clinic, src/coordination/share.ts).
 */
function readBackTasks(records: readonly CoordinationRecord[], identity: IdentityOptions, clinicOrg: string): Task[] {
  const system = businessIdSystem(identity, clinicOrg, 'coordination-request');
  return records.flatMap((r) =>
    r.requests.map(
      (q) =>
        ({
          resourceType: 'Task',
          intent: 'order',
          status: q.status as Task['status'],
          identifier: [{ system, value: q.identifier }],
          ...(q.lastModified ? { lastModified: q.lastModified } : {}),
        }) satisfies Task,
    ),
  );
}

const noSuchEpisode = (c: Context) => outcomeResponse(c, 404, 'not-found', 'no such episode');

/** The routes over the delivery service's stored episodes; `identity` as the deployment's (IDENTIFIER_NAMESPACE, IDENTITY_SECRET). */
export function summaryRoutes(service: (c: Context) => DeliveryService, identity?: IdentityOptions): Hono<{ Variables: AuthVariables }> {
  const app = new Hono<{ Variables: AuthVariables }>();

  app.get('/episodes/:episodeId/summary', async (c) => {
    try {
      for (const name of ['lang', 'at', 'clinic']) {
        if ((c.req.queries(name)?.length ?? 0) > 1) return outcomeResponse(c, 400, 'invalid', `query parameter ${name} is given more than once`, `/${name}`);
      }
      const lang = c.req.query('lang');
      if (lang !== undefined && lang !== 'nb' && lang !== 'en') return outcomeResponse(c, 400, 'invalid', 'query parameter lang must be "nb" or "en"', '/lang');
      const clinic = c.req.query('clinic');
      if (clinic !== undefined && !ORG_NUMBER.test(clinic))
        return outcomeResponse(c, 400, 'invalid', "query parameter clinic must be the clinic's 9-digit organisation number", '/clinic');
      const as = representation(c.req.header('accept'));
      if (!as) return outcomeResponse(c, 406, 'not-supported', 'the summary is served as text/html or application/fhir+json');

      const tenant = requestTenant(c);
      const episodeId = c.req.param('episodeId');
      const svc = service(c);
      // Another tenant's episode gets exactly the answer of one that does not exist.
      if (!EPISODE_ID.test(episodeId) || !svc.findEpisodes) return noSuchEpisode(c);
      const found = (await svc.findEpisodes(tenant, episodeId)).filter((s) => clinic === undefined || s.episode.clinic.orgNumber === clinic);
      if (!found.length) return noSuchEpisode(c);
      if (found.length > 1) {
        return outcomeResponse(c, 409, 'multiple-matches', 'this episode id was sent for more than one clinic: add ?clinic=<organisation number>', '/clinic');
      }
      const stored = found[0]!;
      const requests = readBackTasks((await svc.requestsOf?.(tenant, stored.episodeKey)) ?? [], identity ?? DEV_IDENTITY, stored.episode.clinic.orgNumber);
      const opts = {
        at: c.req.query('at') ?? new Date().toISOString(),
        lang: (lang ?? languageOf(c.req.header('accept-language'))) as SummaryLang,
        requests,
        ...(identity ? { identity } : {}),
      };
      const vary = { vary: 'Accept, Accept-Language' };
      if (as === 'html') {
        const page = renderSummaryPage(stored.episode, opts);
        return c.html(page, 200, { 'content-security-policy': SUMMARY_PAGE_CSP, 'cache-control': 'no-store', 'content-language': opts.lang, ...vary });
      }
      const document = buildSummary(stored.episode, opts);
      return fhirJson(c, svc.signSummary ? await svc.signSummary(document) : document, 200, {
        'cache-control': 'no-store',
        'content-language': opts.lang,
        ...vary,
      });
    } catch (e) {
      // A refused summary (403) or a bad `at` (400): the builder's OperationOutcome.
      if (isOperationOutcomeError(e)) return sendOutcome(c, e.outcome, e.status as 400);
      throw e;
    }
  });

  return app;
}
