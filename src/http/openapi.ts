/**
 * OpenAPI 3.1 description of the HTTP API, generated from the same zod schemas that
 * validate requests (OpenAPI 3.1 uses JSON Schema 2020-12, which zod emits directly).
 */
import * as z from 'zod/mini';
import { EpisodeSchema } from '../domain/episode.ts';
import { FHIR_JSON as FHIR } from '../fhir/json.ts';
import { MAX_BODY_BYTES } from './middleware.ts';

const outcomeRef = { $ref: '#/components/schemas/OperationOutcome' };
const errorResponse = (description: string) => ({ description, content: { [FHIR]: { schema: outcomeRef } } });

/**
 * Security per operation. The scheme is `bearer`; the listed "scopes" are what an access
 * token (API_AUTH jwt) must carry, any one of them (static API tokens carry all).
 */
const ANY_TOKEN = [{ bearer: [] as string[] }];
const WRITE = [{ bearer: ['system/*.write'] }, { bearer: ['system/*.*'] }];
const READ = [{ bearer: ['system/*.read'] }, { bearer: ['system/*.*'] }];
const PUBLIC: never[] = [];
const authErrors = {
  '401': {
    ...errorResponse('No token, or a token that is not valid; code `login`'),
    headers: {
      'WWW-Authenticate': {
        description: 'Bearer challenge (RFC 6750 §3), with error="invalid_token" for a token that was refused',
        schema: { type: 'string' },
      },
    },
  },
  '403': {
    ...errorResponse('The token lacks the scope this operation needs, or its caller belongs to no tenant; code `forbidden`'),
    headers: { 'WWW-Authenticate': { description: 'Bearer challenge with error="insufficient_scope" and the scope needed', schema: { type: 'string' } } },
  },
  '503': errorResponse("API_AUTH jwt: the authorisation server's keys could not be fetched to check the token; try again; code `transient`"),
};
/** What a body that the strict JSON parser refuses, or one too large or not JSON, is answered. */
const bodyErrors = {
  '413': errorResponse(`Body larger than ${MAX_BODY_BYTES} bytes (1 MiB), by Content-Length or as read; code \`too-long\``),
  '415': errorResponse('Body is not application/json or application/fhir+json; code `not-supported`'),
};
/** The per-tenant rate limit of the write routes (README "Rate limit"). */
const throttled = {
  '429': {
    ...errorResponse('Too many writes by this tenant in the current window; code `throttled`. Nothing was stored'),
    headers: { 'Retry-After': { description: 'Seconds to wait before writing again (RFC 9110 §10.2.3)', schema: { type: 'integer' } } },
  },
};
const noSuchJob = errorResponse("No such job for this caller's tenant: another tenant's job is answered exactly as one that does not exist; code `not-found`");
/** Answers under /v1 can carry patient data: none may be kept by a browser or proxy. */
const NO_STORE_HEADER = {
  'Cache-Control': { description: '`no-store` on every answer under /v1, errors included (RFC 9111 §5.2.2.5)', schema: { const: 'no-store' } },
};

/** Adds the Cache-Control header to every response of every /v1 operation. */
function withNoStore(paths: Record<string, Record<string, { responses: Record<string, { headers?: Record<string, unknown> }> }>>): void {
  for (const [path, methods] of Object.entries(paths)) {
    if (!path.startsWith('/v1/')) continue;
    for (const op of Object.values(methods)) {
      for (const [status, r] of Object.entries(op.responses)) op.responses[status] = { ...r, headers: { ...NO_STORE_HEADER, ...r.headers } };
    }
  }
}
const jobView = { $ref: '#/components/schemas/Job' };

const BAD_JSON =
  'Body refused by the strict JSON parser (not valid JSON or UTF-8, a duplicate key, nesting deeper than 64 levels, a `__proto__`/`constructor`/`prototype` key: codes `invalid`, `structure`, `too-costly`; the position is named, never the text)';

