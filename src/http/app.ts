/**
 * The HTTP shell: Hono routes over the pure core. Nothing here maps, scores or validates
 * by itself; it parses requests, calls the core and turns results into FHIR responses.
 */
import type { Questionnaire, Resource } from '@medplum/fhirtypes';
import { type Context, Hono } from 'hono';
import type { InboundAuthenticator } from '../auth/inbound.ts';
import type { IdentityOptions } from '../fhir/identity.ts';
import { isOperationOutcomeError } from '../fhir/outcome.ts';
import { validateFast } from '../fhir/validate-fast.ts';
import { QUESTIONNAIRE_IDS, questionnaire } from '../instruments/questionnaires.ts';
import { extract, extractionBody } from '../instruments/sdc-extract.ts';
import { errorKind, log } from '../log.ts';
import { mapEpisode } from '../mapping/bundle.ts';
import type { DeliveryService } from '../sync/service.ts';
import { type AuthVariables, requireAuth } from './auth.ts';
import { coordinationRoutes } from './coordination.ts';
import { deliveryRoutes } from './delivery.ts';
import { fhirJson, outcomeResponse, sendOutcome } from './errors.ts';
import { healthRoutes } from './health.ts';
import { limitBody, noStore, readJsonBody as readJson, requireJson } from './middleware.ts';
import { docsPage, openApiDocument } from './openapi.ts';
import { type SmartDeps, smartRoutes } from './smart.ts';
import { summaryRoutes } from './summary.ts';
import { terminologyRoutes } from './terminology.ts';

export interface AppConfig {
  /** Accept synthetic national ids (month + 80); false in production. */
  allowSyntheticIds: boolean;
  /** The deployment's identifier namespace and pseudonym secret; development defaults if absent. */
  identity?: IdentityOptions;
  /** Delivery (jobs, queue, ledger) for this request; absent where the bridge only maps. */
  delivery?: (c: Context) => DeliveryService;
  /** The bridge's public signing keys, served at /.well-known/jwks.json. */
  jwks?: () => Promise<unknown>;
  /**
   * Caller authentication (API_AUTH), created once per process or isolate. The Worker
   * always passes it; without it (tests that build the app directly) nothing is checked.
   */
  auth?: InboundAuthenticator;
  /** The coordination summary opened from EHRs by SMART App Launch (`/smart/*`); absent: no such routes. */
  smart?: SmartDeps;
}

type Env = { Variables: { config: AppConfig } & AuthVariables };

export function createApp(config: AppConfig): Hono<Env> {
  const app = new Hono<Env>();

  // Outermost, so that every answer under /v1, a refusal by authentication included, is no-store.
  app.use('*', noStore);

  // Ahead of the API's caller authentication: these routes authenticate their users by SMART App Launch.
  if (config.smart) app.route('/smart', smartRoutes(config.smart));

  // First, so that no route (nor a 404 for a guessed one) answers an unauthenticated caller.
  if (config.auth) app.use('*', requireAuth(config.auth));

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/openapi.json', (c) => c.json(openApiDocument()));
  app.get('/docs', (c) => c.html(docsPage()));
  app.get('/', (c) => c.redirect('/docs'));

  app.post('/v1/episodes/$map', limitBody, requireJson, async (c) => {
    const body = await readJson(c);
    if (!body.ok) return body.response;
    return fhirJson(c, mapEpisode(body.value, { allowSyntheticIds: config.allowSyntheticIds, identity: config.identity }));
  });

  app.get('/v1/Questionnaire', (c) =>
    fhirJson(c, {
      resourceType: 'Bundle',
      type: 'searchset',
      total: QUESTIONNAIRE_IDS.length,
      entry: QUESTIONNAIRE_IDS.map((id) => {
        const q = questionnaire(id) as Questionnaire;
        return { fullUrl: q.url, resource: q, search: { mode: 'match' } };
      }),
    }),
  );

  app.get('/v1/Questionnaire/:id', (c) => {
    const q = questionnaire(c.req.param('id'));
    return q ? fhirJson(c, q) : outcomeResponse(c, 404, 'not-found', 'no such Questionnaire; GET /v1/Questionnaire lists them');
  });

  app.route('/v1', terminologyRoutes<Env>());

  app.post('/v1/QuestionnaireResponse/$extract', limitBody, requireJson, async (c) => {
    const body = await readJson(c);
    if (!body.ok) return body.response;
    // The Bundle, or Parameters {return, issues} when there are warnings (SDC $extract outputs).
    return fhirJson(c, extractionBody(extract(body.value, { allowSyntheticIds: config.allowSyntheticIds, identity: config.identity })));
  });

  app.post('/v1/$validate', limitBody, requireJson, async (c) => {
    const body = await readJson(c);
    if (!body.ok) return body.response;
    const value = body.value as Resource | undefined;
    if (!value || typeof value !== 'object' || typeof value.resourceType !== 'string') {
      return outcomeResponse(c, 400, 'structure', 'body is not a FHIR resource: resourceType is missing', '/resourceType');
    }
    // FHIR $validate answers 200 whether or not the resource is valid; the outcome says which.
    return sendOutcome(c, await validateFast(value), 200);
  });

  if (config.delivery) {
    app.route('/v1', deliveryRoutes(config.delivery));
    app.route('/v1', coordinationRoutes(config.delivery));
    app.route('/v1', summaryRoutes(config.delivery, config.identity));
    app.route('/v1', healthRoutes(config.delivery));
  }
  app.get('/.well-known/jwks.json', async (c) => c.json(config.jwks ? await config.jwks() : { keys: [] }));

  // The path is not repeated: a caller may have put an identifier in it.
  app.notFound((c) => outcomeResponse(c, 404, 'not-found', `no route for this ${c.req.method} request; /openapi.json lists the routes`));
  app.onError((err, c) => {
    if (isOperationOutcomeError(err)) return sendOutcome(c, err.outcome, err.status as 400);
    // Never echo internals or input: they may hold personal data.
    log('http.unhandled_error', { error: errorKind(err) });
    return outcomeResponse(c, 500, 'exception', 'internal error');
  });
  return app;
}
