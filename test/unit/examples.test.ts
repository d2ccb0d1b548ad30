/**
 * The examples the repository carries (examples/): copies of the episode format's own examples,
 * a renderer-shaped QuestionnaireResponse per published Questionnaire, and an NDJSON file. A
 * user's clone has only these, so they must stay true to the contract and to the code.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Bundle, Observation, QuestionnaireResponse, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { parseEpisode } from '../../src/domain/parse.ts';
import { QUESTIONNAIRE_IDS, questionnaireForUrl } from '../../src/instruments/questionnaires.ts';
import { extract } from '../../src/instruments/sdc-extract.ts';
import { mapEpisode } from '../../src/mapping/bundle.ts';
import { EXAMPLES_DIR, example, exampleNames } from '../fixtures/examples.ts';

const root = resolve(import.meta.dirname, '../..');
/** The episode format's own examples, where this checkout sits beside the shared contract. */
const CONTRACT_EXAMPLES = resolve(root, '../shared/contract/examples');

const resources = (b: Bundle) => (b.entry ?? []).map((e) => e.resource as Resource);
/** What a score says, whatever identity it has: its code, value and interpretation. */
const scoreKey = (o: Observation) =>
  JSON.stringify([o.code.coding?.[0]?.code, o.valueQuantity?.value ?? o.valueInteger ?? o.valueCodeableConcept, o.interpretation]);

describe('examples/', () => {
  it('holds byte-identical copies of every example of the episode format', (ctx) => {
    if (!existsSync(CONTRACT_EXAMPLES)) {
      console.warn(`SKIPPED: ${CONTRACT_EXAMPLES} does not exist here, so the copies in examples/ cannot be compared with the contract's examples`);
      ctx.skip();
      return;
    }
    const contract = readdirSync(CONTRACT_EXAMPLES).sort();
    expect(contract.length).toBeGreaterThan(0);
    for (const name of contract) {
      const copy = join(EXAMPLES_DIR, name);
      expect(existsSync(copy), `examples/${name} is missing`).toBe(true);
      expect(readFileSync(copy).equals(readFileSync(join(CONTRACT_EXAMPLES, name))), `examples/${name} differs from the contract's`).toBe(true);
    }
    // And no episode example of our own that the contract does not have.
    expect(exampleNames()).toEqual(contract.filter((f) => f.endsWith('.episode.json')));
  });

  it('every example episode is accepted and mapped', () => {
    expect(exampleNames()).toHaveLength(3);
    for (const name of exampleNames()) expect(mapEpisode(example(name)).type).toBe('transaction');
  });

  it('the derived examples are what scripts/build-examples.ts builds from the episodes', () => {
    // Exit status 1 with the stale file named when one differs.
    execFileSync(process.execPath, ['scripts/build-examples.ts', '--check'], { cwd: root, stdio: 'pipe' });
  });

  it('episodes.ndjson has every example episode, one valid episode per line', () => {
    const lines = readFileSync(join(EXAMPLES_DIR, 'episodes.ndjson'), 'utf8')
      .split('\n')
      .filter((l) => l.trim());
    expect(lines.length).toBe(exampleNames().length);
    const ids = lines.map((l) => parseEpisode(JSON.parse(l)).episodeId);
    expect(ids.sort()).toEqual(
      exampleNames()
        .map((n) => example(n).episodeId)
        .sort(),
    );
  });

  describe('a QuestionnaireResponse per published Questionnaire, as a renderer exports it', () => {
    const response = (id: string): QuestionnaireResponse => JSON.parse(readFileSync(join(EXAMPLES_DIR, `${id}.response.json`), 'utf8'));

    it.each([...QUESTIONNAIRE_IDS])('%s: no bridge identifier, the subject by national id, extracted without warnings', (id) => {
      const qr = response(id);
      expect(questionnaireForUrl(qr.questionnaire as string)?.id).toBe(id);
      expect(qr.identifier).toBeUndefined();
      expect(qr.id).toBeUndefined();
      expect(qr.subject?.identifier?.system).toBe('urn:oid:2.16.578.1.12.4.1.4.1');
      const { bundle, issues } = extract(qr);
      expect(issues).toEqual([]);
      expect(resources(bundle).filter((r) => r.resourceType === 'QuestionnaireResponse')).toHaveLength(1);
    });

    it.each(['epds', 'phq-9', 'gad-7', 'prfq', 'pdi-rf'])('%s gives the scores the episode path gives for the same administration', (id) => {
      const qr = response(id);
      const extracted = resources(extract(qr).bundle).filter((r): r is Observation => r.resourceType === 'Observation');
      expect(extracted.length).toBeGreaterThan(0);
      // The administration it was built from: same parent, instrument and day.
      const source = exampleNames()
        .map((n) => example(n))
        .find((e) => e.parent.nationalId === qr.subject?.identifier?.value);
      const assessment = source.assessments.find(
        (a: { instrument: string; completedOn: string }) => a.instrument.toLowerCase() === id && a.completedOn === qr.authored?.slice(0, 10),
      );
      expect(assessment).toBeDefined();
      const fromEpisode = resources(mapEpisode(source)).filter(
        (r): r is Observation => r.resourceType === 'Observation' && !!r.identifier?.[0]?.value?.startsWith(`${source.episodeId}/${assessment.assessmentId}/`),
      );
      expect(extracted.map(scoreKey).sort()).toEqual(fromEpisode.map(scoreKey).sort());
    });

    it('the EPDS example has a positive self-harm item and raises a Flag', () => {
      const flags = resources(extract(response('epds')).bundle).filter((r) => r.resourceType === 'Flag');
      expect(flags).toHaveLength(1);
    });
  });
});