/** The API's description in three parts, so that the docs page can explain authentication its own way, once. */
const DESCRIPTION = {
  intro:
    "Maps Marte Meo video-guidance episodes (episode format 1.0) to FHIR R4 and validates FHIR resources against R4 and the bridge's profiles. " +
    `Request bodies are JSON of at most ${MAX_BODY_BYTES} bytes. Every error is a FHIR OperationOutcome whose issues name the offending field by JSON pointer in \`expression\`. ` +
    'Cross-field rules of the format (status-dependent fields, unique ids, clip references, consent recipient) are checked as well as the schema below. ',
  authentication:
    "Authentication: every /v1 operation needs `Authorization: Bearer <token>`, either a static API token or a SMART Backend Services access token (JWT) from the deployment's authorisation server. " +
    'Writing episodes, importing and replaying jobs need `system/*.write` (or `system/*.*`, `system/EpisodeOfCare.write`); reading jobs and coordination requests needs `system/*.read` (or `system/*.*`); the other /v1 operations need any valid token. ' +
    '`user/` and `patient/` scopes are not accepted. /healthz, /openapi.json, /docs and /.well-known/jwks.json are public. ',
  behaviour:
    "Tenants: jobs belong to the tenant of the caller that sent them (a static token's name or a JWT's client id, grouped by TENANTS); another tenant gets 404 for them. " +
    'Every answer under /v1 is `Cache-Control: no-store`. Writes (PUT /v1/episodes/{episodeId}, $import, $replay) are rate-limited per tenant: 429 with Retry-After. ' +
    'A route that does not exist is 404 `not-found`; an unexpected failure 500 `exception`, and a deployment whose settings are missing or wrong answers every request 500 naming the setting.',
};

let cached: Record<string, unknown> | undefined;

