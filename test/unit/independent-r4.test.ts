/**
 * Second opinions on what the bridge writes, from tools that share no code with its validator:
 * the official R4 JSON Schema, every R4 `error` invariant evaluated by HL7's fhirpath.js, and
 * the SDC calculatedExpressions of the published Questionnaires evaluated by fhirpath.js
 * against the bridge's scoring engine. See test/fixtures/r4-independent.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Bundle, CareTeam, Encounter, Questionnaire, QuestionnaireItem, QuestionnaireResponse, Resource } from '@medplum/fhirtypes';
import fc from 'fast-check';
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { describe, expect, it } from 'vitest';
import { validateFhir } from '../../src/fhir/validate.ts';
import { mapEpisode } from '../../src/index.ts';
import { INSTRUMENTS, type InstrumentDefinition, type InstrumentId } from '../../src/instruments/definitions.ts';
import { score } from '../../src/instruments/scoring.ts';
import { extractResponse } from '../../src/instruments/sdc-extract.ts';
import { responseItems } from '../../src/mapping/assessments.ts';
import { completed, example, exampleNames } from '../fixtures/examples.ts';
import { longEpisode } from '../fixtures/generate.ts';
import { r4InvariantFailures, r4SchemaErrors } from '../fixtures/r4-independent.ts';

const PROFILES = resolve(import.meta.dirname, '../../profiles');
const questionnaires: [string, Questionnaire][] = readdirSync(PROFILES)
  .filter((f) => /^Questionnaire-.+\.json$/.test(f))
  .sort()
  .map((f) => [f, JSON.parse(readFileSync(resolve(PROFILES, f), 'utf8')) as Questionnaire]);

/** The contract's examples (as the mapping tests use them) and synthetic episodes. */
const episodes = (): [string, unknown][] => [
  ...exampleNames().map((n): [string, unknown] => [n, example(n)]),
  ['synthetic episode, 3 sessions', longEpisode(3, 1)],
  ['synthetic episode, 12 sessions', longEpisode(12, 2)],
];

const entryIndex = (b: Bundle, type: string): number => (b.entry ?? []).findIndex((e) => e.resource?.resourceType === type);
const fullUrlOf = (b: Bundle, type: string): string => b.entry?.[entryIndex(b, type)]?.fullUrl as string;

describe('official R4 JSON Schema', () => {
  it('has questionnaires and episodes to check', () => {
    expect(questionnaires.length).toBeGreaterThanOrEqual(6);
    expect(episodes().length).toBe(5);
  });

  it.each(episodes())('accepts the mapped Bundle of %s and every entry resource', (_name, episode) => {
    const b = mapEpisode(episode);
    const errors = [
      ...r4SchemaErrors(b),
      ...(b.entry ?? []).flatMap((e, i) => r4SchemaErrors(e.resource as Resource).map((x) => `Bundle.entry[${i}].resource: ${x}`)),
    ];
    expect(errors).toEqual([]);
  });

  it.each(questionnaires)('accepts %s', (_file, q) => {
    expect(r4SchemaErrors(q)).toEqual([]);
  });

  it('reports an unknown element, a malformed date and a wrong type, in a resource and inside a Bundle', () => {
    const b = mapEpisode(completed());
    const k = entryIndex(b, 'Encounter');
    const encounter = b.entry?.[k]?.resource as unknown as Record<string, unknown>;
    encounter.mood = 'calm';
    (encounter.period as Record<string, unknown>).start = '31.12.2026';
    encounter.status = 7;
    const errors = r4SchemaErrors(encounter).join('\n');
    expect(errors).toContain('must NOT have additional properties {"additionalProperty":"mood"}');
    expect(errors).toContain('Encounter.period.start: must match pattern');
    expect(errors).toContain('Encounter.status: must be equal to one of the allowed values');
    expect(r4SchemaErrors(b)).not.toEqual([]);
  });
});

