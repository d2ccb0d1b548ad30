/**
 * Write semantics per resource family (src/fhir/write-semantics.ts) and the JSON Patch
 * that supplements existing master data (additionsPatch in src/sync/apply.ts): it may only
 * add, never remove or replace what the server holds.
 */
import { applyPatch, deepClone } from '@medplum/core';
import type { Patient, PractitionerRole, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { MASTER_DATA_TYPES, writeRequest } from '../../src/fhir/write-semantics.ts';
import { mapEpisode } from '../../src/index.ts';
import { type AppliedEntry, additionsPatch, countWrites, entryKey, RETRACTABLE_TYPES } from '../../src/sync/apply.ts';
import { completed } from '../fixtures/examples.ts';

const FNR = 'urn:oid:2.16.578.1.12.4.1.4.1';
const EHR = 'urn:example:hospital-ehr';

describe('entry form per resource family', () => {
  it('writes master data as conditional create and episode-owned resources as conditional update', () => {
    const id = { system: FNR, value: '21909120095' };
    expect(writeRequest('Patient', id)).toEqual({ method: 'POST', url: 'Patient', ifNoneExist: `identifier=${encodeURIComponent(FNR)}|21909120095` });
    expect(writeRequest('Encounter', { system: 'urn:x', value: 'VG-1/S1' })).toEqual({ method: 'PUT', url: 'Encounter?identifier=urn%3Ax|VG-1%2FS1' });
    for (const t of ['Practitioner', 'PractitionerRole', 'Organization', 'RelatedPerson']) expect(writeRequest(t, id).method).toBe('POST');
    for (const t of ['Observation', 'QuestionnaireResponse', 'Goal', 'EpisodeOfCare', 'CareTeam', 'Consent', 'Condition', 'Flag'])
      expect(writeRequest(t, id).method).toBe('PUT');
  });

  it('gives every master-data entry of a mapped episode the create-if-absent form, keyed as the conditional update was', () => {
    const b = mapEpisode(completed());
    const masters = (b.entry ?? []).filter((e) => MASTER_DATA_TYPES.has(e.resource?.resourceType as string));
    expect(new Set(masters.map((e) => e.resource?.resourceType))).toEqual(MASTER_DATA_TYPES);
    for (const e of masters) {
      expect(e.request).toMatchObject({ method: 'POST', url: e.resource?.resourceType });
      // The ledger key is the same URL the conditional PUT used, so older ledgers still match.
      expect(entryKey(e)).toBe(`${e.resource?.resourceType}?${e.request?.ifNoneExist}`);
    }
  });

  it('never retracts master data', () => {
    for (const t of MASTER_DATA_TYPES) expect(RETRACTABLE_TYPES.has(t)).toBe(false);
  });
});

describe('additionsPatch', () => {
  const hospital: Patient = {
    resourceType: 'Patient',
    id: 'p1',
    meta: { versionId: '3' },
    identifier: [
      { system: EHR, value: 'H-77' },
      { system: FNR, value: '21909120095' },
    ],
    name: [{ family: 'Hospitalname', given: ['Kari'] }],
    address: [{ city: 'Bergen' }],
    generalPractitioner: [{ reference: 'Practitioner/gp1' }],
    active: false,
  };
  const bridge: Patient = {
    resourceType: 'Patient',
    meta: { profile: ['https://imh-bridge.example.no/fhir/StructureDefinition/imh-parent'] },
    identifier: [{ use: 'official', system: FNR, value: '21909120095' }],
    active: true,
    name: [{ use: 'official', family: 'Bridgename', given: ['Kari'] }],
    telecom: [{ system: 'phone', value: '+4700000000' }],
    gender: 'female',
    birthDate: '1991-10-21',
  };

  it('adds only the elements the server lacks entirely, and leaves everything it has as it was', () => {
    const ops = additionsPatch(hospital, bridge);
    expect(ops).toEqual([
      { op: 'add', path: '/telecom', value: bridge.telecom },
      { op: 'add', path: '/gender', value: 'female' },
      { op: 'add', path: '/birthDate', value: '1991-10-21' },
    ]);
    const patched = deepClone(hospital);
    expect(applyPatch(patched, ops).filter(Boolean)).toEqual([]);
    // Every element the hospital had is there, unchanged (name, address, GP, identifiers, active).
    for (const [k, v] of Object.entries(hospital)) expect((patched as unknown as Record<string, unknown>)[k], k).toEqual(v);
  });

  it('appends an identifier of a system the server has none of, never one whose system it has', () => {
    const org = {
      resourceType: 'Organization',
      id: 'o1',
      identifier: [
        { system: 'urn:org', value: '974557746' },
        { system: 'urn:resh', value: 'SERVER' },
      ],
    } as Resource;
    const mine = {
      resourceType: 'Organization',
      identifier: [
        { system: 'urn:org', value: '974557746' },
        { system: 'urn:resh', value: 'MINE' },
        { system: 'urn:other', value: 'X' },
      ],
    } as Resource;
    expect(additionsPatch(org, mine)).toEqual([{ op: 'add', path: '/identifier/-', value: { system: 'urn:other', value: 'X' } }]);
    const bare = { resourceType: 'Organization', id: 'o2' } as Resource;
    expect(additionsPatch(bare, mine)[0]).toEqual({ op: 'add', path: '/identifier', value: (mine as { identifier: unknown }).identifier });
  });

  it('uses only add ops, so no patch it builds can remove or replace anything', () => {
    const cases: [Resource, Resource][] = [
      [hospital, bridge],
      [{ resourceType: 'Patient', id: 'x' }, bridge],
      [{ ...bridge, id: 'y', identifier: [] }, bridge],
    ];
    for (const [have, want] of cases) {
      const ops = additionsPatch(have, want);
      expect(ops.every((o) => o.op === 'add')).toBe(true);
      // Each op creates an absent member or appends to an array.
      for (const o of ops) {
        if (o.path.endsWith('/-')) continue;
        expect((have as unknown as Record<string, unknown>)[o.path.slice(1)]).toBeUndefined();
      }
    }
    // Nothing to add to a resource that has it all.
    expect(additionsPatch({ ...bridge, id: 'z' }, bridge)).toEqual([]);
  });

  it('rewrites references to entries of the bundle into server references, and leaves out what it cannot resolve', () => {
    const role: PractitionerRole = { resourceType: 'PractitionerRole', id: 'r1', identifier: [{ system: 'urn:role', value: 'A' }] };
    const desired: PractitionerRole = {
      resourceType: 'PractitionerRole',
      identifier: [{ system: 'urn:role', value: 'A' }],
      practitioner: { reference: 'urn:uuid:11111111-1111-5111-8111-111111111111' },
      organization: { reference: 'urn:uuid:22222222-2222-5222-8222-222222222222' },
      code: [{ text: 'psychologist' }],
    };
    const ops = additionsPatch(role, desired, (u) => (u.startsWith('urn:uuid:1111') ? 'Practitioner/p9' : undefined));
    expect(ops).toEqual([
      { op: 'add', path: '/practitioner', value: { reference: 'Practitioner/p9' } },
      { op: 'add', path: '/code', value: [{ text: 'psychologist' }] },
    ]);
  });
});

describe('countWrites', () => {
  const entry = (over: Partial<AppliedEntry>): AppliedEntry => ({
    key: 'K',
    type: 'Goal',
    id: '1',
    versionId: '2',
    fullUrl: 'urn:uuid:x',
    status: 200,
    createOnly: false,
    ...over,
  });
  it('counts 201 as created, matched master data as unchanged unless supplemented, and an update at the ledger version as unchanged', () => {
    const counts = countWrites(
      [
        entry({ key: 'a', status: 201 }),
        entry({ key: 'b', status: 201, createOnly: true }),
        entry({ key: 'c', createOnly: true }),
        entry({ key: 'd', createOnly: true, supplemented: true }),
        entry({ key: 'e', versionId: '5' }),
        entry({ key: 'f', versionId: '6' }),
        entry({ key: 'g', versionId: undefined }),
      ],
      new Map([
        ['e', '5'],
        ['f', '5'],
      ]),
    );
    expect(counts).toEqual({ created: 2, updated: 3, unchanged: 2 });
  });
});
