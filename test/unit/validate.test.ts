import { describe, expect, it } from 'vitest';
import type { Bundle, OperationOutcome, Patient, Resource } from '@medplum/fhirtypes';
import { validateFhir } from '../../src/fhir/validate.ts';
import { hasErrors } from '../../src/fhir/outcome.ts';
import { NO, SECURITY, profileUrl } from '../../src/fhir/systems.ts';

const security = [SECURITY.restricted, SECURITY.psychiatry].map((c) => ({ ...c }));

const patient = (): Patient => ({
  resourceType: 'Patient',
  gender: 'female',
  birthDate: '1991-03-14',
});

const parent = (): Patient => ({
  resourceType: 'Patient',
  meta: { profile: [profileUrl('imh-parent')], security },
  identifier: [{ system: NO.fnr, value: '14839112345' }],
  name: [{ use: 'official', family: 'Ødegård', given: ['Åse'] }],
  gender: 'female',
  birthDate: '1991-03-14',
});

/** Expressions of the error issues. */
const errorsAt = (o: OperationOutcome): string[] =>
  (o.issue ?? []).filter((i) => i.severity === 'error').flatMap((i) => i.expression ?? []);

const transaction = (resources: Resource[]): Bundle => ({
  resourceType: 'Bundle',
  type: 'transaction',
  entry: resources.map((resource, i) => ({
    fullUrl: `urn:uuid:6f1c1e3a-0d6b-5a8e-9c1f-00000000000${i}`,
    resource,
    request: { method: 'PUT', url: `${resource.resourceType}?identifier=urn:example|${i}` },
  })),
});

describe('validateFhir', () => {
  it('accepts a minimal valid Patient with an informational All OK', () => {
    const o = validateFhir(patient());
    expect(o.resourceType).toBe('OperationOutcome');
    expect(hasErrors(o)).toBe(false);
    expect(o.issue).toEqual([expect.objectContaining({ severity: 'information', details: { text: 'All OK' } })]);
  });

  it('accepts a Patient that satisfies imh-parent', () => {
    expect(hasErrors(validateFhir(parent()))).toBe(false);
  });

  it('rejects an unknown element and names it', () => {
    const o = validateFhir({ ...patient(), favouriteColour: 'blue' } as unknown as Resource);
    expect(hasErrors(o)).toBe(true);
    expect(errorsAt(o)).toContain('Patient.favouriteColour');
  });

  it('rejects a value of the wrong type and names it', () => {
    const o = validateFhir({ ...patient(), birthDate: 19910314 } as unknown as Resource);
    expect(errorsAt(o)).toContain('Patient.birthDate');
    const o2 = validateFhir({ ...patient(), name: { family: 'Ødegård' } } as unknown as Resource);
    expect(errorsAt(o2)).toContain('Patient.name');
  });

  it('rejects an imh-parent without identifier, naming identifier', () => {
    const { identifier: _dropped, ...rest } = parent();
    const o = validateFhir(rest as Patient);
    expect(hasErrors(o)).toBe(true);
    expect(errorsAt(o)).toContain('Patient.identifier');
  });

  it('rejects an imh-parent whose identifier is not a national id, naming the identifier', () => {
    const p = { ...parent(), identifier: [{ system: 'https://imh-bridge.example.no/fhir/sid/974557746/infant', value: 'x' }] };
    const o = validateFhir(p);
    expect(hasErrors(o)).toBe(true);
    expect(errorsAt(o).some((e) => e.startsWith('Patient.identifier'))).toBe(true);
    expect(JSON.stringify(o)).toContain('imh-national-id');
  });

  it('does not apply our profiles to a resource that does not claim them', () => {
    const { identifier: _dropped, ...rest } = parent();
    expect(hasErrors(validateFhir({ ...rest, meta: {} } as Patient))).toBe(false);
  });

  it('reports an unknown profile of ours', () => {
    const p = { ...parent(), meta: { profile: [profileUrl('imh-nope')], security } };
    expect(errorsAt(validateFhir(p))).toEqual(['Patient.meta.profile[0]']);
  });

  it('checks our extensions against their definitions (sha256 pattern, value type)', () => {
    const p = {
      ...parent(),
      extension: [
        { url: profileUrl('imh-attachment-sha256'), valueString: 'ABC' },
        { url: profileUrl('imh-session-note'), valueInteger: 3 },
      ],
    } as unknown as Resource;
    const at = errorsAt(validateFhir(p));
    expect(at.some((e) => e.startsWith('Patient.extension[0]'))).toBe(true);
    expect(at).toContain('Patient.extension[1].valueInteger');
  });

  it('names the bad entry of a Bundle as Bundle.entry[i].resource…', () => {
    const { identifier: _dropped, ...noId } = parent();
    const bad = { ...patient(), birthDate: 'not a date' } as Patient;
    const o = validateFhir(transaction([parent(), patient(), bad, noId as Patient]));
    expect(hasErrors(o)).toBe(true);
    const at = errorsAt(o);
    expect(at).toContain('Bundle.entry[2].resource.birthDate');
    expect(at).toContain('Bundle.entry[3].resource.identifier');
    expect(at.every((e) => e.startsWith('Bundle.entry[2].') || e.startsWith('Bundle.entry[3].'))).toBe(true);
  });

  it('accepts a valid transaction Bundle and resolves urn:uuid references between entries', () => {
    const b = transaction([parent(), patient()]);
    (b.entry?.[1]?.resource as Patient).link = [{ other: { reference: b.entry?.[0]?.fullUrl as string }, type: 'seealso' }];
    expect(validateFhir(b).issue).toEqual([expect.objectContaining({ severity: 'information' })]);
  });

  it('reports a urn:uuid reference that no entry of a transaction resolves', () => {
    const b = transaction([patient()]);
    (b.entry?.[0]?.resource as Patient).link = [{ other: { reference: 'urn:uuid:00000000-0000-5000-8000-000000000000' }, type: 'seealso' }];
    expect(errorsAt(validateFhir(b))).toEqual(['Bundle.entry[0].resource.link[0].other.reference']);
  });

  it('reports an entry of a resource type outside the definition subset instead of throwing', () => {
    const o = validateFhir(transaction([{ resourceType: 'Medication' } as Resource]));
    expect(errorsAt(o)).toEqual(['Bundle.entry[0].resource']);
  });
});