export function openApiDocument(): Record<string, unknown> {
  if (cached) return cached;
  const episode = z.toJSONSchema(EpisodeSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' });
  delete (episode as Record<string, unknown>).$schema;
  const jsonBody = (schema: unknown) => ({ required: true, content: { 'application/json': { schema }, [FHIR]: { schema } } });
  cached = {
    openapi: '3.1.0',
    info: {
      title: 'imh-bridge',
      version: '1.0.0',
      description: DESCRIPTION.intro + DESCRIPTION.authentication + DESCRIPTION.behaviour,
    },
    security: ANY_TOKEN,
    paths: {
      '/v1/episodes/$map': {
        post: {
          operationId: 'mapEpisode',
          security: ANY_TOKEN,
          summary: 'Validate an episode and map it to a FHIR R4 transaction Bundle',
          requestBody: jsonBody({ $ref: '#/components/schemas/Episode' }),
          responses: {
            '200': {
              description: 'Deterministic transaction Bundle (conditional writes on business identifiers)',
              content: { [FHIR]: { schema: { $ref: '#/components/schemas/Bundle' } } },
            },
            '400': errorResponse(BAD_JSON + '; or the episode is not valid: every problem is listed (at most 100)'),
            ...bodyErrors,
            ...authErrors,
          },
        },
      },
      '/v1/$validate': {
        post: {
          operationId: 'validate',
          security: ANY_TOKEN,
          summary: "Validate a FHIR R4 resource or Bundle against R4 and the bridge's profiles",
          requestBody: jsonBody({ type: 'object', required: ['resourceType'], properties: { resourceType: { type: 'string' } } }),
          responses: {
            '200': { description: 'Validation outcome (errors mean the resource is not valid)', content: { [FHIR]: { schema: outcomeRef } } },
            '400': errorResponse(BAD_JSON + '; or the body is not a FHIR resource'),
            ...bodyErrors,
            ...authErrors,
          },
        },
      },
      '/v1/Questionnaire': {
        get: {
          operationId: 'listQuestionnaires',
          security: ANY_TOKEN,
          summary: 'The published Questionnaires (EPDS, PHQ-9, GAD-7, PRFQ, PDI-RF, Marte Meo session review) as a searchset Bundle',
          responses: {
            '200': { description: 'Bundle of Questionnaires (canonical URL and version stable)', content: { [FHIR]: { schema: { type: 'object' } } } },
            ...authErrors,
          },
        },
      },
      '/v1/Questionnaire/{id}': {
        get: {
          operationId: 'readQuestionnaire',
          security: ANY_TOKEN,
          summary: 'One published Questionnaire',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'The Questionnaire', content: { [FHIR]: { schema: { type: 'object' } } } },
            '404': errorResponse('No such Questionnaire'),
            ...authErrors,
          },
        },
      },
      '/v1/QuestionnaireResponse/$extract': {
        post: {
          operationId: 'extract',
          security: ANY_TOKEN,
          summary:
            "SDC extraction: a QuestionnaireResponse to one of the bridge's Questionnaires → transaction Bundle of the response, its score Observations and any self-harm Flag. " +
            'Takes the response as a form renderer (LHC-Forms, CSIRO Smart Forms) exports it plus a `subject`: {reference: "Patient/<id>"} or {identifier: {system: "urn:oid:2.16.578.1.12.4.1.4.1" (or …4.1.4.2 for a D-number), value: "<national id>"}} (written as the conditional reference Patient?identifier=…). ' +
            "Identity: the response's `identifier`, else its `id`, else questionnaire + subject + authored: the same response sent twice gives the same Bundle. A response carrying the bridge's assessment identifier (…/sid/<org>/assessment) gets the identities of the episode path. " +
            'Calculated items (totals, subscale means) are stored with the value the bridge computes; one the response states differently is reported as a warning. Only elements R4 defines for QuestionnaireResponse are kept.',
          requestBody: jsonBody({ type: 'object', required: ['resourceType'], properties: { resourceType: { const: 'QuestionnaireResponse' } } }),
          responses: {
            '200': {
              description:
                'Without warnings: the transaction Bundle, identical to what the episode path writes for the same answers. With warnings (a submitted total or subscale that disagrees with the answers): a FHIR Parameters resource with `return` (the Bundle, carrying the computed values) and `issues` (an OperationOutcome of severity warning whose expression points into the response), as the SDC $extract OperationDefinition defines its outputs',
              content: { [FHIR]: { schema: { oneOf: [{ $ref: '#/components/schemas/Bundle' }, { $ref: '#/components/schemas/ExtractParameters' }] } } },
            },
            '400': errorResponse(
              BAD_JSON + '; or the response does not fit its Questionnaire, or its subject is missing or not valid; expressions point into the response',
            ),
            ...bodyErrors,
            ...authErrors,
          },
        },
      },
      '/v1/CodeSystem': {
        get: {
          operationId: 'listCodeSystems',
          security: ANY_TOKEN,
          summary: "The bridge's own CodeSystems (every code it writes outside LOINC, ICD-10 and HL7 terminologies) as a searchset Bundle",
          responses: { '200': { description: 'Bundle of CodeSystems', content: { [FHIR]: { schema: { type: 'object' } } } }, ...authErrors },
        },
      },
      '/v1/CodeSystem/{id}': {
        get: {
          operationId: 'readCodeSystem',
          security: ANY_TOKEN,
          summary: "One of the bridge's CodeSystems (content complete)",
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'The CodeSystem', content: { [FHIR]: { schema: { type: 'object' } } } },
            '404': errorResponse('No such CodeSystem'),
            ...authErrors,
          },
        },
      },
      '/v1/ValueSet': {
        get: {
          operationId: 'listValueSets',
          security: ANY_TOKEN,
          summary: "The bridge's own ValueSets, each with its expansion, as a searchset Bundle",
          responses: { '200': { description: 'Bundle of ValueSets', content: { [FHIR]: { schema: { type: 'object' } } } }, ...authErrors },
        },
      },
      '/v1/ValueSet/{id}': {
        get: {
          operationId: 'readValueSet',
          security: ANY_TOKEN,
          summary: "One of the bridge's ValueSets, with its expansion (so no terminology server is needed to offer its codes)",
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'The ValueSet with expansion.contains', content: { [FHIR]: { schema: { type: 'object' } } } },
            '404': errorResponse('No such ValueSet'),
            ...authErrors,
          },
        },
      },
      '/v1/episodes/{episodeId}': {
        put: {
          operationId: 'submitEpisode',
          summary: 'Validate, map and record an episode for delivery to the FHIR targets',
          security: WRITE,
          parameters: [{ name: 'episodeId', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: jsonBody({ $ref: '#/components/schemas/Episode' }),
          responses: {
            '202': { description: 'Job recorded; Location: /v1/jobs/{id}', content: { 'application/json': { schema: jobView } } },
            '400': errorResponse(BAD_JSON + '; or the episode is not valid, or its episodeId differs from the URL'),
            ...bodyErrors,
            ...throttled,
            ...authErrors,
          },
        },
      },
      '/v1/episodes/{episodeId}/summary': {
        get: {
          operationId: 'readSummary',
          summary:
            "The coordination summary of one of the tenant's episodes, built from the latest version it sent: the signed FHIR document (LOINC 34133-9) or the readable page. The consent decides whether there is one and what it shows",
          security: READ,
          parameters: [
            { name: 'episodeId', in: 'path', required: true, schema: { type: 'string' } },
            {
              name: 'lang',
              in: 'query',
              required: false,
              description: 'nb (bokmål) or en; else Accept-Language; else nb',
              schema: { type: 'string', enum: ['nb', 'en'] },
            },
            {
              name: 'at',
              in: 'query',
              required: false,
              description: 'When the consent is evaluated and the document dated (ISO 8601 date-time with offset); default now',
              schema: { type: 'string', format: 'date-time' },
            },
            {
              name: 'clinic',
              in: 'query',
              required: false,
              description: "The clinic's organisation number, where the tenant sent this episode id for two clinics",
              schema: { type: 'string', pattern: '^[0-9]{9}$' },
            },
          ],
          responses: {
            '200': {
              description:
                'Accept: application/fhir+json (or none): the FHIR document Bundle, with Bundle.signature (detached JWS, verifiable against /.well-known/jwks.json) where the bridge has a signing key. Accept: text/html: the self-contained page, sent with Content-Security-Policy',
              headers: {
                'Content-Security-Policy': {
                  description: "With the page: default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                  schema: { type: 'string' },
                },
              },
              content: { [FHIR]: { schema: { $ref: '#/components/schemas/Bundle' } }, 'text/html': { schema: { type: 'string' } } },
            },
            '400': errorResponse('lang, at or clinic not valid, or given twice'),
            '404': errorResponse(
              "No such episode for this caller's tenant: another tenant's episode is answered exactly as one that does not exist; code `not-found`",
            ),
            '406': errorResponse('Accept names neither text/html nor application/fhir+json; code `not-supported`'),
            '409': errorResponse('The tenant sent this episode id for more than one clinic: add ?clinic=; code `multiple-matches`'),
            ...authErrors,
          },
        },
      },
      '/v1/episodes/$import': {
        post: {
          operationId: 'importEpisodes',
          summary: 'Submit many episodes as NDJSON; the answer has one line per input line',
          security: WRITE,
          requestBody: { required: true, content: { 'application/x-ndjson': { schema: { type: 'string' } } } },
          responses: {
            '200': {
              description:
                'NDJSON: per line, 202 with the job or 400 with an OperationOutcome (each line parsed as strictly as a single body; at most 20 issues per line, and only counts once the answer lists 2 MiB of detail). X-Accepted and X-Rejected count the lines',
              content: { 'application/x-ndjson': { schema: { type: 'string' } } },
            },
            '413': errorResponse('More than 32 MiB, or more than 10,000 episodes; code `too-long`'),
            '415': errorResponse('Body is not NDJSON (application/x-ndjson, application/ndjson or application/fhir+ndjson); code `not-supported`'),
            ...throttled,
            ...authErrors,
          },
        },
      },
      '/v1/jobs': {
        get: {
          operationId: 'listJobs',
          summary: "Delivery jobs of the caller's tenant, oldest first, optionally by status",
          security: READ,
          parameters: [
            { name: 'status', in: 'query', schema: { type: 'string' }, description: 'Comma-separated: queued, retrying, delivered, failed, dead' },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
          ],
          responses: {
            '200': {
              description: 'The jobs',
              content: { 'application/json': { schema: { type: 'object', properties: { jobs: { type: 'array', items: jobView } } } } },
            },
            '400': errorResponse('A status that is not one of the five, a limit that is not a whole number from 1 to 1000, or a parameter given twice'),
            ...authErrors,
          },
        },
      },
      '/v1/jobs/{id}': {
        get: {
          operationId: 'readJob',
          summary:
            "One delivery job of the caller's tenant and its result per target (a FHIR server's error text capped, with national ids, names and phone numbers redacted)",
          security: READ,
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'The job', content: { 'application/json': { schema: jobView } } }, '404': noSuchJob, ...authErrors },
        },
      },
      '/v1/coordination': {
        get: {
          operationId: 'listCoordination',
          summary:
            "The caller's tenant's episodes with the coordination requests (Task) the bridge keeps on their primary treatment team's server, as last read back: after each delivery there, and by the scheduled handler once the last read is older than COORDINATION_REFRESH_MINUTES and a request is still open. " +
            "Per request: occasion, status (the primary team's word once they act; `not-found` when the Task is gone), priority, due date, overdue (due date passed and still requested, received, accepted or in-progress) and when it last changed there. No personal data",
          security: READ,
          parameters: [
            {
              name: 'overdue',
              in: 'query',
              schema: { enum: ['true', 'false'] },
              description: '`true`: only episodes with at least one overdue request (each still listed with all its requests)',
            },
          ],
          responses: {
            '200': {
              description: 'Episodes by episode key, then target',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['episodes'],
                    properties: { episodes: { type: 'array', items: { $ref: '#/components/schemas/CoordinationEntry' } } },
                  },
                },
              },
            },
            '400': errorResponse('overdue that is not true or false, or given twice; code `invalid`'),
            ...authErrors,
          },
        },
      },
      '/v1/health/deliveries': {
        get: {
          operationId: 'deliveryHealth',
          summary:
            "What an operator watches, for the caller's tenant: queue depth (jobs queued or retrying), the age in seconds of the oldest of them (by when it was submitted; null when none waits), and per target how many jobs left it dead or failed (targets with neither are left out; replaying a job takes it off). " +
            'Counts, ages and target names only; no personal data. Never cached',
          security: READ,
          responses: {
            '200': {
              description: 'Delivery health of the tenant',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['tenant', 'queueDepth', 'oldestWaitingSeconds', 'targets'],
                    properties: {
                      tenant: { type: 'string' },
                      queueDepth: { type: 'integer', minimum: 0 },
                      oldestWaitingSeconds: { type: ['integer', 'null'], minimum: 0 },
                      targets: {
                        type: 'object',
                        additionalProperties: {
                          type: 'object',
                          required: ['dead', 'failed'],
                          properties: { dead: { type: 'integer', minimum: 0 }, failed: { type: 'integer', minimum: 0 } },
                        },
                      },
                    },
                  },
                },
              },
            },
            '501': errorResponse('the store of this deployment does not report delivery health; code `not-supported`'),
            ...authErrors,
          },
        },
      },
      '/v1/jobs/{id}/$replay': {
        post: {
          operationId: 'replayJob',
          summary: 'Queue a dead or failed job again',
          security: WRITE,
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '202': { description: 'Queued again', content: { 'application/json': { schema: jobView } } },
            '404': noSuchJob,
            '409': errorResponse('The job is neither dead nor failed; code `conflict`'),
            '410': errorResponse("The job's content was purged under the retention rule (BUNDLE_RETENTION_DAYS); send the episode again; code `deleted`"),
            ...throttled,
            ...authErrors,
          },
        },
      },
      '/healthz': { get: { operationId: 'health', summary: 'Liveness', security: PUBLIC, responses: { '200': { description: 'Service is up' } } } },
      '/openapi.json': {
        get: { operationId: 'openapi', summary: 'This document', security: PUBLIC, responses: { '200': { description: 'OpenAPI 3.1 document' } } },
      },
      '/docs': {
        get: {
          operationId: 'docs',
          summary: 'This description as a web page',
          security: PUBLIC,
          responses: { '200': { description: 'HTML', content: { 'text/html': {} } } },
        },
      },
      '/': { get: { operationId: 'root', summary: 'Redirects to /docs', security: PUBLIC, responses: { '302': { description: 'Location: /docs' } } } },
      '/.well-known/jwks.json': {
        get: {
          operationId: 'jwks',
          summary: "The bridge's public signing keys (SMART Backend Services client)",
          security: PUBLIC,
          responses: { '200': { description: 'JSON Web Key Set' } },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A static API token, or a SMART Backend Services access token (JWT, RS384/ES384/RS256/ES256) from the authorisation server the deployment trusts; scopes from its `scope` claim. Which one is set by API_AUTH.',
        },
      },
      schemas: {
        Job: {
          type: 'object',
          required: ['id', 'episode', 'status', 'attempts', 'createdAt', 'updatedAt', 'mappingVersion', 'targets'],
          properties: {
            id: { type: 'string' },
            episode: { type: 'string', description: '{clinic org number}/{episodeId}' },
            status: { enum: ['queued', 'retrying', 'delivered', 'failed', 'dead'] },
            attempts: { type: 'integer' },
            createdAt: { type: 'string', format: 'date-time' },
            updatedAt: { type: 'string', format: 'date-time' },
            nextAttemptAt: { type: 'string', format: 'date-time' },
            mappingVersion: { type: 'string' },
            targets: { type: 'object', additionalProperties: { type: 'object' } },
            audits: {
              type: 'array',
              description:
                "The job's disclosures to a primary treatment team, and refusals because of consent, each audited by an AuditEvent on the clinic's server",
              items: { $ref: '#/components/schemas/JobAudit' },
            },
            caller: { type: 'string', description: "Who submitted the job: the JWT client id (or subject), the static API token's name, or `local`" },
            contentPurgedAt: { type: 'string', format: 'date-time', description: 'When the stored Bundle was purged (retention); the job and ledger are kept' },
          },
        },
        JobAudit: {
          type: 'object',
          description:
            "One disclosure or consent refusal of a job as audited on the clinic's server (IHE BALP PrivacyDisclosure); the AuditEvent itself, with the patient and what was sent, stays there",
          required: ['target', 'kind', 'status', 'round', 'attempts'],
          properties: {
            target: { type: 'string', description: '`primary.<org number>`: the primary treatment team the disclosure or refusal concerns' },
            kind: { enum: ['disclosure', 'refusal'] },
            status: {
              enum: ['waiting', 'retrying', 'written', 'skipped', 'failed', 'dead'],
              description:
                "written: the AuditEvent is on the clinic's server; waiting: the outcome is not known yet; retrying: its write failed and is tried again; skipped: nothing was sent (unchanged or superseded), so nothing disclosed; failed/dead: the write was refused or gave up",
            },
            round: { type: 'integer', description: 'Replays of the job after an earlier outcome was written: each later outcome is its own AuditEvent' },
            outcome: { enum: ['success', 'failed', 'refused'], description: 'What the AuditEvent records, once known' },
            at: { type: 'string', format: 'date-time', description: 'When the outcome happened' },
            reason: { type: 'string', description: 'Why it failed or was refused (no personal data)' },
            attempts: { type: 'integer', description: 'Write attempts of the AuditEvent' },
            writtenAt: { type: 'string', format: 'date-time' },
            error: { type: 'string', description: 'Last failure of the write (no personal data)' },
            httpStatus: { type: 'integer' },
          },
        },
        CoordinationEntry: {
          type: 'object',
          required: ['episode', 'target', 'readAt', 'overdue', 'requests'],
          properties: {
            episode: { type: 'string', description: '{clinic org number}/{episodeId}' },
            target: { type: 'string', description: '`primary.<org number>`' },
            readAt: { type: 'string', format: 'date-time', description: "When the requests were last read from the primary team's server" },
            overdue: { type: 'integer', description: 'How many of the requests are overdue' },
            requests: {
              type: 'array',
              items: {
                type: 'object',
                required: ['occasion', 'identifier', 'status', 'overdue'],
                properties: {
                  occasion: {
                    type: 'string',
                    description: "`guidance-started`, `risk-follow-up` or `guidance-ended` (the bridge's CodeSystem coordination-request)",
                  },
                  identifier: { type: 'string', description: "The request's business identifier value, `{episodeId}/coordination-request/…`" },
                  status: {
                    type: 'string',
                    description: 'Task.status on the primary server (https://hl7.org/fhir/R4/valueset-task-status.html), or `not-found`',
                  },
                  priority: { enum: ['routine', 'urgent', 'asap', 'stat'] },
                  due: { type: 'string', description: 'Task.restriction.period.end (a date, or a date-time)' },
                  authoredOn: { type: 'string' },
                  lastModified: { type: 'string', format: 'date-time', description: 'Task.meta.lastUpdated there' },
                  overdue: { type: 'boolean', description: 'Due date passed and still requested, received, accepted or in-progress' },
                },
              },
            },
          },
        },
        Episode: episode,
        OperationOutcome: {
          type: 'object',
          description: 'FHIR R4 OperationOutcome (https://hl7.org/fhir/R4/operationoutcome.html)',
          required: ['resourceType', 'issue'],
          properties: {
            resourceType: { const: 'OperationOutcome' },
            issue: {
              type: 'array',
              items: {
                type: 'object',
                required: ['severity', 'code'],
                properties: {
                  severity: { enum: ['fatal', 'error', 'warning', 'information'] },
                  code: { type: 'string' },
                  details: { type: 'object', properties: { text: { type: 'string' } } },
                  expression: { type: 'array', items: { type: 'string' }, description: 'JSON pointer into the request, and a FHIRPath where one applies' },
                },
              },
            },
          },
        },
        ExtractParameters: {
          type: 'object',
          description: 'FHIR R4 Parameters: `return` = the transaction Bundle, `issues` = OperationOutcome of warnings (SDC $extract outputs)',
          required: ['resourceType', 'parameter'],
          properties: {
            resourceType: { const: 'Parameters' },
            parameter: {
              type: 'array',
              items: { type: 'object', required: ['name', 'resource'], properties: { name: { enum: ['return', 'issues'] }, resource: { type: 'object' } } },
            },
          },
        },
        Bundle: {
          type: 'object',
          description: 'FHIR R4 Bundle of type transaction (https://hl7.org/fhir/R4/bundle.html)',
          required: ['resourceType', 'type', 'entry'],
          properties: { resourceType: { const: 'Bundle' }, type: { const: 'transaction' }, entry: { type: 'array', items: { type: 'object' } } },
        },
      },
    },
  };
  withNoStore((cached as { paths: Parameters<typeof withNoStore>[0] }).paths);
  return cached;
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch] as string);
/** Description text as HTML: escaped, with the `code` spans of the OpenAPI texts (CommonMark) as <code>. */
const inline = (s: string) => escapeHtml(s).replace(/`([^`]+)`/g, '<code>$1</code>');

/** Where `npm start` runs the Worker (scripts/start.ts: PORT, default 8787). */
export const LOCAL_BASE = 'http://127.0.0.1:8787';

/** A request example for the docs page; `{id}` stands for a job id from a PUT's Location. */
export interface RequestExample {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  contentType?: string;
  /** A file of the repository, sent as the body. */
  bodyFile?: string;
  /** Show the response headers too (-i). */
  headers?: boolean;
}

/** One example per operation, run from the repository's root against the local instance. */
export const REQUEST_EXAMPLES: Record<string, RequestExample> = {
  mapEpisode: { method: 'POST', path: '/v1/episodes/$map', contentType: 'application/json', bodyFile: 'examples/completed-mother.episode.json' },
  validate: { method: 'POST', path: '/v1/$validate', contentType: FHIR, bodyFile: 'examples/phq-9.response.json' },
  listQuestionnaires: { method: 'GET', path: '/v1/Questionnaire' },
  readQuestionnaire: { method: 'GET', path: '/v1/Questionnaire/phq-9' },
  extract: { method: 'POST', path: '/v1/QuestionnaireResponse/$extract', contentType: FHIR, bodyFile: 'examples/epds.response.json' },
  listCodeSystems: { method: 'GET', path: '/v1/CodeSystem' },
  readCodeSystem: { method: 'GET', path: '/v1/CodeSystem/marte-meo-focus-element' },
  listValueSets: { method: 'GET', path: '/v1/ValueSet' },
  readValueSet: { method: 'GET', path: '/v1/ValueSet/change-process-theme' },
  submitEpisode: {
    method: 'PUT',
    path: '/v1/episodes/VG-2026-0042',
    contentType: 'application/json',
    bodyFile: 'examples/completed-mother.episode.json',
    headers: true,
  },
  importEpisodes: { method: 'POST', path: '/v1/episodes/$import', contentType: 'application/x-ndjson', bodyFile: 'examples/episodes.ndjson', headers: true },
  listJobs: { method: 'GET', path: '/v1/jobs?status=dead,failed' },
  listCoordination: { method: 'GET', path: '/v1/coordination?overdue=true' },
  deliveryHealth: { method: 'GET', path: '/v1/health/deliveries' },
  readSummary: { method: 'GET', path: '/v1/episodes/VG-2026-0042/summary?lang=en' },
  readJob: { method: 'GET', path: '/v1/jobs/{id}' },
  replayJob: { method: 'POST', path: '/v1/jobs/{id}/$replay' },
  health: { method: 'GET', path: '/healthz' },
  openapi: { method: 'GET', path: '/openapi.json' },
  docs: { method: 'GET', path: '/docs' },
  root: { method: 'GET', path: '/', headers: true },
  jwks: { method: 'GET', path: '/.well-known/jwks.json' },
};

/** The example as a curl command line (single quotes keep `$` literal in every POSIX shell). */
export function curlLine(e: RequestExample): string {
  const parts = ['curl', e.headers ? '-si' : '-s'];
  if (e.method !== 'GET' && !e.bodyFile) parts.push('-X', e.method);
  if (e.method === 'PUT') parts.push('-X', 'PUT');
  if (e.contentType) parts.push('-H', `'content-type: ${e.contentType}'`);
  if (e.bodyFile) parts.push(e.contentType === 'application/x-ndjson' ? '--data-binary' : '--data', `@${e.bodyFile}`);
  parts.push(`'${LOCAL_BASE}${e.path.replace('{id}', '<job id>')}'`);
  return parts.join(' ');
}

/** A self-contained docs page (no external scripts: the service may run without internet). */
export function docsPage(): string {
  const doc = openApiDocument() as {
    paths: Record<
      string,
      Record<string, { operationId: string; summary: string; security?: Record<string, string[]>[]; responses: Record<string, { description: string }> }>
    >;
  };
  const needs = (security: Record<string, string[]>[] | undefined): string => {
    if (security && security.length === 0) return 'Public: no token, on any deployment.';
    const scopes = (security ?? []).flatMap((s) => s.bearer ?? []);
    return `${scopes.length ? `Needs a bearer token with ${scopes.map((s) => `<code>${escapeHtml(s)}</code>`).join(' or ')}` : 'Needs a bearer token (any valid one)'} on a deployment; none on the local instance.`;
  };
  const example = (operationId: string) => {
    const e = REQUEST_EXAMPLES[operationId];
    return e ? `<pre><code>${escapeHtml(curlLine(e))}</code></pre>` : '';
  };
  const ops = Object.entries(doc.paths)
    .flatMap(([path, methods]) =>
      Object.entries(methods).map(
        ([method, op]) =>
          `<section><h2><code>${method.toUpperCase()} ${escapeHtml(path)}</code></h2><p>${inline(op.summary)}</p><p>${needs(op.security)}</p>${example(op.operationId)}<ul>${Object.entries(
            op.responses,
          )
            // 401, 403 and the key-fetch 503 are the same on every route: explained once, above.
            .filter(([status, r]) => (authErrors as Record<string, { description: string }>)[status]?.description !== r.description)
            .map(([status, r]) => `<li><code>${status}</code> ${inline(r.description)}</li>`)
            .join('')}</ul></section>`,
      ),
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>imh-bridge API</title>
<style>body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5}code{background:#f3f3f3;padding:0 .2em}pre{background:#f3f3f3;padding:.5em;overflow-x:auto}pre code{padding:0}section{border-top:1px solid #ddd}</style>
</head><body><h1>imh-bridge API</h1><p>${inline(DESCRIPTION.intro + DESCRIPTION.behaviour)}</p>
<h2 id="authentication">Authentication</h2>
<p>A deployment authenticates every <code>/v1</code> request: send <code>Authorization: Bearer &lt;token&gt;</code>, a static API token or a SMART Backend Services access token (JWT), whichever the deployment's <code>API_AUTH</code> sets. Each route below says what it needs: writing episodes, <code>$import</code> and <code>$replay</code> need <code>system/*.write</code> (or <code>system/*.*</code>); reading jobs and coordination requests needs <code>system/*.read</code> (or <code>system/*.*</code>); the other <code>/v1</code> routes any valid token; <code>user/</code> and <code>patient/</code> scopes are not accepted. A missing or invalid token gets 401 with <code>WWW-Authenticate: Bearer</code>, a missing scope 403, both as OperationOutcome. <code>/healthz</code>, <code>/openapi.json</code>, <code>/docs</code> and <code>/.well-known/jwks.json</code> are public.</p>
<p>The local instance that <code>npm start</code> runs (<code>wrangler dev --env local</code>, at ${LOCAL_BASE}, or the port in <code>PORT</code>) is open: it needs no token, and the examples below run against it as they are, from the repository's root (they send files of <code>examples/</code>). Against a deployment, use its address and add <code>-H "Authorization: Bearer $TOKEN"</code>. <code>&lt;job id&gt;</code> is the id at the end of the <code>Location</code> a <code>PUT</code> answers.</p>
<p>Machine-readable description: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
${ops}
</body></html>`;
}
