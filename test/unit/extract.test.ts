import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import type {
  Bundle,
  BundleEntry,
  Coding,
  Flag,
  Observation,
  OperationOutcome,
  Parameters,
  Questionnaire,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  Resource,
} from '@medplum/fhirtypes';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkNationalId } from '../../src/domain/identifiers.ts';
import { OperationOutcomeError } from '../../src/fhir/outcome.ts';
import { validateFhir } from '../../src/fhir/validate.ts';
import { createApp } from '../../src/http/app.ts';
import { mapEpisode } from '../../src/index.ts';
import { INSTRUMENTS, type InstrumentId } from '../../src/instruments/definitions.ts';
import { questionnaire } from '../../src/instruments/questionnaires.ts';
import { type ExtractOptions, extract, extractResponse } from '../../src/instruments/sdc-extract.ts';
import { activeFather, completed } from '../fixtures/examples.ts';

const EPISODE_LINK = 'http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare';

/**
 * The entries an extraction should reproduce: the response, its scores and flag. A lone
 * response knows no episode, so the episode path's link to its EpisodeOfCare is left out.
 */
function episodeEntries(bundle: Bundle, episodeId: string, assessmentId: string): BundleEntry[] {
  const prefix = `${episodeId}/${assessmentId}`;
  return (bundle.entry ?? [])
    .filter((e) => {
      const r = e.resource as { resourceType: string; identifier?: { value?: string } | { value?: string }[] };
      const ids = Array.isArray(r.identifier) ? r.identifier : r.identifier ? [r.identifier] : [];
      return (
        ['QuestionnaireResponse', 'Observation', 'Flag'].includes(r.resourceType) && ids.some((i) => i.value === prefix || i.value?.startsWith(`${prefix}/`))
      );
    })
    .map((e) => {
      const r = structuredClone(e.resource) as { extension?: { url: string }[] };
      if (r.extension) {
        r.extension = r.extension.filter((x) => x.url !== EPISODE_LINK);
        if (!r.extension.length) delete r.extension;
      }
      return { ...e, resource: r } as BundleEntry;
    });
}

const responseOf = (bundle: Bundle, episodeId: string, assessmentId: string): QuestionnaireResponse =>
  structuredClone(
    episodeEntries(bundle, episodeId, assessmentId).find((e) => e.resource?.resourceType === 'QuestionnaireResponse')?.resource as QuestionnaireResponse,
  );

