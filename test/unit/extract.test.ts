import type { Bundle, BundleEntry, OperationOutcome, QuestionnaireResponse } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OperationOutcomeError } from '../../src/fhir/outcome.ts';
import { validateFhir } from '../../src/fhir/validate.ts';
import { INSTRUMENTS, type InstrumentId } from '../../src/instruments/definitions.ts';
import { extractResponse } from '../../src/instruments/extract.ts';
import { mapEpisode } from '../../src/index.ts';
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
      return ['QuestionnaireResponse', 'Observation', 'Flag'].includes(r.resourceType) && ids.some((i) => i.value === prefix || i.value?.startsWith(`${prefix}/`));
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
  structuredClone(episodeEntries(bundle, episodeId, assessmentId).find((e) => e.resource?.resourceType === 'QuestionnaireResponse')?.resource as QuestionnaireResponse);

function rejection(input: unknown): OperationOutcome {
  try {
    extractResponse(input);
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

  it('a PDI-RF rating out of range, and a response without our identifier', () => {
    const qr = responseOf(mapEpisode(completed()), 'VG-2026-0042', 'A5');
    qr.item![0]!.answer = [{ valueInteger: 12 }];
    delete qr.identifier;
    expect(where(rejection(qr)).sort()).toEqual(['QuestionnaireResponse.identifier', 'QuestionnaireResponse.item[0].answer[0]']);
  });

  it('something that is not a QuestionnaireResponse', () => {
    expect(rejection({ resourceType: 'Patient' }).issue).toHaveLength(1);
  });
});
