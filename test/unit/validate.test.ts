import type { Bundle, CareTeam, Coding, Encounter, OperationOutcome, Patient, QuestionnaireResponse, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { hasErrors } from '../../src/fhir/outcome.ts';
import { NO, profileUrl, SECURITY } from '../../src/fhir/systems.ts';
import { validateFhir } from '../../src/fhir/validate.ts';
import { UNCHECKED_VALUE_SETS } from '../../src/fhir/validate-bindings.ts';
import { mapEpisode } from '../../src/index.ts';
import { resources } from '../fixtures/bundle.ts';
import { completed, example, exampleNames } from '../fixtures/examples.ts';

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
const errorsAt = (o: OperationOutcome): string[] => (o.issue ?? []).filter((i) => i.severity === 'error').flatMap((i) => i.expression ?? []);

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
        { url: profileUrl('imh-focus-element'), valueInteger: 3 },
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

  it('gives identical results when the same resource is validated twice (parsed profiles are reused, not changed)', () => {
    const { identifier: _dropped, ...noId } = parent();
    const cases: Resource[] = [
      parent(),
      { ...parent(), gender: 'sometimes', favouriteColour: 'blue' } as unknown as Resource,
      transaction([parent(), patient(), noId as Patient]),
      mapEpisode(completed()),
    ];
    for (const r of cases) {
      const before = JSON.stringify(r);
      const first = validateFhir(r);
      const second = validateFhir(r);
      expect(second).toEqual(first);
      expect(JSON.stringify(r)).toBe(before); // the input is not changed either
    }
    expect(hasErrors(validateFhir(cases[1] as Resource))).toBe(true);
  });

  it('reports a resourceType that names one of our profiles as unsupported', () => {
    const o = validateFhir({ resourceType: profileUrl('imh-parent') } as unknown as Resource);
    expect(o.issue).toEqual([expect.objectContaining({ severity: 'error', code: 'not-supported' })]);
  });
});

