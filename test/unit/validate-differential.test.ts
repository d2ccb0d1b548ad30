/**
 * Differential tests: the generated validators (src/fhir/validate-fast.ts) against the
 * reference (validateFhir, over @medplum/core, and fhirpath.js for the R4 invariants). The fast
 * path may only ever say "valid" where the reference says "All OK"; everywhere else it must
 * hand over, so that the answer is the reference's to the letter. Every check here compares
 * the two; any disagreement fails.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { Bundle, BundleEntry, OperationOutcome, Resource } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateFhir } from '../../src/fhir/validate.ts';
import { fastPathStats, resetFastPathStats, undecided, validateFast } from '../../src/fhir/validate-fast.ts';
import { notCompiled } from '../../src/generated/validators.ts';
import { mapEpisode } from '../../src/mapping/bundle.ts';
import conformanceEpisode from '../fixtures/conformance-episode.json' with { type: 'json' };
import { completed, example, exampleNames, plannedMinimal } from '../fixtures/examples.ts';
import { longEpisode } from '../fixtures/generate.ts';
import { r4InvariantFailures } from '../fixtures/r4-independent.ts';

const ALL_OK = { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', details: { text: 'All OK' } }] };
const clone = <T>(v: T): T => structuredClone(v);
type Any = any;

/**
 * The oracle: both validators give the same outcome, and when the generated ones decide alone,
 * the reference says "All OK". Returns the reference's outcome.
 */
async function agree(resource: Resource): Promise<OperationOutcome> {
  const reference = validateFhir(clone(resource));
  const fast = await validateFast(clone(resource));
  expect(fast).toEqual(reference);
  if (undecided(clone(resource)) === undefined) expect(reference).toEqual(ALL_OK);
  return reference;
}

const errorsOf = (o: OperationOutcome): string[] =>
  (o.issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'warning').map((i) => `${i.expression?.[0]}: ${i.details?.text}`);

function entry(b: Bundle, type: string, n = 0): Any {
  const found = (b.entry ?? []).filter((e) => e.resource?.resourceType === type)[n];
  if (!found?.resource) throw new Error(`no ${type} #${n} in the Bundle`);
  return found.resource;
}
const fullUrlOf = (b: Bundle, type: string, n = 0): string => {
  const r = entry(b, type, n);
  return (b.entry ?? []).find((e) => e.resource === r)?.fullUrl as string;
};

describe('generated validators agree with the reference', () => {
  const mapped: [string, Bundle][] = [
    ...exampleNames().map((n): [string, Bundle] => [n, mapEpisode(example(n))]),
    ['conformance episode (held-back fixture)', mapEpisode(conformanceEpisode)],
    ['50-session episode', mapEpisode(longEpisode(50))],
  ];

  it.each(mapped)('decides the mapped %s alone, valid as the reference and fhirpath.js say', async (_name, bundle) => {
    expect(undecided(bundle)).toBeUndefined();
    expect(await agree(bundle)).toEqual(ALL_OK);
    expect(r4InvariantFailures(bundle as Any)).toEqual([]);
  });

  it.each(mapped)('agrees on each entry of the mapped %s validated alone', async (_name, bundle) => {
    for (const e of bundle.entry ?? []) await agree(e.resource as Resource);
  });

  it('agrees on Bundles of generated episodes (fast-check)', async () => {
    resetFastPathStats();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 400 }), async (sessions, variant) => {
        const b = mapEpisode(longEpisode(sessions, variant));
        expect(await agree(b)).toEqual(ALL_OK);
      }),
      { numRuns: 15 },
    );
    // All of them decided without the reference.
    expect(fastPathStats.fallback).toBe(0);
    expect(fastPathStats.fast).toBeGreaterThanOrEqual(15);
  });

  it('counts what it hands over, and why', async () => {
    resetFastPathStats();
    const b = mapEpisode(plannedMinimal()) as Any;
    entry(b, 'Organization').active = 'yes';
    await validateFast(b);
    expect(fastPathStats).toMatchObject({ fast: 0, fallback: 1 });
    expect([...fastPathStats.reasons.keys()]).toEqual([expect.stringMatching(/^Organization\.active: /)]);
  });

  it('src/generated/validators.ts is what scripts/build-validators.ts produces (--check)', () => {
    execFileSync(process.execPath, ['scripts/build-validators.ts', '--check'], { cwd: resolve(import.meta.dirname, '../..'), stdio: 'pipe' });
  }, 120_000);

  it('keeps at most 32 distinct fallback reasons, however varied the input', async () => {
    resetFastPathStats();
    const profile = 'https://imh-bridge.example.no/fhir/StructureDefinition/imh-organization';
    for (let i = 0; i < 40; i++)
      await validateFast({ resourceType: 'Organization', meta: { profile: [profile] }, [`unknown${i}`]: true } as unknown as Resource);
    expect(fastPathStats.fallback).toBe(40);
    expect(fastPathStats.reasons.size).toBe(33);
    expect(fastPathStats.reasons.get('other')).toBe(8);
    expect([...fastPathStats.reasons.values()].reduce((a, b) => a + b, 0)).toBe(40);
  });

  it('names the invariants it does not compile', () => {
    // Each falls back when a value it applies to is present; none is met by a mapped Bundle.
    expect(Object.keys(notCompiled).sort()).toEqual(['tim-9', 'txt-1', 'txt-2']);
  });
});

