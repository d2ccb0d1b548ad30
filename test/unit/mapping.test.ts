import type { Bundle } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { OperationOutcomeError } from '../../src/fhir/outcome.ts';
import { MASTER_DATA_TYPES } from '../../src/fhir/write-semantics.ts';
import { mapEpisode } from '../../src/index.ts';
import { byIdentifier, countByType, ext, resolve, resources } from '../fixtures/bundle.ts';
import { activeFather, completed, example, exampleNames, plannedMinimal } from '../fixtures/examples.ts';

const FNR = 'urn:oid:2.16.578.1.12.4.1.4.1';
const HPR = 'urn:oid:2.16.578.1.12.4.1.4.4';
const ORG = 'urn:oid:2.16.578.1.12.4.1.2.101';
const RESH = 'urn:oid:2.16.578.1.12.4.1.2.102';
const BASE = 'https://imh-bridge.example.no/fhir';

const mother = mapEpisode(completed());
const father = mapEpisode(activeFather());
const planned = mapEpisode(plannedMinimal());

const scoreOf = (b: Bundle, assessment: string, code: string) =>
  byIdentifier(b, 'Observation', `${b === mother ? 'VG-2026-0042' : 'VG-2026-0107'}/${assessment}/${code}`);

describe('bundle shape', () => {
  it.each(exampleNames())('%s maps to a transaction of conditional writes with urn:uuid fullUrls', (name) => {
    const b = mapEpisode(example(name));
    expect(b.resourceType).toBe('Bundle');
    expect(b.type).toBe('transaction');
    for (const e of b.entry ?? []) {
      // Keyed UUIDs (version 8) for identities; the Provenance's id is name-based (version 5).
      expect(e.fullUrl).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[58][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const r = e.resource as { resourceType: string; id?: string; meta?: { profile?: string[] } };
      if (r.resourceType === 'Provenance') expect(e.request).toEqual({ method: 'PUT', url: `Provenance/${r.id}` });
      else if (MASTER_DATA_TYPES.has(r.resourceType)) {
        // Master data: created when absent, never replaced.
        expect(e.request?.method).toBe('POST');
        expect(e.request?.url).toBe(r.resourceType);
        expect(e.request?.ifNoneExist).toMatch(/^identifier=[^|]+\|.+$/);
        expect(r.id).toBeUndefined();
      } else {
        expect(e.request?.method).toBe('PUT');
        expect(e.request?.url).toMatch(new RegExp(`^${r.resourceType}\\?identifier=[^|]+\\|.+$`));
        expect(e.request?.ifNoneExist).toBeUndefined();
        expect(r.id).toBeUndefined();
      }
      expect(r.meta?.profile?.[0]).toMatch(new RegExp(`^${BASE}/StructureDefinition/imh-`));
    }
    const urls = (b.entry ?? []).map((e) => e.fullUrl);
    expect(new Set(urls).size).toBe(urls.length);
  });

  it('gives byte-identical output for the same input', () => {
    for (const name of exampleNames()) expect(JSON.stringify(mapEpisode(example(name)))).toBe(JSON.stringify(mapEpisode(example(name))));
  });

  it('does not depend on the time zone of the machine', () => {
    const before = process.env.TZ;
    try {
      const outputs = ['UTC', 'America/New_York', 'Asia/Kolkata', 'Pacific/Chatham'].map((tz) => {
        process.env.TZ = tz;
        return JSON.stringify(mapEpisode(completed()));
      });
      expect(new Set(outputs).size).toBe(1);
    } finally {
      process.env.TZ = before;
    }
  });

  it('resolves every reference inside the bundle', () => {
    for (const b of [mother, father, planned]) {
      const fullUrls = new Set((b.entry ?? []).map((e) => e.fullUrl));
      const refs = JSON.stringify(b).match(/"reference":"([^"]+)"/g) ?? [];
      expect(refs.length).toBeGreaterThan(0);
      for (const r of refs) expect(fullUrls.has(r.slice(13, -1))).toBe(true);
    }
  });

  it('maps the completed example to exactly the expected resources', () => {
    expect(countByType(mother)).toEqual({
      Patient: 2,
      RelatedPerson: 1,
      Organization: 2,
      Practitioner: 2,
      PractitionerRole: 2,
      ServiceRequest: 1,
      Condition: 1,
      CareTeam: 1,
      EpisodeOfCare: 1,
      Consent: 1,
      Encounter: 9,
      DocumentReference: 9, // 5 clips, 4 session notes
      Procedure: 8,
      QuestionnaireResponse: 10,
      Observation: 15,
      Goal: 2,
      Device: 1,
      Provenance: 1,
    });
  });

  it('rejects bad input with the OperationOutcome and maps nothing', () => {
    const e = completed();
    e.sessions[0].minutes = -5;
    expect(() => mapEpisode(e)).toThrow(OperationOutcomeError);
  });

  it('labels clinical resources restricted and psychiatric, but not organisations and practitioners', () => {
    for (const r of resources(mother)) {
      const labels = (r.meta?.security ?? []).map((c: { code: string }) => c.code).sort();
      if (['Organization', 'Practitioner', 'PractitionerRole', 'Device'].includes(r.resourceType)) expect(labels).toEqual([]);
      else if (r.meta.profile[0].endsWith('/imh-psychotherapy-note')) expect(labels).toEqual(['PSY', 'PSYTHPN', 'V']);
      else expect(labels).toEqual(['PSY', 'R']);
    }
  });
});

