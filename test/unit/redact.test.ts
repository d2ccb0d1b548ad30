/**
 * Redaction of FHIR servers' error texts before they are kept on a job: the people of the
 * refused Bundle and any national id or phone number disappear; what tells an operator what
 * went wrong (element paths, codes, dates, resource ids) stays.
 */
import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_ISSUES } from '../../src/fhir/outcome.ts';
import { mapEpisode } from '../../src/index.ts';
import { clearCapabilityCache } from '../../src/sync/apply.ts';
import { FhirTargetClient } from '../../src/sync/client.ts';
import { attemptJob, submitEpisode } from '../../src/sync/deliver.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { personalTerms, REDACTED, redactOutcome, redactText } from '../../src/sync/redact.ts';
import { capabilityStatement } from '../fixtures/capability.ts';
import { completed } from '../fixtures/examples.ts';

const bundle = mapEpisode(completed()) as Bundle;
// The synthetic people of the completed example.
const secrets = ['02839440092', '11902550331', 'Kari', 'Nordmann', 'Emil', 'Ingrid', 'Haugen', '+47 400 00 000', '1994-03-02'];

describe('redactText', () => {
  it('redacts national ids and phone numbers without a Bundle', () => {
    expect(redactText('identifier 02839440092 exists')).toBe(`identifier ${REDACTED} exists`);
    expect(redactText('fnr 028394 40092 and 028394-40092')).toBe(`fnr ${REDACTED} and ${REDACTED}`);
    expect(redactText('Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|11902550331')).toBe(`Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|${REDACTED}`);
    expect(redactText('call +47 400 00 000 or +4740000000 or 400 00 000 or 40 00 00 00 or 40000000')).toBe(
      `call ${REDACTED} or ${REDACTED} or ${REDACTED} or ${REDACTED} or ${REDACTED}`,
    );
  });

  it('keeps what is not personal: dates, times, versions, UUIDs, OIDs, counts, HTTP codes', () => {
    const text =
      'HTTP 422 at 2026-01-12T09:00:00+01:00: Observation/0f8c2a4e-12345678-9abc version 3.1.0 (urn:oid:2.16.578.1.12.4.1.4.1) 20 errors, max 1000000';
    expect(redactText(text)).toBe(text);
  });

  it("redacts the Bundle's people as whole words in any case, and nothing inside other words", () => {
    const terms = personalTerms(bundle);
    for (const s of ['Kari', 'Nordmann', 'Emil', 'Ingrid', 'Haugen', '02839440092', '+47 400 00 000', '1994-03-02']) expect(terms).toContain(s);
    expect(redactText('Patient NORDMANN, Kari: duplicate; born 1994-03-02', terms)).toBe(`Patient ${REDACTED}, ${REDACTED}: duplicate; born ${REDACTED}`);
    // Whole words only: "Karina" and "Emilie" are not the people of this Bundle.
    expect(redactText('Karina, Emilie', terms)).toBe('Karina, Emilie');
    // Regular-expression characters in a name are taken literally.
    expect(redactText('a.b axb (x) [y]', ['a.b', '(x)'])).toBe(`${REDACTED} axb ${REDACTED} [y]`);
  });

  it('takes names of every person type and splits compound names', () => {
    const b: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'RelatedPerson', patient: { reference: 'Patient/p' }, name: [{ given: ['Kari Anne'], family: 'Berg-Olsen' }] } },
        { resource: { resourceType: 'Practitioner', name: [{ text: 'Dr Ås' }], telecom: [{ system: 'phone', value: '22 33 44 55' }] } },
        { resource: { resourceType: 'Organization', name: 'Bergen Klinikk' } },
      ],
    };
    const t = personalTerms(b);
    expect(redactText('Anne Berg and Olsen met Ås at Bergen Klinikk; 22 33 44 55', t)).toBe(
      `${REDACTED} ${REDACTED} and ${REDACTED} met ${REDACTED} at Bergen Klinikk; ${REDACTED}`,
    );
  });
});