describe('R4 invariants (severity error) evaluated by fhirpath.js', () => {
  it.each(episodes())('hold on every element of the mapped Bundle of %s', (_name, episode) => {
    expect(r4InvariantFailures(mapEpisode(episode))).toEqual([]);
  });

  it.each(questionnaires)('hold on every element of %s', (_file, q) => {
    expect(r4InvariantFailures(q)).toEqual([]);
  });

  it('report a planted ctm-1 violation (onBehalfOf beside a urn:uuid PractitionerRole member) where it is', () => {
    const b = mapEpisode(completed());
    const k = entryIndex(b, 'CareTeam');
    (b.entry?.[k]?.resource as CareTeam).participant = [
      { member: { reference: fullUrlOf(b, 'Practitioner') }, onBehalfOf: { reference: fullUrlOf(b, 'Organization') } },
      { member: { reference: fullUrlOf(b, 'PractitionerRole') }, onBehalfOf: { reference: fullUrlOf(b, 'Organization') } },
    ];
    expect(r4InvariantFailures(b)).toEqual([expect.objectContaining({ key: 'ctm-1', at: `Bundle.entry[${k}].resource.participant[1]`, result: '[false]' })]);
  });

  it('report ctm-1 where the member is a Type/id reference to a PractitionerRole entry, and not for a Practitioner', () => {
    const team = (member: string): Bundle => ({
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { fullUrl: 'https://fhir.example.no/fhir/PractitionerRole/pr-1', resource: { resourceType: 'PractitionerRole', id: 'pr-1' } },
        { fullUrl: 'https://fhir.example.no/fhir/Practitioner/p-1', resource: { resourceType: 'Practitioner', id: 'p-1' } },
        { fullUrl: 'https://fhir.example.no/fhir/Organization/o-1', resource: { resourceType: 'Organization', id: 'o-1', name: 'Klinikk' } },
        {
          fullUrl: 'https://fhir.example.no/fhir/CareTeam/t-1',
          resource: { resourceType: 'CareTeam', id: 't-1', participant: [{ member: { reference: member }, onBehalfOf: { reference: 'Organization/o-1' } }] },
        },
      ],
    });
    expect(r4InvariantFailures(team('PractitionerRole/pr-1'))).toEqual([
      expect.objectContaining({ key: 'ctm-1', at: 'Bundle.entry[3].resource.participant[0]' }),
    ]);
    expect(r4InvariantFailures(team('Practitioner/p-1'))).toEqual([]);
  });

  it('read ref-1 as corrected (a logical reference passes) yet still report a local reference to nothing contained', () => {
    const e = structuredClone(completed());
    const b = mapEpisode(e);
    const k = entryIndex(b, 'Encounter');
    const encounter = b.entry?.[k]?.resource as unknown as Record<string, unknown>;
    encounter.serviceProvider = { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.2.101', value: '974557746' } };
    expect(r4InvariantFailures(b)).toEqual([]);
    encounter.serviceProvider = { reference: '#not-contained' };
    expect(r4InvariantFailures(b).map((f) => `${f.key} ${f.at}`)).toEqual([`ref-1 Bundle.entry[${k}].resource.serviceProvider`]);
  });

  it('reach data types, nested items, extensions and primitives (planted per-1, qrs-1, ext-1, ele-1)', () => {
    const b = mapEpisode(completed());
    const e = entryIndex(b, 'Encounter');
    const encounter = b.entry?.[e]?.resource as Encounter;
    encounter.period = { start: '2026-03-02T10:00:00+01:00', end: '2026-03-02T09:00:00+01:00' };
    const q = (b.entry ?? []).findIndex((x) => (x.resource as QuestionnaireResponse | undefined)?.item?.length);
    const qr = b.entry?.[q]?.resource as QuestionnaireResponse;
    qr.item?.push({ linkId: 'g', item: [{ linkId: 'g1', answer: [{ valueInteger: 1 }], item: [{ linkId: 'g1a' }] }] });
    const n = (qr.item?.length ?? 0) - 1;
    encounter.extension = [...(encounter.extension ?? []), { url: 'https://fhir.example.no/x', valueInteger: 1, extension: [{ url: 'y', valueInteger: 2 }] }];
    const x = (encounter.extension?.length ?? 0) - 1;
    (encounter as unknown as Record<string, unknown>).length = {};
    const found = r4InvariantFailures(b).map((f) => `${f.key} ${f.at}`);
    expect(found).toEqual(
      expect.arrayContaining([
        `per-1 Bundle.entry[${e}].resource.period`,
        `qrs-1 Bundle.entry[${q}].resource.item[${n}].item[0]`,
        `ext-1 Bundle.entry[${e}].resource.extension[${x}]`,
        `ele-1 Bundle.entry[${e}].resource.length`,
      ]),
    );
    expect(found.every((f) => /^(per-1|qrs-1|ext-1|ele-1) /.test(f))).toBe(true);
  });
});