describe('people and organisations', () => {
  it('maps the parent with national id, name, gender and phone', () => {
    const p = byIdentifier(mother, 'Patient', '02839440092');
    expect(p.identifier).toEqual([{ use: 'official', system: FNR, value: '02839440092' }]);
    expect(p.name).toEqual([{ use: 'official', family: 'Nordmann', given: ['Kari'] }]);
    expect(p.gender).toBe('female');
    expect(p.birthDate).toBe('1994-03-02');
    expect(p.telecom).toEqual([{ system: 'phone', value: '+47 400 00 000' }]);
  });

  it("links each infant to the parent with a RelatedPerson carrying the parent's national id", () => {
    const [related] = resources(mother, 'RelatedPerson');
    expect(related?.identifier[1]).toEqual({ use: 'official', system: FNR, value: '02839440092' });
    expect(resolve(mother, related?.patient).identifier[0].value).toBe('11902550331');
    expect(related?.relationship[0].coding.map((c: { code?: string }) => c.code)).toEqual(['MTH', 'mother']);
  });

  it("writes the parent's Patient the same from every episode of that parent", () => {
    // A second course for the same mother, about a younger sibling without national id.
    const sibling = plannedMinimal();
    sibling.parent = completed().parent;
    const a = byIdentifier(mother, 'Patient', '02839440092');
    const b = byIdentifier(mapEpisode(sibling), 'Patient', '02839440092');
    expect(b).toEqual(a);
  });

  it('keeps Norwegian letters in names', () => {
    expect(byIdentifier(father, 'Patient', '15708830116').name[0]).toEqual({ use: 'official', family: 'Åsheim', given: ['Per', 'Øyvind'] });
  });

  it('gives an infant without national id a stable local identifier and links it to the parent', () => {
    const infants = resources(planned, 'Patient').filter((p) => p.meta.profile[0].endsWith('imh-infant'));
    expect(infants).toHaveLength(1);
    const id = infants[0]?.identifier[0];
    expect(id.system).toBe(`${BASE}/sid/974557746/infant`);
    expect(id.value).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(infants[0])).not.toContain('21909120095'); // no parent id leaks into the child's record
    expect(mapEpisode(plannedMinimal()).entry).toEqual(planned.entry);
  });

  it('tells twins without national ids apart', () => {
    const e = plannedMinimal();
    e.infants.push({ ...e.infants[0], given: ['Baby 2'] });
    const ids = resources(mapEpisode(e), 'Patient')
      .filter((p) => p.meta.profile[0].endsWith('imh-infant'))
      .map((p) => p.identifier[0].value);
    expect(new Set(ids).size).toBe(2);
  });

  it('maps clinic and primary treatment organisations with org number and RESH', () => {
    expect(byIdentifier(mother, 'Organization', '974557746').identifier).toEqual([
      { system: ORG, value: '974557746' },
      { system: RESH, value: '4208761' },
    ]);
    expect(byIdentifier(mother, 'Organization', '993778125').name).toBe('DPS Bjørgvin, allmennpsykiatrisk poliklinikk');
  });

  it('maps therapist and primary contact as Practitioner + PractitionerRole, raters without duplicates', () => {
    expect(resources(mother, 'Practitioner').map((p) => p.identifier[0])).toEqual([
      { system: HPR, value: '9144889' },
      { system: HPR, value: '9876543' },
    ]);
    const role = byIdentifier(mother, 'PractitionerRole', '9876543@993778125');
    expect(resolve(mother, role.organization).identifier[0].value).toBe('993778125');
    expect(role.code[0].coding[0].code).toBe('psychiatrist');
    expect(role.telecom).toEqual([{ system: 'phone', value: '+47 55 00 00 00' }]);
  });

  it("records the primary-treatment conditions as the parent's known conditions", () => {
    const [c] = resources(mother, 'Condition');
    expect(c?.code.coding).toEqual([
      { system: 'http://hl7.org/fhir/sid/icd-10', code: 'F33.1', display: 'Recurrent depressive disorder, current episode moderate' },
    ]);
    expect(resolve(mother, c?.subject).identifier[0].value).toBe('02839440092');
    expect(c?.clinicalStatus.coding[0].code).toBe('active');
  });
});