/** One planted defect per rule kind, on the completed example's Bundle. */
const defects: [string, (b: Any) => void][] = [
  ['cardinality: a required element missing', (b) => void delete entry(b, 'Encounter').status],
  ['cardinality: an array where one value is allowed', (b) => void (entry(b, 'Encounter').status = ['finished'])],
  ['cardinality: more slice values than allowed', (b) => void entry(b, 'Encounter').extension.push(clone(entry(b, 'Encounter').extension[0]))],
  [
    // A list the profile narrows (derivedFrom 1..1 on a score Observation): one value too many.
    'cardinality: more values in a list than the profile allows',
    (b) => {
      const o = (b.entry as BundleEntry[]).map((e) => e.resource as Any).find((r) => r?.resourceType === 'Observation' && r.derivedFrom?.length === 1);
      o.derivedFrom.push(clone(o.derivedFrom[0]));
    },
  ],
  ['type: a number for a string', (b) => void (entry(b, 'Organization').name = 42)],
  ['type: a dateTime that is no date', (b) => void (entry(b, 'Observation').effectiveDateTime = '2026-02-30')],
  ['type: an unknown element', (b) => void (entry(b, 'Patient').nickname = 'x')],
  ['type: a null value', (b) => void (entry(b, 'Organization').active = null)],
  ['type: a control character in a string', (b) => void (entry(b, 'Organization').name = 'a\u0001b')],
  [
    'choice type: a value type the profile does not allow',
    (b) => {
      const o = entry(b, 'Observation');
      for (const k of Object.keys(o)) if (k.startsWith('value')) delete o[k];
      o.valueString = 'twelve';
    },
  ],
  ['choice type: two values for one choice element', (b) => void (entry(b, 'Observation').effectivePeriod = { start: '2026-01-12' })],
  [
    'fixed/pattern: an extension value that differs from its fixed url',
    (b) => void (entry(b, 'Encounter').extension[0].url = 'https://imh-bridge.example.no/fhir/StructureDefinition/imh-session-attendancex'),
  ],
  ['fixed/pattern: a category that misses the pattern (slice count)', (b) => void (entry(b, 'Observation').category[0].coding[0].code = 'exam')],
  [
    'slice: a second organisation number',
    (b) => {
      const o = entry(b, 'Organization');
      o.identifier.push({ ...o.identifier[0], value: '974557754' });
    },
  ],
  ['binding: a status outside its required ValueSet', (b) => void (entry(b, 'Encounter').status = 'wandering')],
  ['binding: a coding outside the profile ValueSet', (b) => void (entry(b, 'Encounter').extension[0].valueCoding.code = 'teleported')],
  [
    'invariant: an identifier system the profile does not allow',
    (b) => void (entry(b, 'EpisodeOfCare').identifier[0].system = 'https://elsewhere.example/episode'),
  ],
  ['invariant: security labels removed', (b) => void (entry(b, 'CareTeam').meta.security = [entry(b, 'CareTeam').meta.security[0]])],
  [
    'invariant with resolve(): onBehalfOf for a member that is no Practitioner',
    (b) => {
      const ct = entry(b, 'CareTeam');
      ct.participant[0] = { member: { reference: fullUrlOf(b, 'RelatedPerson') }, onBehalfOf: { reference: fullUrlOf(b, 'Organization') } };
    },
  ],
  ['reference target type: a subject that is an Organization', (b) => void (entry(b, 'Encounter').subject = { reference: fullUrlOf(b, 'Organization') })],
  ['reference: to no entry of the Bundle', (b) => void (entry(b, 'Encounter').subject = { reference: 'urn:uuid:00000000-0000-4000-8000-000000000000' })],
  [
    'profile: unknown to the bridge',
    (b) => void (entry(b, 'Organization').meta.profile = ['https://imh-bridge.example.no/fhir/StructureDefinition/imh-nothing']),
  ],
  [
    'profile: for another resource type',
    (b) => void (entry(b, 'Organization').meta.profile = ['https://imh-bridge.example.no/fhir/StructureDefinition/imh-parent']),
  ],
  [
    'extension: a sub-extension value of the wrong type',
    (b) => {
      const closing = entry(b, 'EpisodeOfCare').extension[0];
      closing.extension[0] = { url: 'closedOn', valueString: '2026-05-04' };
    },
  ],
  [
    'extension: one of ours the bridge does not know',
    (b) => void entry(b, 'Encounter').extension.push({ url: 'https://imh-bridge.example.no/fhir/StructureDefinition/imh-unknown', valueString: 'x' }),
  ],
  ['Bundle: an entry of a transaction without its request', (b) => void delete b.entry[0].request],
  ['Bundle: an entry resource without a resourceType', (b) => void delete b.entry[1].resource.resourceType],
  ['profile: a meta.profile that is not a string', (b) => void (entry(b, 'Organization').meta.profile = [0])],
];