describe('required bindings', () => {
  /** The error issues at `expression`, as text. */
  const errorTextAt = (o: OperationOutcome, expression: string): string =>
    (o.issue ?? [])
      .filter((i) => i.severity === 'error' && i.expression?.includes(expression))
      .map((i) => i.details?.text)
      .join(' | ');

  it('rejects Patient.gender "sometimes", naming Patient.gender and the ValueSet', () => {
    const o = validateFhir({ ...patient(), gender: 'sometimes' } as unknown as Resource);
    expect(errorsAt(o)).toEqual(['Patient.gender']);
    expect(errorTextAt(o, 'Patient.gender')).toContain('http://hl7.org/fhir/ValueSet/administrative-gender');
    expect(errorTextAt(o, 'Patient.gender')).toContain('"sometimes"');
    // … also where the Patient claims a profile of ours, and inside a Bundle.
    expect(errorsAt(validateFhir({ ...parent(), gender: 'sometimes' } as unknown as Resource))).toEqual(['Patient.gender']);
    const b = transaction([patient(), { ...parent(), gender: 'sometimes' } as unknown as Patient]);
    expect(errorsAt(validateFhir(b))).toEqual(['Bundle.entry[1].resource.gender']);
  });

  // Found by the differential suite's random damage: a null in a bound CodeableConcept's codings
  // made the binding check throw instead of answering.
  it('answers, not throws, for a bound CodeableConcept whose codings hold a null or a string', () => {
    const condition = (coding: unknown[]) =>
      ({ resourceType: 'Condition', subject: { reference: 'Patient/p' }, clinicalStatus: { coding } }) as unknown as Resource;
    for (const coding of [[null], ['active'], [null, { system: 'http://example.org/not-the-value-set', code: 'x' }]]) {
      const o = validateFhir(condition(coding));
      expect(hasErrors(o)).toBe(true);
      expect(o.issue?.some((i) => i.expression?.some((x) => x.startsWith('Condition.clinicalStatus')))).toBe(true);
    }
  });

  it('checks the R4 bindings of Bundle.type, Bundle.entry.request.method and entry resources', () => {
    const b = transaction([patient(), patient()]);
    (b.entry?.[1]?.request as { method: string }).method = 'FETCH';
    const o = validateFhir(b);
    expect(errorsAt(o)).toEqual(['Bundle.entry[1].request.method']);
    expect(errorTextAt(o, 'Bundle.entry[1].request.method')).toContain('http://hl7.org/fhir/ValueSet/http-verb');
    expect(errorsAt(validateFhir({ ...b, type: 'pile' } as unknown as Bundle))).toContain('Bundle.type');

    const mapped = mapEpisode(completed());
    const i = mapped.entry?.findIndex((e) => e.resource?.resourceType === 'Encounter') ?? -1;
    (mapped.entry?.[i]?.resource as unknown as { status: string }).status = 'happening';
    const o2 = validateFhir(mapped);
    expect(errorsAt(o2)).toEqual([`Bundle.entry[${i}].resource.status`]);
    expect(errorTextAt(o2, `Bundle.entry[${i}].resource.status`)).toContain('http://hl7.org/fhir/ValueSet/encounter-status');
  });

  it('rejects an Encounter whose imh-session-attendance extension has the code "maybe"', () => {
    const encounter = resources(mapEpisode(completed()), 'Encounter')[0] as Encounter;
    const k = encounter.extension?.findIndex((x) => x.url === profileUrl('imh-session-attendance')) ?? -1;
    expect(k).toBeGreaterThanOrEqual(0);
    expect(hasErrors(validateFhir(encounter))).toBe(false);
    (encounter.extension?.[k]?.valueCoding as { code: string }).code = 'maybe';
    const o = validateFhir(encounter);
    expect(errorsAt(o)).toEqual([`Encounter.extension[${k}].valueCoding`]);
    const text = errorTextAt(o, `Encounter.extension[${k}].valueCoding`);
    expect(text).toContain('https://imh-bridge.example.no/fhir/ValueSet/session-attendance');
    expect(text).toContain('maybe');
  });

  it('accepts all three mapped contract examples with zero errors', () => {
    expect(exampleNames()).toHaveLength(3);
    for (const name of exampleNames()) {
      const o = validateFhir(mapEpisode(example(name)));
      expect([name, (o.issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal')]).toEqual([name, []]);
    }
  });

  it('leaves unchecked only the ValueSets that cannot be expanded from enumerated codes', () => {
    expect(Object.keys(UNCHECKED_VALUE_SETS).sort()).toEqual(['http://hl7.org/fhir/ValueSet/currencies', 'http://hl7.org/fhir/ValueSet/mimetypes']);
  });
});

describe('invariants that resolve() a reference inside the Bundle', () => {
  const fullUrlOf = (b: Bundle, type: string): string => {
    const e = (b.entry ?? []).find((x) => x.resource?.resourceType === type);
    if (!e?.fullUrl) throw new Error(`no ${type} entry`);
    return e.fullUrl;
  };
  const indexOf = (b: Bundle, type: string): number => (b.entry ?? []).findIndex((x) => x.resource?.resourceType === type);
  /** Error issues whose text names invariant `key`, by expression. */
  const invariantAt = (o: OperationOutcome, key: string): string[] =>
    (o.issue ?? []).filter((i) => i.severity === 'error' && i.details?.text?.includes(`${key} not met`)).flatMap((i) => i.expression ?? []);

  it('reports ctm-1 on a mapped CareTeam whose PractitionerRole member gets an onBehalfOf (urn:uuid references)', () => {
    const b = mapEpisode(completed());
    const k = indexOf(b, 'CareTeam');
    const team = b.entry?.[k]?.resource as CareTeam;
    const role = fullUrlOf(b, 'PractitionerRole');
    expect(hasErrors(validateFhir(b))).toBe(false);
    team.participant = [{ member: { reference: role }, onBehalfOf: { reference: fullUrlOf(b, 'Organization') } }];
    const o = validateFhir(b);
    expect(invariantAt(o, 'ctm-1')).toEqual([`Bundle.entry[${k}].resource.participant[0]`]);
    expect(errorsAt(o)).toEqual([`Bundle.entry[${k}].resource.participant[0]`]);
  });

  it('accepts onBehalfOf beside a member that resolves to a Practitioner entry', () => {
    const b = mapEpisode(completed());
    const team = b.entry?.[indexOf(b, 'CareTeam')]?.resource as CareTeam;
    team.participant = [{ member: { reference: fullUrlOf(b, 'Practitioner') }, onBehalfOf: { reference: fullUrlOf(b, 'Organization') } }];
    expect(errorsAt(validateFhir(b))).toEqual([]);
  });

  /** A CareTeam (no profile of ours) beside a Practitioner, a PractitionerRole and an Organization with ids. */
  const plainTeam = (member: string): Bundle => {
    const b = transaction([
      { resourceType: 'Practitioner', id: 'p-1' },
      { resourceType: 'PractitionerRole', id: 'pr-1' },
      { resourceType: 'Organization', id: 'o-1', name: 'Klinikk' },
      { resourceType: 'CareTeam', participant: [{ member: { reference: member }, onBehalfOf: { reference: 'Organization/o-1' } }] } as CareTeam,
    ]);
    (b.entry ?? []).forEach((e) => {
      e.fullUrl = `https://fhir.example.no/fhir/${e.resource?.resourceType}/${e.resource?.id ?? 'new'}`;
    });
    return b;
  };

  it('reports ctm-1 where the member is a Type/id reference to a PractitionerRole entry', () => {
    expect(invariantAt(validateFhir(plainTeam('PractitionerRole/pr-1')), 'ctm-1')).toEqual(['Bundle.entry[3].resource.participant[0]']);
    // … and where it is the entry's absolute fullUrl
    expect(invariantAt(validateFhir(plainTeam('https://fhir.example.no/fhir/PractitionerRole/pr-1')), 'ctm-1')).toEqual([
      'Bundle.entry[3].resource.participant[0]',
    ]);
  });

  it('accepts a member that is a Type/id or absolute reference to a Practitioner entry', () => {
    expect(errorsAt(validateFhir(plainTeam('Practitioner/p-1')))).toEqual([]);
    // Without the Bundle's entries at hand this reference would resolve to nothing typed.
    expect(errorsAt(validateFhir(plainTeam('https://fhir.example.no/fhir/Practitioner/p-1')))).toEqual([]);
  });

  it('reports ctm-1 in a CareTeam inside a Bundle whose member is a urn:uuid PractitionerRole (no profile claimed)', () => {
    const b = transaction([{ resourceType: 'PractitionerRole' }, { resourceType: 'Organization', name: 'Klinikk' }]);
    const [role, org] = (b.entry ?? []).map((e) => e.fullUrl as string);
    b.entry?.push({
      fullUrl: 'urn:uuid:6f1c1e3a-0d6b-5a8e-9c1f-0000000000ff',
      resource: {
        resourceType: 'CareTeam',
        participant: [{ member: { reference: role as string } }, { member: { reference: role as string }, onBehalfOf: { reference: org as string } }],
      },
      request: { method: 'POST', url: 'CareTeam' },
    });
    expect(errorsAt(validateFhir(b))).toEqual(['Bundle.entry[2].resource.participant[1]']);
  });
});

describe('choice types a profile restricts, at every depth', () => {
  const mappedResponse = (): { b: Bundle; k: number; qr: QuestionnaireResponse } => {
    const b = mapEpisode(completed());
    const k = (b.entry ?? []).findIndex((e) => (e.resource as QuestionnaireResponse | undefined)?.item?.[0]?.answer?.[0]?.valueCoding);
    return { b, k, qr: b.entry?.[k]?.resource as QuestionnaireResponse };
  };
  const answerOf = (qr: QuestionnaireResponse, i: number) => qr.item?.[i]?.answer?.[0] as Record<string, unknown>;

  it('reports a QuestionnaireResponse answer whose type imh-questionnaire-response does not allow', () => {
    const { b, k, qr } = mappedResponse();
    expect(hasErrors(validateFhir(b))).toBe(false);
    const answer = answerOf(qr, 0);
    delete answer.valueCoding;
    answer.valueBoolean = true;
    const o = validateFhir(b);
    expect(errorsAt(o)).toEqual([`Bundle.entry[${k}].resource.item[0].answer[0].valueBoolean`]);
    expect(JSON.stringify(o)).toContain('valueBoolean is not allowed here; expected valueDecimal or valueInteger or valueDate or valueString or valueCoding');
    // … also on the resource alone.
    expect(errorsAt(validateFhir(qr))).toEqual(['QuestionnaireResponse.item[0].answer[0].valueBoolean']);
  });

  it('applies the restriction to nested items (item.item and answer.item)', () => {
    const { b, k, qr } = mappedResponse();
    qr.item?.push({
      linkId: 'group',
      item: [
        { linkId: 'g1', answer: [{ valueInteger: 2 }] },
        { linkId: 'g2', answer: [{ valueBoolean: true }] },
      ],
    });
    const n = (qr.item?.length ?? 0) - 1;
    answerOf(qr, 1).item = [{ linkId: 'a1', answer: [{ valueTime: '10:00:00' }] }];
    expect(errorsAt(validateFhir(b)).sort()).toEqual(
      [
        `Bundle.entry[${k}].resource.item[${n}].item[1].answer[0].valueBoolean`,
        `Bundle.entry[${k}].resource.item[1].answer[0].item[0].answer[0].valueTime`,
      ].sort(),
    );
  });

  it('accepts nested items whose answers are of an allowed type', () => {
    const { b, qr } = mappedResponse();
    const coding = answerOf(qr, 0).valueCoding;
    qr.item?.push({
      linkId: 'group',
      item: [
        { linkId: 'g1', answer: [{ valueInteger: 2 }] },
        { linkId: 'g2', answer: [{ valueCoding: coding as Coding }] },
      ],
    });
    answerOf(qr, 1).item = [{ linkId: 'a1', answer: [{ valueInteger: 1 }] }];
    expect(errorsAt(validateFhir(b))).toEqual([]);
  });

  it('leaves a QuestionnaireResponse that claims no profile of ours to base R4, which allows valueString', () => {
    const { qr } = mappedResponse();
    answerOf(qr, 0).valueString = 'x';
    delete answerOf(qr, 0).valueCoding;
    expect(errorsAt(validateFhir({ ...qr, meta: {} }))).toEqual([]);
  });
});