describe('episode of care, referral, care team, consent', () => {
  it('maps the episode with period, status, referral and closing', () => {
    const eoc = byIdentifier(mother, 'EpisodeOfCare', 'VG-2026-0042');
    expect(eoc.status).toBe('finished');
    expect(eoc.period).toEqual({ start: '2026-01-12', end: '2026-05-04' });
    const referral = resolve(mother, eoc.referralRequest[0]);
    expect(referral.authoredOn).toBe('2026-01-05');
    expect(ext(referral, 'imh-referral-source')[0]?.valueCoding.code).toBe('health-visitor');
    expect(referral.reasonCode[0].text).toMatch(/^Mother describes/);
    const closing = ext(eoc, 'imh-episode-closing')[0];
    expect(closing?.extension).toEqual([
      { url: 'closedOn', valueDate: '2026-05-04' },
      { url: 'reason', valueCoding: expect.objectContaining({ code: 'completed' }) },
      { url: 'recommendation', valueString: 'Continue treatment at DPS; offer a booster review in three months.' },
    ]);
    expect(resolve(mother, eoc.careManager).identifier[0].value).toBe('9144889');
  });

  it('puts therapist and primary-treatment contact on the care team', () => {
    const team = byIdentifier(mother, 'CareTeam', 'VG-2026-0042');
    const members = team.participant.map((p: { member: { reference: string } }) => resolve(mother, p.member).identifier[0].value);
    expect(members).toEqual(['9144889@974557746', '9876543@993778125']);
  });

  it('maps a planned episode without period or therapist', () => {
    const eoc = byIdentifier(planned, 'EpisodeOfCare', 'VG-2026-0133');
    expect(eoc.status).toBe('planned');
    expect(eoc.period).toBeUndefined();
    expect(eoc.careManager).toBeUndefined();
  });

  it('maps an active consent with recipient, period and shared classes', () => {
    const c = byIdentifier(mother, 'Consent', 'CN-2026-0042');
    expect(c.status).toBe('active');
    expect(c.dateTime).toBe('2026-01-12');
    expect(c.provision.type).toBe('permit');
    expect(c.provision.period).toEqual({ start: '2026-01-12', end: '2027-01-12' });
    expect(resolve(mother, c.provision.actor[0].reference).identifier[0].value).toBe('993778125');
    const classes = (system: string) => c.provision.class.filter((x: { system: string }) => x.system === system).map((x: { code: string }) => x.code);
    expect(classes('https://imh-bridge.example.no/fhir/CodeSystem/consent-share-class')).toEqual([
      'attendance',
      'focus-areas',
      'scores',
      'themes',
      'risk-flags',
      'summary',
    ]);
  });

  it('follows IHE PCF: recipient organisation as IRCP, purpose of use TREAT, security labels and resource types a policy engine reads', () => {
    const c = byIdentifier(mother, 'Consent', 'CN-2026-0042');
    expect(c.provision.actor[0].role.coding[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' });
    expect(c.provision.purpose).toEqual([{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT', display: 'treatment' }]);
    expect(c.provision.securityLabel.map((l: { code: string }) => l.code)).toEqual(['R', 'PSY']);
    const types = c.provision.class.filter((x: { system: string }) => x.system === 'http://hl7.org/fhir/resource-types').map((x: { code: string }) => x.code);
    expect(types).toEqual([
      'Composition',
      'Consent',
      'Device',
      'DocumentReference',
      'Encounter',
      'EpisodeOfCare',
      'Flag',
      'Observation',
      'Organization',
      'Patient',
      'Practitioner',
      'PractitionerRole',
      'Procedure',
      'Provenance',
      'Task',
    ]);
    // Notes and clips never: a nested deny provision.
    expect(c.provision.provision[0].type).toBe('deny');
    expect(c.provision.provision[0].securityLabel.map((l: { code: string }) => l.code)).toEqual(['V', 'PSYTHPN']);

    // Only what is consented: attendance alone adds Encounter to the base set, nothing else.
    const e = completed();
    e.consent.share = ['attendance'];
    const narrow = byIdentifier(mapEpisode(e), 'Consent', 'CN-2026-0042');
    const narrowTypes = narrow.provision.class
      .filter((x: { system: string }) => x.system === 'http://hl7.org/fhir/resource-types')
      .map((x: { code: string }) => x.code);
    expect(narrowTypes).toContain('Encounter');
    for (const t of ['Observation', 'Flag', 'Procedure', 'DocumentReference']) expect(narrowTypes).not.toContain(t);
  });

  it('maps a declined consent as rejected, permitting nothing', () => {
    const c = byIdentifier(father, 'Consent', 'CN-2026-0107');
    expect(c.status).toBe('rejected');
    expect(c.provision).toBeUndefined();
  });

  it('maps a withdrawn consent as inactive', () => {
    const e = completed();
    e.consent.status = 'withdrawn';
    expect(byIdentifier(mapEpisode(e), 'Consent', 'CN-2026-0042').status).toBe('inactive');
  });
});

describe('sessions, video guidance and clips', () => {
  it('represents attended, cancelled, no-show and planned sessions faithfully', () => {
    const status = (b: Bundle, id: string) => {
      const enc = byIdentifier(b, 'Encounter', id);
      return [enc.status, ext(enc, 'imh-session-attendance')[0]?.valueCoding.code];
    };
    expect(status(mother, 'VG-2026-0042/S1')).toEqual(['finished', 'attended']);
    expect(status(mother, 'VG-2026-0042/S5')).toEqual(['cancelled', 'cancelled']);
    expect(status(father, 'VG-2026-0107/S3')).toEqual(['cancelled', 'no-show']);
    expect(status(father, 'VG-2026-0107/S5')).toEqual(['planned', 'planned']);
    expect(ext(byIdentifier(mother, 'Encounter', 'VG-2026-0042/S5'), 'imh-cancellation-reason')[0]?.valueCoding.code).toBe('parent-ill');
  });

  it('keeps the session time with its offset and derives the end from minutes', () => {
    const enc = byIdentifier(mother, 'Encounter', 'VG-2026-0042/S1');
    expect(enc.period).toEqual({ start: '2026-01-12T09:00:00+01:00', end: '2026-01-12T10:15:00+01:00' });
    expect(enc.length).toEqual({ value: 75, unit: 'min', system: 'http://unitsofmeasure.org', code: 'min' });
    expect(enc.class.code).toBe('AMB');
    expect(byIdentifier(mother, 'Encounter', 'VG-2026-0042/S2').class.code).toBe('HH');
    expect(byIdentifier(father, 'Encounter', 'VG-2026-0107/S5').period).toEqual({ start: '2026-12-02T11:00:00+01:00' });
  });

  it('creates the video guidance Procedure for attended sessions only, with focus elements, themes and reviewed clips', () => {
    expect(resources(mother, 'Procedure')).toHaveLength(8);
    expect(resources(father, 'Procedure')).toHaveLength(3);
    const p = byIdentifier(mother, 'Procedure', 'VG-2026-0042/S8');
    expect(ext(p, 'imh-focus-element').map((x) => x.valueCoding.code)).toEqual(['sharing-joy', 'positive-leading', 'naming']);
    expect(ext(p, 'imh-change-theme').map((x) => x.valueCoding.code)).toEqual(['becoming-agentic-and-interconnected', 'challenged-by-own-mental-health']);
    expect(ext(p, 'imh-reviewed-clip').map((x) => resolve(mother, x.valueReference).identifier[0].value)).toEqual(['VG-2026-0042/C6-1', 'VG-2026-0042/C6-2']);
    expect(resolve(mother, p.encounter).identifier[0].value).toBe('VG-2026-0042/S8');
    expect(p.code.coding[0].code).toBe('marte-meo');
  });

  it('keeps clip metadata only, with the SHA-256 intact', () => {
    const d = byIdentifier(mother, 'DocumentReference', 'VG-2026-0042/C2-1');
    const a = d.content[0].attachment;
    expect(ext(a, 'imh-attachment-sha256')[0]?.valueString).toBe('251f0334e7a9b8bfe55a7b6227cc5087bcbac530aac0bc819776f752aa2b2d67');
    expect(a.hash).toBeUndefined(); // Attachment.hash is SHA-1 in R4
    expect(a.data).toBeUndefined();
    expect(a.url).toBe('https://video.bup-vest.example.no/clips/C2-1.mp4');
    expect(a.contentType).toBe('video/mp4');
    expect(a.creation).toBe('2026-01-19T10:12:00+01:00');
    expect(ext(a, 'imh-clip-duration')[0]?.valueDuration.value).toBe(312);
    expect(resolve(mother, d.context.encounter[0]).identifier[0].value).toBe('VG-2026-0042/S2');
  });

  it('keeps the session note in a psychotherapy-note document of its own, never in the Encounter', () => {
    const text = 'PDI conducted. Mother tearful when describing the first weeks after birth.';
    const enc = byIdentifier(mother, 'Encounter', 'VG-2026-0042/S1');
    const note = byIdentifier(mother, 'DocumentReference', 'VG-2026-0042/S1');
    expect(note.meta.profile).toEqual([`${BASE}/StructureDefinition/imh-psychotherapy-note`]);
    expect(note.identifier[0].system).toBe(`${BASE}/sid/974557746/session-note`);
    expect(note.meta.security).toEqual([
      { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'V', display: 'very restricted' },
      { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'PSY', display: 'psychiatry disorder information sensitivity' },
      { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'PSYTHPN', display: 'psychotherapy note information sensitivity' },
    ]);
    expect(note.type.coding[0]).toMatchObject({ system: 'http://loinc.org', code: '11506-3' });
    expect(resolve(mother, note.context.encounter[0])).toBe(enc);
    expect(note.date).toMatch(/^2026-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/); // an instant
    const attachment = note.content[0].attachment;
    expect(attachment.contentType).toBe('text/plain;charset=utf-8');
    expect(new TextDecoder().decode(Uint8Array.from(atob(attachment.data), (c) => c.charCodeAt(0)))).toBe(text);
    // Nothing else carries the note, in clear or encoded.
    const others = JSON.stringify(resources(mother).filter((r) => r !== note && r.resourceType !== 'Provenance'));
    expect(others).not.toContain('tearful');
    expect(others).not.toContain(attachment.data);
    expect(ext(enc, 'imh-session-note')).toEqual([]);
  });

  it('keeps Norwegian letters in a note intact', () => {
    const e = completed();
    e.sessions[0].note = 'Mor og barn på gulvet; blikkontakt, smil og små lyder. Ærlig og åpen.';
    const note = byIdentifier(mapEpisode(e), 'DocumentReference', 'VG-2026-0042/S1');
    const bytes = Uint8Array.from(atob(note.content[0].attachment.data), (c) => c.charCodeAt(0));
    expect(new TextDecoder().decode(bytes)).toBe(e.sessions[0].note);
  });
});

describe('assessments and scores', () => {
  it('maps each assessment to a QuestionnaireResponse with the answers as sent', () => {
    const qr = byIdentifier(mother, 'QuestionnaireResponse', 'VG-2026-0042/A1');
    expect(qr.questionnaire).toBe(`${BASE}/Questionnaire/epds`);
    expect(qr.authored).toBe('2026-01-12');
    // Each answer is the Questionnaire's answer option for the position ticked.
    expect(qr.item.map((i: { linkId: string; answer: { valueCoding: { code: string } }[] }) => [i.linkId, i.answer[0]?.valueCoding.code])).toEqual([
      ['1', '2'],
      ['2', '2'],
      ['3', '1'],
      ['4', '2'],
      ['5', '2'],
      ['6', '1'],
      ['7', '1'],
      ['8', '2'],
      ['9', '1'],
      ['10', '3'],
    ]);
    const phq = byIdentifier(mother, 'QuestionnaireResponse', 'VG-2026-0042/A2');
    expect(phq.item[0].answer[0].valueCoding).toMatchObject({ system: 'http://loinc.org', code: 'LA6570-1' }); // 2: more than half the days
    expect(resolve(mother, qr.author).resourceType).toBe('Patient');
    const pdi = byIdentifier(mother, 'QuestionnaireResponse', 'VG-2026-0042/A5');
    expect(resolve(mother, pdi.author).identifier[0].value).toBe('9144889');
  });

  // Expected values computed by hand from the format's scoring rules.
  it.each([
    ['A1', '99046-5', 16, 'probable-depression'], // EPDS: 2+2+2 direct, 2+1+2+2+1+2+0 reversed
    ['A6', '99046-5', 8, 'below-threshold'],
    ['A2', '44261-6', 13, 'moderate'],
    ['A7', '44261-6', 7, 'mild'],
    ['A3', '70274-6', 11, 'moderate'],
    ['A8', '70274-6', 6, 'mild'],
  ])('scores %s (%s) as %i, %s', (assessment, loinc, total, band) => {
    const o = scoreOf(mother, assessment, loinc);
    expect(o.code.coding[0]).toMatchObject({ system: 'http://loinc.org', code: loinc });
    expect(o.valueInteger).toBe(total);
    expect(o.interpretation[0].coding[0].code).toBe(band);
    expect(resolve(mother, o.derivedFrom[0]).identifier.value).toBe(`VG-2026-0042/${assessment}`);
    expect(o.effectiveDateTime).toMatch(/^2026-0[15]-\d\d$/);
  });

  it.each([
    ['A4', 'prfq-pre-mentalizing', 4],
    ['A4', 'prfq-certainty-about-mental-states', 2.67], // item 11 reversed: 8 − 6
    ['A4', 'prfq-interest-and-curiosity', 3.5], // item 18 reversed: 8 − 5
    ['A9', 'prfq-pre-mentalizing', 2],
    ['A9', 'prfq-certainty-about-mental-states', 4],
    ['A9', 'prfq-interest-and-curiosity', 5.83],
  ])('scores PRFQ %s subscale %s as mean %d', (assessment, code, mean) => {
    const o = scoreOf(mother, assessment, code);
    expect(o.valueQuantity.value).toBe(mean);
    expect(o.code.coding[0].system).toBe(`${BASE}/CodeSystem/instrument-score`);
  });

  it('maps the PDI-RF rating with its rater', () => {
    const o = scoreOf(mother, 'A10', 'pdi-rf');
    expect(o.valueInteger).toBe(4);
    expect(resolve(mother, o.performer[0]).identifier[0].value).toBe('9144889');
  });

  it('raises one Flag per assessment with a positive self-harm item, and none otherwise', () => {
    // Father's EPDS item 10 answered at position 2 scores 1 (reverse-scored): positive.
    expect(resources(father, 'Flag')).toHaveLength(1);
    const flag = byIdentifier(father, 'Flag', 'VG-2026-0107/A1/self-harm');
    expect(flag.status).toBe('active');
    expect(resolve(father, flag.extension[0].valueReference).identifier.value).toBe('VG-2026-0107/A1');
    // Mother's EPDS item 10 at position 3 scores 0; PHQ-9 item 9 is 0: no flag.
    expect(resources(mother, 'Flag')).toHaveLength(0);
    const e = completed();
    e.assessments[1].answers['9'] = 1; // PHQ-9 item 9
    e.assessments[5].answers['10'] = 0; // EPDS item 10 at top position scores 3
    const flagged = resources(mapEpisode(e), 'Flag')
      .map((f) => f.identifier[0].value)
      .sort();
    expect(flagged).toEqual(['VG-2026-0042/A2/self-harm', 'VG-2026-0042/A6/self-harm']);
  });

  it('ends a self-harm flag when a later administration scores 0 on the item, or when the episode ends', () => {
    const e = completed();
    e.assessments[1].answers['9'] = 1; // PHQ-9 A2 (2026-01-12) positive; A7 (2026-05-04) scores 0 on item 9
    e.assessments[5].answers['10'] = 0; // EPDS A6 (2026-05-04) positive; no later EPDS, the episode is finished
    const b = mapEpisode(e);
    const phq = byIdentifier(b, 'Flag', 'VG-2026-0042/A2/self-harm');
    expect(phq.status).toBe('inactive');
    expect(phq.period).toEqual({ start: '2026-01-12', end: '2026-05-04' });
    const epds = byIdentifier(b, 'Flag', 'VG-2026-0042/A6/self-harm');
    expect(epds.status).toBe('inactive');
    expect(epds.period).toEqual({ start: '2026-05-04', end: e.closing.closedOn });

    // Still current: the later PHQ-9 is positive too, and the episode is active.
    const open = completed();
    open.status = 'active';
    delete open.closing;
    delete open.period.end;
    open.assessments[1].answers['9'] = 2;
    open.assessments[6].answers['9'] = 1;
    const o = mapEpisode(open);
    for (const id of ['VG-2026-0042/A2/self-harm', 'VG-2026-0042/A7/self-harm']) {
      const f = byIdentifier(o, 'Flag', id);
      expect(f.status).toBe('active');
      expect(f.period.end).toBeUndefined();
    }
  });

  it('links every score to its episode and to the response it came from', () => {
    const episode = byIdentifier(mother, 'EpisodeOfCare', 'VG-2026-0042');
    for (const o of resources(mother, 'Observation').filter((x) => x.meta.profile[0].endsWith('/imh-score-observation'))) {
      const link = o.extension.filter((x: { url: string }) => x.url === 'http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare');
      expect(link).toHaveLength(1);
      expect(resolve(mother, link[0].valueReference)).toBe(episode);
      expect(resolve(mother, o.derivedFrom[0]).resourceType).toBe('QuestionnaireResponse');
    }
  });

  it('scores GAD-7 severe and EPDS probable for the father', () => {
    expect(scoreOf(father, 'A1', '99046-5').valueInteger).toBe(14);
    expect(scoreOf(father, 'A2', '70274-6').interpretation[0].coding[0].code).toBe('severe');
  });
});

describe('goals, closing and provenance', () => {
  it('maps goal statuses to lifecycle and achievement status', () => {
    const g1 = byIdentifier(mother, 'Goal', 'VG-2026-0042/G1');
    expect([g1.lifecycleStatus, g1.achievementStatus.coding[0].code]).toEqual(['completed', 'achieved']);
    const g2 = byIdentifier(mother, 'Goal', 'VG-2026-0042/G2');
    expect([g2.lifecycleStatus, g2.achievementStatus.coding[0].code]).toEqual(['active', 'in-progress']);
    expect(g1.description.text).toBe("Notice and name Emil's initiatives during everyday play");
    expect([g1.startDate, g1.statusDate]).toEqual(['2026-01-26', '2026-03-23']);
    const e = completed();
    e.goals[0].status = 'cancelled';
    const g = byIdentifier(mapEpisode(e), 'Goal', 'VG-2026-0042/G1');
    expect([g.lifecycleStatus, g.achievementStatus]).toEqual(['cancelled', undefined]);
  });

  it('records the clinician global improvement at closing', () => {
    const o = byIdentifier(mother, 'Observation', 'VG-2026-0042/closing/cgi-i');
    expect(o.valueInteger).toBe(2);
    expect(o.effectiveDateTime).toBe('2026-05-04');
  });

  it("adds one Provenance naming every resource written, dated by the episode's content", () => {
    const [prov] = resources(mother, 'Provenance');
    expect(prov?.target).toHaveLength((mother.entry?.length ?? 0) - 1);
    expect(prov?.recorded).toBe('2026-05-06T00:00:00.000Z'); // A10 rated 6 May, after the last session
    expect(resources(father, 'Provenance')[0]?.recorded).toBe('2026-09-28T11:00:00.000Z'); // S4 review; S5 is only planned
  });
});