describe('planted defects: the generated validators hand over, the answer is the reference', () => {
  const base = mapEpisode(completed());

  it.each(defects)('%s', async (_name, plant) => {
    const b = clone(base) as Any;
    plant(b);
    const reference = await agree(b);
    expect(reference).not.toEqual(ALL_OK);
    expect(errorsOf(reference).length).toBeGreaterThan(0);
    expect(undecided(b)).toBeDefined();
  });

  it('agrees where the reference is lenient: an empty array', async () => {
    const b = clone(base) as Any;
    entry(b, 'CareTeam').participant = [];
    await agree(b);
    expect(undecided(b)).toBeDefined();
  });

  it.each([
    ['planned minimal', () => mapEpisode(plannedMinimal())],
    ['completed', () => mapEpisode(completed())],
  ])(
    'agrees under random damage to the valid %s Bundle (fast-check)',
    async (_name, make) => {
      const small = make();
      const paths: (string | number)[][] = [];
      const collect = (v: unknown, p: (string | number)[]): void => {
        if (Array.isArray(v)) v.forEach((x, i) => collect(x, [...p, i]));
        else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) collect(x, [...p, k]);
        if (p.length > 2) paths.push(p);
      };
      collect(small, []);
      const damage = fc.oneof(
        fc.constant(undefined),
        fc.constant(null),
        fc.constant(''),
        fc.constant([]),
        fc.constant({}),
        fc.boolean(),
        fc.integer(),
        fc.double({ noNaN: true }),
        fc.string({ maxLength: 5 }),
        fc.constantFrom('2026-13-01', 'urn:uuid:00000000-0000-4000-8000-000000000000', 'Patient/x', 'final', 'http://loinc.org'),
      );
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...paths), damage, async (path, value) => {
          const b = clone(small) as Any;
          let parent = b;
          for (const k of path.slice(0, -1)) parent = parent[k];
          const last = path.at(-1) as string | number;
          if (value === undefined) {
            if (Array.isArray(parent)) parent.splice(last as number, 1);
            else delete parent[last];
          } else parent[last] = value;
          await agree(b);
        }),
        { numRuns: Number(process.env.DIFFERENTIAL_RUNS ?? 60) },
      );
    },
    180_000,
  );
});