describe('redactOutcome', () => {
  const serverOutcome = (): OperationOutcome => ({
    resourceType: 'OperationOutcome',
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Nordmann, Kari (02839440092)</div>' },
    issue: [
      {
        severity: 'error',
        code: 'duplicate',
        details: { text: 'Patient with identifier 11902550331 (Emil Nordmann) already exists' },
        diagnostics: 'RelatedPerson Kari Nordmann, phone +47 400 00 000, born 1994-03-02; practitioner Ingrid Haugen',
        expression: ["Patient.name.where(family='Nordmann')"],
      },
      { severity: 'warning', code: 'processing', diagnostics: 'Observation/abc-123 ok at 2026-01-12' },
    ],
  });

  it('leaves no name, national id, phone number or birth date of the Bundle, and keeps the rest', () => {
    const o = redactOutcome(serverOutcome(), bundle);
    const text = JSON.stringify(o);
    for (const s of secrets) expect(text).not.toContain(s);
    expect(o.issue?.[0]?.code).toBe('duplicate');
    expect(o.issue?.[0]?.details?.text).toBe(`Patient with identifier ${REDACTED} (${REDACTED} ${REDACTED}) already exists`);
    expect(o.issue?.[0]?.expression).toEqual([`Patient.name.where(family='${REDACTED}')`]);
    expect(o.issue?.[1]?.diagnostics).toBe('Observation/abc-123 ok at 2026-01-12');
  });

  it('is pure: the outcome given is not changed', () => {
    const before = serverOutcome();
    redactOutcome(before, bundle);
    expect(before).toEqual(serverOutcome());
  });

  it('keeps at most MAX_ISSUES issues, and drops what is nested too deep to walk', () => {
    const many: OperationOutcome = {
      resourceType: 'OperationOutcome',
      issue: Array.from({ length: 5000 }, (_, i) => ({ severity: 'error' as const, code: 'invalid' as const, diagnostics: `entry ${i}: 02839440092` })),
    };
    const o = redactOutcome(many, bundle);
    expect(o.issue).toHaveLength(MAX_ISSUES + 1);
    expect(o.issue?.[MAX_ISSUES]?.details?.text).toMatch(/^4900 more issues/);
    expect(JSON.stringify(o)).not.toContain('02839440092');
    let deep: Record<string, unknown> = { text: '02839440092' };
    for (let i = 0; i < 100; i++) deep = { x: deep };
    const d = redactOutcome({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', extension: [deep] } as never] }, bundle);
    expect(JSON.stringify(d)).not.toContain('02839440092');
  });
});

describe("a refused delivery keeps the server's outcome redacted on the job", () => {
  const BASE = 'http://fhir.test/fhir';
  const server = setupServer();
  beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
  afterAll(() => server.close());

  it('stores no national id, name or phone number the server quoted', async () => {
    clearCapabilityCache();
    const quoting: OperationOutcome = {
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'business-rule',
          diagnostics: 'RelatedPerson Kari Nordmann (02839440092, +47 400 00 000) conflicts with Patient Emil 11902550331',
        },
      ],
    };
    server.use(
      http.get(`${BASE}/metadata`, () => HttpResponse.json(capabilityStatement())),
      http.post(BASE, () => HttpResponse.json(quoting, { status: 422 })),
    );
    let n = 0;
    const store = new MemoryStore();
    const deps = {
      store,
      clientFor: () => new FhirTargetClient(BASE, { fetch: (...a: Parameters<typeof fetch>) => fetch(...a), timeoutMs: 500 }),
      now: () => Date.parse('2026-11-25T12:00:00Z'),
      random: () => 0.5,
      newId: () => `job-r${++n}`,
    };
    const job = await submitEpisode(completed(), deps);
    const r = await attemptJob(job.id, deps);
    expect(r?.job.status).toBe('failed');
    const kept = (await store.getJob(job.id))?.targets.clinic;
    expect(kept?.httpStatus).toBe(422);
    expect(kept?.outcome?.issue?.[0]?.diagnostics).toBe(
      `RelatedPerson ${REDACTED} ${REDACTED} (${REDACTED}, ${REDACTED}) conflicts with Patient ${REDACTED} ${REDACTED}`,
    );
    for (const s of secrets) expect(JSON.stringify(kept)).not.toContain(s);
  });
});
