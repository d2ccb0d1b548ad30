/**
 * The send path validates what the bridge built before a job is stored, and does not validate a
 * Bundle it already knows is valid (same mapping version, same content hash).
 */
import type { Bundle } from '@medplum/fhirtypes';
import { beforeEach, describe, expect, it } from 'vitest';
import type { IdentityOptions } from '../../src/fhir/identity.ts';
import { hasErrors, OperationOutcomeError } from '../../src/fhir/outcome.ts';
import { validateFhir } from '../../src/fhir/validate.ts';
import { validateFast } from '../../src/fhir/validate-fast.ts';
import { MAPPING_VERSION, mapEpisode } from '../../src/mapping/bundle.ts';
import { submitEpisode } from '../../src/sync/deliver.ts';
import { ensureMappedValid, resetSendValidation, sendValidationStats } from '../../src/sync/mapped-validity.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { completed, example, exampleNames } from '../fixtures/examples.ts';
import { r4InvariantFailures, r4SchemaErrors } from '../fixtures/r4-independent.ts';

/** A deployment's own identity settings, unlike the development defaults. */
const DEPLOYMENT: IdentityOptions = { namespace: 'https://fhir.clinic.example/sid', secret: 'a-synthetic-test-secret-0123456789abcdef' };

beforeEach(() => resetSendValidation());

describe('what a deployment maps is valid', () => {
  // The bridge's Device once fixed the development namespace in its profile: every Bundle of a
  // deployment with its own IDENTIFIER_NAMESPACE failed validation.
  it.each(exampleNames())('%s, mapped with a deployment’s own identifier namespace', async (name) => {
    const bundle = mapEpisode(example(name), { identity: DEPLOYMENT });
    expect(validateFhir(bundle).issue.filter((i) => i.severity === 'error')).toEqual([]);
    expect(hasErrors(await validateFast(bundle))).toBe(false);
    // And by parties the bridge did not write: the official R4 JSON Schema and HL7's fhirpath.js.
    expect(r4SchemaErrors(bundle as never)).toEqual([]);
    expect(r4InvariantFailures(bundle as never)).toEqual([]);
  });
});

describe('the send path', () => {
  const deps = () => ({ store: new MemoryStore(), now: () => Date.parse('2026-11-30T12:00:00Z'), newId: () => crypto.randomUUID() });

  it('validates a new Bundle once and skips it when the same content comes again', async () => {
    const d = deps();
    await submitEpisode(completed(), d, { identity: DEPLOYMENT });
    const first = sendValidationStats.validated;
    expect(first).toBeGreaterThan(0);
    expect(sendValidationStats.skipped).toBe(0);

    await submitEpisode(completed(), d, { identity: DEPLOYMENT });
    expect(sendValidationStats.validated).toBe(first);
    expect(sendValidationStats.skipped).toBe(first);

    const changed = completed();
    changed.sessions[0].minutes += 1;
    await submitEpisode(changed, d, { identity: DEPLOYMENT });
    expect(sendValidationStats.validated).toBeGreaterThan(first);
  });

  it('refuses a Bundle that fails validation with a 500 naming where, never the values, and remembers nothing', async () => {
    const bundle = mapEpisode(completed(), { identity: DEPLOYMENT }) as Bundle;
    const patient = bundle.entry?.find((e) => e.resource?.resourceType === 'Patient')?.resource as { gender?: string; name?: { family?: string }[] };
    const family = patient.name?.[0]?.family as string;
    // A planted defect carrying patient data: a gender outside its required binding.
    patient.gender = `not-a-gender ${family}`;
    let error: unknown;
    try {
      await ensureMappedValid(bundle, MAPPING_VERSION, 'hash-of-the-defective-bundle');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OperationOutcomeError);
    const refusal = error as OperationOutcomeError;
    expect(refusal.status).toBe(500);
    expect(refusal.outcome.issue[0]?.details?.text).toMatch(/defect of the bridge/);
    expect(refusal.outcome.issue.slice(1).some((i) => i.expression?.some((x) => /gender/.test(x)))).toBe(true);
    expect(JSON.stringify(refusal.outcome)).not.toContain(family);
    expect(refusal.message).not.toContain(family);
    // Not remembered as valid: asked again, it is validated (and refused) again.
    await expect(ensureMappedValid(bundle, MAPPING_VERSION, 'hash-of-the-defective-bundle')).rejects.toBeInstanceOf(OperationOutcomeError);
    expect(sendValidationStats).toMatchObject({ validated: 2, skipped: 0 });
  });
});