function rejection(input: unknown, opts?: ExtractOptions): OperationOutcome {
  try {
    extractResponse(input, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(OperationOutcomeError);
    return (e as OperationOutcomeError).outcome;
  }
  throw new Error('extraction succeeded');
}
const where = (o: OperationOutcome) => o.issue.flatMap((i) => i.expression ?? []);

describe('SDC $extract gives exactly what the episode path gives', () => {
  const mother = mapEpisode(completed());
  const father = mapEpisode(activeFather());
  it.each([
    ['EPDS', mother, 'VG-2026-0042', 'A1'],
    ['PHQ-9', mother, 'VG-2026-0042', 'A2'],
    ['GAD-7', mother, 'VG-2026-0042', 'A3'],
    ['PRFQ', mother, 'VG-2026-0042', 'A4'],
    ['PDI-RF', mother, 'VG-2026-0042', 'A5'],
    ['EPDS with a positive self-harm item', father, 'VG-2026-0107', 'A1'],
  ])('%s', (_name, bundle, episodeId, assessmentId) => {
    const expected = episodeEntries(bundle, episodeId, assessmentId);
    const extracted = extractResponse(responseOf(bundle, episodeId, assessmentId));
    expect(extracted.entry).toEqual(expected);
    expect(expected.length).toBeGreaterThan(1);
    // As a form renderer would send it: references to resources already on the server.
    const fromServer = JSON.parse(
      JSON.stringify(responseOf(bundle, episodeId, assessmentId)).replace(/"reference":"urn:uuid:[^"]+"/g, '"reference":"Patient/p-1"'),
    ) as QuestionnaireResponse;
    const onServer = extractResponse(fromServer);
    expect(validateFhir(onServer).issue.filter((i) => i.severity === 'error')).toEqual([]);
    expect(JSON.stringify(onServer)).toContain('"reference":"Patient/p-1"');
  });

  it('agree on random answer sets for every scored instrument', () => {
    const scored: InstrumentId[] = ['EPDS', 'PHQ-9', 'GAD-7', 'PRFQ'];
    fc.assert(
      fc.property(fc.constantFrom(...scored), fc.infiniteStream(fc.nat()), (instrument, stream) => {
        const def = INSTRUMENTS[instrument];
        const answers: Record<string, number> = {};
        const it = stream[Symbol.iterator]();
        for (const item of def.items) answers[item] = def.min + ((it.next().value as number) % (def.max - def.min + 1));
        const e = completed();
        // An active episode: a lone response cannot know that an episode ended a self-harm flag.
        e.status = 'active';
        delete e.closing;
        delete e.period.end;
        e.assessments = [{ assessmentId: 'R1', instrument, completedOn: '2026-02-01', respondent: 'parent', answers }];
        const b = mapEpisode(e);
        expect(extractResponse(responseOf(b, 'VG-2026-0042', 'R1')).entry).toEqual(episodeEntries(b, 'VG-2026-0042', 'R1'));
      }),
      { numRuns: 150 },
    );
  });
});

describe('a response that does not fit its Questionnaire is refused, naming where', () => {
  const base = () => responseOf(mapEpisode(completed()), 'VG-2026-0042', 'A2'); // PHQ-9

  it('unknown linkId', () => {
    const qr = base();
    qr.item![3]!.linkId = '42';
    expect(where(rejection(qr))).toContain('QuestionnaireResponse.item[3].linkId');
  });

  it('wrong answer type', () => {
    const qr = base();
    qr.item![3]!.answer = [{ valueInteger: 2 }];
    expect(where(rejection(qr))).toContain('QuestionnaireResponse.item[3].answer[0]');
  });

  it('answer not among the options', () => {
    const qr = base();
    qr.item![3]!.answer = [{ valueCoding: { system: 'http://loinc.org', code: 'LA9999-9' } }];
    const o = rejection(qr);
    expect(where(o)).toEqual(['QuestionnaireResponse.item[3].answer[0]']);
    expect(o.issue[0]?.details?.text).toMatch(/not among the options of item 4/);
  });

  it('missing required item', () => {
    const qr = base();
    qr.item = qr.item!.filter((i) => i.linkId !== '9');
    const o = rejection(qr);
    expect(where(o)).toEqual(['QuestionnaireResponse.item']);
    expect(o.issue[0]?.details?.text).toMatch(/required item 9/);
  });

  it('unknown questionnaire', () => {
    const qr = base();
    qr.questionnaire = 'http://example.org/Questionnaire/bdi-ii';
    expect(where(rejection(qr))).toEqual(['QuestionnaireResponse.questionnaire']);
  });

  it('a PDI-RF rating out of range, and a malformed assessment identifier', () => {
    const qr = responseOf(mapEpisode(completed()), 'VG-2026-0042', 'A5');
    qr.item![0]!.answer = [{ valueInteger: 12 }];
    qr.identifier!.value = 'VG-2026-0042';
    expect(where(rejection(qr)).sort()).toEqual(['QuestionnaireResponse.identifier.value', 'QuestionnaireResponse.item[0].answer[0]']);
  });

  it('something that is not a QuestionnaireResponse', () => {
    expect(rejection({ resourceType: 'Patient' }).issue).toHaveLength(1);
  });
});

/**
 * A response shaped as LHC-Forms 40 exports it (LForms.Util.getFormFHIRData, R4): its own meta
 * (base profile, version tag), `questionnaire` as url|version, item texts, the option Coding
 * with its ordinalValue extension, the calculated total as the renderer computed it; no
 * identifier, no id, no subject, no author.
 */
function rendererResponse(
  questionnaireId: string,
  pick: (linkId: string, options: Coding[]) => Coding,
  authored = '2026-03-02T09:15:00.000Z',
): QuestionnaireResponse {
  const q = questionnaire(questionnaireId) as Questionnaire;
  const items = (q.item ?? [])
    .filter((i) => i.type === 'choice')
    .map((i) => {
      const options = (i.answerOption ?? []).map((o) => o.valueCoding as Coding);
      return { linkId: i.linkId as string, text: i.text, answer: [{ valueCoding: { ...pick(i.linkId as string, options) } }] };
    });
  return {
    resourceType: 'QuestionnaireResponse',
    meta: { profile: ['http://hl7.org/fhir/4.0/StructureDefinition/QuestionnaireResponse'], tag: [{ code: 'lformsVersion: 40.1.3' }] },
    status: 'completed',
    authored,
    questionnaire: `${q.url}|${q.version}`,
    item: items,
  };
}
const withTotal = (qr: QuestionnaireResponse, total: number): QuestionnaireResponse => ({
  ...qr,
  item: [...(qr.item ?? []), { linkId: 'total', text: 'total score', answer: [{ valueInteger: total }] }],
});
const patient = { reference: 'Patient/p-1' };
/** Synthetic fødselsnummer (month + 80), valid check digits. */
const SYNTHETIC_FNR = syntheticFnr();
function syntheticFnr(): string {
  // Day 15, month 81 (synthetic), year 90, individual number 123…; first body with valid check digits.
  for (let ind = 100; ind < 999; ind++) {
    const v = `158190${ind}`;
    for (let c = 0; c < 100; c++) {
      const id = v + String(c).padStart(2, '0');
      const r = checkNationalId(id);
      if (typeof r !== 'string' && r.kind === 'fnr' && r.synthetic) return id;
    }
  }
  throw new Error('no synthetic id');
}
const resources = (b: Bundle) => (b.entry ?? []).map((e) => e.resource as Resource & Record<string, unknown>);
const ofType = <T extends Resource>(b: Bundle, type: T['resourceType']) => resources(b).filter((r) => r.resourceType === type) as unknown as T[];
const top = (options: Coding[]) => options[options.length - 1] as Coding;

describe('a response as a form renderer exports it, plus a subject', () => {
  const phq9 = () => ({ ...rendererResponse('phq-9', (_l, o) => top(o)), subject: patient });

  it('is extracted without a bridge identifier or an author: totals, bands and the self-harm flag', () => {
    const { bundle, issues } = extract(withTotal(phq9(), 27));
    expect(issues).toEqual([]);
    const [obs] = ofType<Observation>(bundle, 'Observation');
    expect(obs?.valueInteger).toBe(27);
    expect(obs?.interpretation?.[0]?.coding?.[0]?.code).toBe('severe');
    expect(obs?.subject).toEqual(patient);
    expect(ofType<Flag>(bundle, 'Flag')).toHaveLength(1);
    const [qr] = ofType<QuestionnaireResponse>(bundle, 'QuestionnaireResponse');
    expect(qr?.identifier?.system).toBe('https://imh-bridge.example.no/fhir/sid/sdc/assessment');
    expect(qr?.identifier?.value).toMatch(/^[0-9a-f-]{36}$/);
    expect(qr?.author).toBeUndefined();
    expect(validateFhir(bundle).issue.filter((i) => i.severity === 'error')).toEqual([]);
  });

  it('the same response twice gives the same Bundle; another authored time, subject or questionnaire another identity', () => {
    const a = extract(phq9()).bundle;
    expect(extract(phq9()).bundle).toEqual(a);
    const ids = (b: Bundle) => resources(b).map((r) => JSON.stringify(r.identifier));
    expect(ids(extract({ ...phq9(), authored: '2026-03-02T09:16:00.000Z' }).bundle)).not.toEqual(ids(a));
    expect(ids(extract({ ...phq9(), subject: { reference: 'Patient/p-2' } }).bundle)).not.toEqual(ids(a));
    // …and the fullUrls follow the identities
    expect(extract({ ...phq9(), subject: { reference: 'Patient/p-2' } }).bundle.entry?.[0]?.fullUrl).not.toBe(a.entry?.[0]?.fullUrl);
  });

  it("identity: from the response's own identifier, else its id; the stored response sent again keeps its identity", () => {
    const own = extract({ ...phq9(), identifier: { system: 'urn:example:forms', value: 'resp-7' } }).bundle;
    expect(own.entry?.map((e) => e.fullUrl)).not.toEqual(extract(phq9()).bundle.entry?.map((e) => e.fullUrl));
    expect(
      extract({ ...phq9(), authored: '2026-04-01T00:00:00Z', identifier: { system: 'urn:example:forms', value: 'resp-7' } }).bundle.entry?.map(
        (e) => e.fullUrl,
      ),
    ).toEqual(own.entry?.map((e) => e.fullUrl));
    const byId = extract({ ...phq9(), id: 'server-id-1' }).bundle;
    expect(extract({ ...phq9(), id: 'server-id-1', authored: '2026-04-01T00:00:00Z' }).bundle.entry?.map((e) => e.fullUrl)).toEqual(
      byId.entry?.map((e) => e.fullUrl),
    );
    const stored = ofType<QuestionnaireResponse>(byId, 'QuestionnaireResponse')[0] as QuestionnaireResponse;
    expect(extract(stored).bundle).toEqual(byId);
  });

  it("the bridge's own identifier systems cannot be borrowed", () => {
    const qr = { ...phq9(), identifier: { system: 'https://imh-bridge.example.no/fhir/sid/974557746/score', value: 'x' } };
    expect(where(rejection(qr))).toEqual(['QuestionnaireResponse.identifier.system']);
  });

  it('subject by national id: a conditional reference to the Patient; check digits and the synthetic setting as in the episode path', () => {
    const qr = { ...phq9(), subject: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.1', value: SYNTHETIC_FNR } } };
    const b = extract(qr).bundle;
    for (const r of resources(b)) expect(r.subject).toEqual({ reference: `Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|${SYNTHETIC_FNR}` });
    expect(validateFhir(b).issue.filter((i) => i.severity === 'error')).toEqual([]);

    const refused = rejection(qr, { allowSyntheticIds: false });
    expect(where(refused)).toEqual(['QuestionnaireResponse.subject.identifier.value']);
    expect(JSON.stringify(refused)).not.toContain(SYNTHETIC_FNR);
    const badDigits = SYNTHETIC_FNR.slice(0, 10) + String((Number(SYNTHETIC_FNR[10]) + 1) % 10);
    expect(where(rejection({ ...qr, subject: { identifier: { system: qr.subject.identifier.system, value: badDigits } } }))).toEqual([
      'QuestionnaireResponse.subject.identifier.value',
    ]);
    expect(where(rejection({ ...qr, subject: { identifier: { system: 'urn:example:mrn', value: '1' } } }))).toEqual([
      'QuestionnaireResponse.subject.identifier.system',
    ]);
    // a fødselsnummer under the D-number system is refused too
    expect(where(rejection({ ...qr, subject: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.2', value: SYNTHETIC_FNR } } }))).toEqual([
      'QuestionnaireResponse.subject.identifier.value',
    ]);
  });

  it('without a subject, or with a subject that is not a Patient, it is refused', () => {
    const { subject: _s, ...none } = phq9();
    expect(where(rejection(none))).toEqual(['QuestionnaireResponse.subject']);
    expect(where(rejection({ ...phq9(), subject: { reference: 'Practitioner/x' } }))).toEqual(['QuestionnaireResponse.subject.reference']);
  });

  it('a submitted total that contradicts the answers is a warning, and the stored response carries the computed total', () => {
    const { bundle, issues } = extract(withTotal(phq9(), 3));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ severity: 'warning', expression: ['QuestionnaireResponse.item[9].answer[0]'] });
    expect(issues[0]?.details?.text).toMatch(/says 3, the answers give 27/);
    const qr = ofType<QuestionnaireResponse>(bundle, 'QuestionnaireResponse')[0];
    expect(qr?.item?.find((i) => i.linkId === 'total')?.answer).toEqual([{ valueInteger: 27 }]);
    expect(ofType<Observation>(bundle, 'Observation')[0]?.valueInteger).toBe(27);
    // a total that agrees is kept, without warning
    const agreeing = extract(withTotal(phq9(), 27));
    expect(agreeing.issues).toEqual([]);
    expect(ofType<QuestionnaireResponse>(agreeing.bundle, 'QuestionnaireResponse')[0]?.item?.at(-1)).toEqual({
      linkId: 'total',
      text: 'total score',
      answer: [{ valueInteger: 27 }],
    });
  });

  it('a PRFQ subscale mean that contradicts the answers is a warning too', () => {
    const qr = { ...rendererResponse('prfq', (_l, o) => o[3] as Coding), subject: patient };
    qr.item!.push(
      { linkId: 'prfq-pre-mentalizing', answer: [{ valueDecimal: 6.5 }] },
      { linkId: 'prfq-interest-and-curiosity', answer: [{ valueDecimal: 4 }] },
    );
    const { bundle, issues } = extract(qr);
    expect(issues.map((i) => i.expression)).toEqual([[`QuestionnaireResponse.item[18].answer[0]`]]);
    const stored = ofType<QuestionnaireResponse>(bundle, 'QuestionnaireResponse')[0]?.item ?? [];
    expect(stored.find((i) => i.linkId === 'prfq-pre-mentalizing')?.answer).toEqual([{ valueDecimal: 4 }]);
  });

  it('only what R4 defines is copied: renderer meta, extensions, narrative and unknown properties are dropped', () => {
    const qr = {
      ...withTotal(phq9(), 27),
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' },
      extension: [{ url: 'urn:example:x', valueString: 'y' }],
      contained: [{ resourceType: 'Patient', id: 'c' }],
      somethingElse: { a: 1 },
      author: { reference: 'Practitioner/t-1', extension: [{ url: 'urn:example:x', valueString: 'y' }] },
    } as QuestionnaireResponse;
    (qr.item![0] as QuestionnaireResponseItem & { extension: unknown[] }).extension = [{ url: 'urn:example:x', valueString: 'y' }];
    const stored = ofType<QuestionnaireResponse>(extract(qr).bundle, 'QuestionnaireResponse')[0] as QuestionnaireResponse;
    expect(Object.keys(stored).sort()).toEqual(['author', 'authored', 'identifier', 'item', 'meta', 'questionnaire', 'resourceType', 'status', 'subject']);
    expect(stored.meta?.profile).toEqual(['https://imh-bridge.example.no/fhir/StructureDefinition/imh-questionnaire-response']);
    expect(stored.meta?.tag).toBeUndefined();
    expect(stored.author).toEqual({ reference: 'Practitioner/t-1' });
    expect(JSON.stringify(stored)).not.toContain('urn:example:x');
    expect(JSON.stringify(stored)).not.toContain('ordinalValue');
    expect(stored.item?.[0]).toEqual({
      linkId: '1',
      text: 'Little interest or pleasure in doing things',
      answer: [{ valueCoding: { system: 'http://loinc.org', code: 'LA6571-9', display: 'Nearly every day' } }],
    });
  });

  it('modifier elements the bridge cannot honour are refused', () => {
    expect(where(rejection({ ...phq9(), modifierExtension: [{ url: 'urn:example:m', valueBoolean: true }] }))).toEqual([
      'QuestionnaireResponse.modifierExtension',
    ]);
    expect(where(rejection({ ...phq9(), implicitRules: 'urn:example:rules' }))).toEqual(['QuestionnaireResponse.implicitRules']);
  });

  it('the session review form is extracted as the response alone, answers checked against its inline options', () => {
    const q = questionnaire('marte-meo-session-review') as Questionnaire;
    const option = (linkId: string, i: number) => q.item?.find((x) => x.linkId === linkId)?.answerOption?.[i]?.valueCoding as Coding;
    const qr: QuestionnaireResponse = {
      resourceType: 'QuestionnaireResponse',
      status: 'completed',
      authored: '2026-03-02T10:00:00Z',
      questionnaire: q.url,
      subject: patient,
      item: [
        { linkId: 'session-date', answer: [{ valueDate: '2026-03-02' }] },
        { linkId: 'clips-reviewed', answer: [{ valueString: 'C1' }, { valueString: 'C2' }] },
        { linkId: 'focus-elements', answer: [{ valueCoding: option('focus-elements', 0) }, { valueCoding: option('focus-elements', 2) }] },
        { linkId: 'themes', answer: [{ valueCoding: option('themes', 1) }] },
      ],
    };
    const b = extract(qr).bundle;
    expect(resources(b).map((r) => r.resourceType)).toEqual(['QuestionnaireResponse']);
    expect(validateFhir(b).issue.filter((i) => i.severity === 'error')).toEqual([]);
    const bad = structuredClone(qr);
    bad.item![3]!.answer = [{ valueCoding: { system: option('themes', 1).system, code: 'not-a-theme' } }];
    expect(where(rejection(bad))).toEqual(['QuestionnaireResponse.item[3].answer[0]']);
  });
});

describe('$extract over HTTP and as a command', () => {
  const app = createApp({ allowSyntheticIds: true });
  const post = (body: unknown) =>
    app.request('/v1/QuestionnaireResponse/$extract', { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(body) });
  const phq9 = () => ({ ...rendererResponse('phq-9', (_l, o) => o[1] as Coding), subject: patient });

  it('answers the Bundle alone when there is nothing to warn about', async () => {
    const res = await post(withTotal(phq9(), 9));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const b = (await res.json()) as Bundle;
    expect([b.resourceType, b.type]).toEqual(['Bundle', 'transaction']);
  });

  it('answers Parameters {return: Bundle, issues: OperationOutcome} when a submitted total disagrees', async () => {
    const res = await post(withTotal(phq9(), 12));
    expect(res.status).toBe(200);
    const p = (await res.json()) as Parameters;
    expect(p.resourceType).toBe('Parameters');
    const [ret, iss] = [
      p.parameter?.find((x) => x.name === 'return')?.resource as Bundle,
      p.parameter?.find((x) => x.name === 'issues')?.resource as OperationOutcome,
    ];
    expect(ofType<Observation>(ret, 'Observation')[0]?.valueInteger).toBe(9);
    expect(iss.issue.map((i) => i.severity)).toEqual(['warning']);
  });

  it('refuses a synthetic national id where the deployment does not allow them', async () => {
    const strict = createApp({ allowSyntheticIds: false });
    const res = await strict.request('/v1/QuestionnaireResponse/$extract', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...phq9(), subject: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.1', value: SYNTHETIC_FNR } } }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as OperationOutcome).issue[0]?.expression).toEqual(['QuestionnaireResponse.subject.identifier.value']);
  });

  it('imh-bridge extract prints the same, warnings also on stderr', () => {
    const bin = resolve(import.meta.dirname, '../../bin/imh-bridge.js');
    const r = spawnSync(process.execPath, [bin, 'extract', '-'], { input: JSON.stringify(withTotal(phq9(), 12)), encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).resourceType).toBe('Parameters');
    expect(r.stderr).toMatch(/warning: item total \(calculated\)/);
    const ok = spawnSync(process.execPath, [bin, 'extract', '-'], { input: JSON.stringify(phq9()), encoding: 'utf8', timeout: 60_000 });
    expect([ok.status, JSON.parse(ok.stdout).resourceType]).toEqual([0, 'Bundle']);
  }, 60_000);
});
