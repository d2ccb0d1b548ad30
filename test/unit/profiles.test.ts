import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { validateFhir } from '../../src/fhir/validate.ts';
import { mapEpisode } from '../../src/index.ts';
import { resources } from '../fixtures/bundle.ts';
import { example, exampleNames } from '../fixtures/examples.ts';
import { longEpisode } from '../fixtures/generate.ts';

const root = resolve(import.meta.dirname, '../..');
const errors = (r: Resource) => validateFhir(r).issue.filter((i) => i.severity === 'error' || i.severity === 'fatal');

describe('published artefacts', () => {
  it('profiles/ and src/generated/ are what the FSH sources, R4 definitions and instrument definitions produce', () => {
    // Both scripts exit non-zero (and execFileSync throws) when a committed file is stale.
    execFileSync(process.execPath, ['scripts/build-profiles.mjs', '--check'], { cwd: root, stdio: 'pipe' });
    execFileSync(process.execPath, ['scripts/build-definitions.mjs', '--check'], { cwd: root, stdio: 'pipe' });
    execFileSync(process.execPath, ['scripts/build-questionnaires.ts', '--check'], { cwd: root, stdio: 'pipe' });
  }, 120_000);

  it('every StructureDefinition in profiles/ has a snapshot and our canonical URL', () => {
    const files = readdirSync(resolve(root, 'profiles')).filter((f) => f.startsWith('StructureDefinition-'));
    expect(files.length).toBeGreaterThanOrEqual(31);
    for (const f of files) {
      const sd = JSON.parse(readFileSync(resolve(root, 'profiles', f), 'utf8'));
      expect(sd.url).toBe(`https://imh-bridge.example.no/fhir/StructureDefinition/${sd.id}`);
      expect(sd.snapshot?.element?.length).toBeGreaterThan(0);
    }
  });

  it('every CodeSystem, ValueSet and ConceptMap in mappings/ is valid R4', () => {
    const files = readdirSync(resolve(root, 'mappings')).filter((f) => /^(CodeSystem|ValueSet|ConceptMap)-/.test(f));
    expect(files.length).toBeGreaterThan(40);
    for (const f of files) expect([f, errors(JSON.parse(readFileSync(resolve(root, 'mappings', f), 'utf8')))]).toEqual([f, []]);
  });
});

describe('mapped examples validate against R4 and our profiles', () => {
  it.each(exampleNames())('%s: the Bundle and every resource in it', (name) => {
    const bundle = mapEpisode(example(name));
    expect(errors(bundle)).toEqual([]);
    for (const r of resources(bundle)) expect([r.resourceType, errors(r as Resource)]).toEqual([r.resourceType, []]);
  });

  it('an upper-case SHA-256 from the journal is kept verbatim and still validates', () => {
    const e = example('completed-mother.episode.json');
    const upper = e.sessions[1].clips[0].sha256.toUpperCase();
    e.sessions[1].clips[0].sha256 = upper;
    const bundle = mapEpisode(e);
    expect(JSON.stringify(bundle)).toContain(upper);
    expect(errors(bundle)).toEqual([]);
  });

  it("a RelatedPerson without the parent's national id breaks imh-related-person", () => {
    const bundle = mapEpisode(example('completed-mother.episode.json'));
    const related = resources(bundle, 'RelatedPerson')[0] as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    related.identifier = related.identifier.slice(0, 1);
    expect(JSON.stringify(errors(related as Resource))).toContain('imh-related-person-national-id');
  });

  it('a generated 50-session episode validates too', () => {
    expect(errors(mapEpisode(longEpisode(50)))).toEqual([]);
  });

  it('the validator catches a broken mapped resource (so the checks above can fail)', () => {
    const bundle = mapEpisode(example('completed-mother.episode.json'));
    const clip = resources(bundle, 'DocumentReference').find((r) => r.meta?.profile?.[0]?.endsWith('/imh-video-clip')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    clip.content[0].attachment.extension[0].valueString = 'not-a-sha256';
    delete clip.status;
    const where = errors(bundle)
      .flatMap((i) => i.expression ?? [])
      .join(' ');
    expect(where).toMatch(/entry\[\d+\]\.resource\.status/);
    expect(JSON.stringify(validateFhir(bundle))).toMatch(/sha256|imh-attachment/);
  });
});