describe('calculatedExpression of the published Questionnaires, by fhirpath.js, against score()', () => {
  const CALCULATED = 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression';

  const calculated = (items: QuestionnaireItem[] | undefined): [string, string][] =>
    (items ?? []).flatMap((it) => [
      ...(it.extension ?? []).filter((x) => x.url === CALCULATED).map((x): [string, string] => [it.linkId, x.valueExpression?.expression as string]),
      ...calculated(it.item),
    ]);

  const instrumentOf = (q: Questionnaire): InstrumentDefinition | undefined => Object.values(INSTRUMENTS).find((d) => d.questionnaireId === q.id);

  /** Questionnaires with calculated items, with their instrument. */
  const cases = questionnaires
    .map(([file, q]): [string, Questionnaire, InstrumentDefinition | undefined, [string, string][]] => [file, q, instrumentOf(q), calculated(q.item)])
    .filter(([, , , calc]) => calc.length > 0);

  it('covers every total and subscale of the instruments', () => {
    const expected = Object.values(INSTRUMENTS).flatMap((d) => [
      ...(d.total ? [`${d.questionnaireId} total`] : []),
      ...(d.subscales ?? []).map((s) => `${d.questionnaireId} ${s.code}`),
    ]);
    const found = cases.flatMap(([, q, , calc]) => calc.map(([linkId]) => `${q.id} ${linkId}`));
    expect(found.sort()).toEqual(expected.sort());
  });

  /** The QuestionnaireResponse of the episode path (responseItems) for `answers`. */
  const response = (instrument: InstrumentId, q: Questionnaire, answers: Record<string, number>): QuestionnaireResponse => ({
    resourceType: 'QuestionnaireResponse',
    questionnaire: q.url,
    status: 'completed',
    item: responseItems(instrument, answers, undefined),
  });

  // Synchronous: no async option, so fhirpath.js returns an array (or throws), never a Promise.
  const evaluate = (expression: string, qr: QuestionnaireResponse, q: Questionnaire): unknown[] =>
    fhirpath.evaluate(qr, expression, { resource: qr, questionnaire: q }, r4Model) as unknown[];

  it.each(cases)('%s: every calculated item equals score() on random complete answer sets', (_file, q, def, calc) => {
    expect(def).toBeDefined();
    const d = def as InstrumentDefinition;
    const answers = fc.record(Object.fromEntries(d.items.map((k) => [k, fc.integer({ min: d.min, max: d.max })])) as Record<string, fc.Arbitrary<number>>);
    fc.assert(
      fc.property(answers, (a) => {
        const result = score(d.id, a);
        const qr = response(d.id, q, a);
        for (const [linkId, expression] of calc) {
          const expected = linkId === 'total' ? result.total?.value : result.subscales?.find((s) => s.code === linkId)?.value;
          expect(expected, `${q.id} ${linkId}`).toBeTypeOf('number');
          expect([linkId, evaluate(expression, qr, q)]).toEqual([linkId, [expected]]);
        }
      }),
      { numRuns: 150 },
    );
  });

  it.each(cases)('%s: a calculated item stays empty while one of its items is unanswered (score() refuses such a set)', (_file, q, def, calc) => {
    const d = def as InstrumentDefinition;
    fc.assert(
      fc.property(fc.constantFrom(...d.items), fc.integer({ min: d.min, max: d.max }), (missing, value) => {
        const a = Object.fromEntries(d.items.map((k) => [k, value]));
        const qr = response(d.id, q, a);
        qr.item = qr.item?.filter((it) => it.linkId !== missing);
        expect(() => score(d.id, Object.fromEntries(Object.entries(a).filter(([k]) => k !== missing)))).toThrow();
        for (const [linkId, expression] of calc) {
          const usesMissing = new RegExp(`'${missing}'`).test(expression);
          if (usesMissing) expect([linkId, evaluate(expression, qr, q)]).toEqual([linkId, []]);
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('extracted Bundles ($extract of responses as a form renderer sends them)', () => {
  // Every assessment of the contract examples, as a renderer would export it: no bridge
  // identifier, no author, the subject given by the parent's national id.
  const rendererResponses = (): [string, QuestionnaireResponse][] =>
    exampleNames().flatMap((name) => {
      const e = example(name) as { parent: { nationalId: string } };
      return (mapEpisode(e).entry ?? [])
        .map((x) => x.resource)
        .filter((r): r is QuestionnaireResponse => r?.resourceType === 'QuestionnaireResponse')
        .map((qr): [string, QuestionnaireResponse] => {
          const { identifier: _i, author: _a, source: _s, meta: _m, ...rest } = structuredClone(qr);
          return [
            `${name} ${qr.questionnaire?.split('/').pop()} ${qr.identifier?.value}`,
            { ...rest, subject: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.1', value: e.parent.nationalId } } } as QuestionnaireResponse,
          ];
        });
    });

  it('has responses of every scored instrument to extract', () => {
    const instruments = new Set(rendererResponses().map(([, qr]) => qr.questionnaire));
    expect(instruments.size).toBe(5);
  });

  it.each(rendererResponses())("%s: the official R4 JSON Schema, every R4 invariant and the bridge's profiles accept it", (_name, qr) => {
    const b = extractResponse(qr);
    expect(b.entry?.length).toBeGreaterThan(1);
    expect(r4SchemaErrors(b)).toEqual([]);
    expect(r4InvariantFailures(b)).toEqual([]);
    expect(validateFhir(b).issue.filter((i) => i.severity === 'error')).toEqual([]);
  });
});
