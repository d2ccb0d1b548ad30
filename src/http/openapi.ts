/**
 * OpenAPI 3.1 description of the HTTP API, generated from the same zod schemas that
 * validate requests (OpenAPI 3.1 uses JSON Schema 2020-12, which zod emits directly).
 */
import { z } from 'zod';
import { EpisodeSchema } from '../domain/episode.ts';
import { MAX_BODY_BYTES } from './middleware.ts';

const FHIR = 'application/fhir+json';

const outcomeRef = { $ref: '#/components/schemas/OperationOutcome' };
const errorResponse = (description: string) => ({ description, content: { [FHIR]: { schema: outcomeRef } } });

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
      description:
        'Maps Marte Meo video-guidance episodes (episode format 1.0) to FHIR R4 and validates FHIR resources against R4 and the bridge\'s profiles. ' +
        `Request bodies are JSON of at most ${MAX_BODY_BYTES} bytes. Every error is a FHIR OperationOutcome whose issues name the offending field by JSON pointer in \`expression\`. ` +
        'Cross-field rules of the format (status-dependent fields, unique ids, clip references, consent recipient) are checked as well as the schema below.',
    },
    paths: {
      '/v1/episodes/$map': {
        post: {
          operationId: 'mapEpisode',
          summary: 'Validate an episode and map it to a FHIR R4 transaction Bundle',
          requestBody: jsonBody({ $ref: '#/components/schemas/Episode' }),
          responses: {
            '200': { description: 'Deterministic transaction Bundle (conditional writes on business identifiers)', content: { [FHIR]: { schema: { $ref: '#/components/schemas/Bundle' } } } },
            '400': errorResponse('The episode is not valid; every problem is listed'),
            '413': errorResponse('Body larger than 1 MiB'),
            '415': errorResponse('Body is not JSON'),
          },
        },
      },
      '/v1/$validate': {
        post: {
          operationId: 'validate',
          summary: 'Validate a FHIR R4 resource or Bundle against R4 and the bridge\'s profiles',
          requestBody: jsonBody({ type: 'object', required: ['resourceType'], properties: { resourceType: { type: 'string' } } }),
          responses: {
            '200': { description: 'Validation outcome (errors mean the resource is not valid)', content: { [FHIR]: { schema: outcomeRef } } },
            '400': errorResponse('Body is not a FHIR resource'),
            '413': errorResponse('Body larger than 1 MiB'),
            '415': errorResponse('Body is not JSON'),
          },
        },
      },
      '/v1/Questionnaire': {
        get: {
          operationId: 'listQuestionnaires',
          summary: 'The published Questionnaires (EPDS, PHQ-9, GAD-7, PRFQ, PDI-RF, Marte Meo session review) as a searchset Bundle',
          responses: { '200': { description: 'Bundle of Questionnaires (canonical URL and version stable)', content: { [FHIR]: { schema: { type: 'object' } } } } },
        },
      },
      '/v1/Questionnaire/{id}': {
        get: {
          operationId: 'readQuestionnaire',
          summary: 'One published Questionnaire',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'The Questionnaire', content: { [FHIR]: { schema: { type: 'object' } } } }, '404': errorResponse('No such Questionnaire') },
        },
      },
      '/v1/QuestionnaireResponse/$extract': {
        post: {
          operationId: 'extract',
          summary: 'SDC extraction: a QuestionnaireResponse to one of the bridge\'s Questionnaires → transaction Bundle of the response, its score Observations and any self-harm Flag',
          requestBody: jsonBody({ type: 'object', required: ['resourceType'], properties: { resourceType: { const: 'QuestionnaireResponse' } } }),
          responses: {
            '200': { description: 'Transaction Bundle, identical to what the episode path writes for the same answers', content: { [FHIR]: { schema: { $ref: '#/components/schemas/Bundle' } } } },
            '400': errorResponse('The response does not fit its Questionnaire; expressions point into the response'),
            '413': errorResponse('Body larger than 1 MiB'),
            '415': errorResponse('Body is not JSON'),
          },
        },
      },
      '/healthz': { get: { operationId: 'health', summary: 'Liveness', responses: { '200': { description: 'Service is up' } } } },
      '/openapi.json': { get: { operationId: 'openapi', summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1 document' } } } },
    },
    components: {
      schemas: {
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
        Bundle: {
          type: 'object',
          description: 'FHIR R4 Bundle of type transaction (https://hl7.org/fhir/R4/bundle.html)',
          required: ['resourceType', 'type', 'entry'],
          properties: { resourceType: { const: 'Bundle' }, type: { const: 'transaction' }, entry: { type: 'array', items: { type: 'object' } } },
        },
      },
    },
  };
  return cached;
}

const escape = (s: string) => s.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch] as string);

/** A self-contained docs page (no external scripts: the service may run without internet). */
export function docsPage(): string {
  const doc = openApiDocument() as { info: { title: string; description: string }; paths: Record<string, Record<string, { summary: string; responses: Record<string, { description: string }> }>> };
  const ops = Object.entries(doc.paths)
    .flatMap(([path, methods]) =>
      Object.entries(methods).map(
        ([method, op]) =>
          `<section><h2><code>${method.toUpperCase()} ${escape(path)}</code></h2><p>${escape(op.summary)}</p><ul>${Object.entries(op.responses)
            .map(([status, r]) => `<li><code>${status}</code> ${escape(r.description)}</li>`)
            .join('')}</ul></section>`,
      ),
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>imh-bridge API</title>
<style>body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5}code{background:#f3f3f3;padding:0 .2em}section{border-top:1px solid #ddd}</style>
</head><body><h1>imh-bridge API</h1><p>${escape(doc.info.description)}</p>
<p>Machine-readable description: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
${ops}
</body></html>`;
}
