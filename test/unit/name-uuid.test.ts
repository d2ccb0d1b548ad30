import fc from 'fast-check';
import { v5 as uuidv5 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { nameUuid, UUID_NAMESPACE } from '../../src/fhir/bundle-scope.ts';
import { mapEpisode } from '../../src/index.ts';
import { completed } from '../fixtures/examples.ts';

describe('name-based UUIDs (version 5)', () => {
  it('are the ones the uuid package derives, for ASCII, non-ASCII and empty keys', () => {
    for (const key of ['', 'Device|imh-bridge', 'Questionnaire|æøå ÆØÅ', 'PlanDefinition|x/y?z=1', '🙂|key'])
      expect(nameUuid(key)).toBe(uuidv5(key, UUID_NAMESPACE));
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 80 }), (key) => nameUuid(key) === uuidv5(key, UUID_NAMESPACE)),
      { numRuns: 500 },
    );
  });

  it('carry version 5 and the RFC variant', () => {
    expect(nameUuid('Device|imh-bridge')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('give the completed example the Provenance id it had with the uuid package', () => {
    // Pinned from the mapping before node:crypto replaced the package: servers already hold this id.
    const put = mapEpisode(completed()).entry?.filter((e) => e.request?.method === 'PUT' && !e.request.url.includes('?'));
    expect(put?.map((e) => e.request?.url)).toEqual(['Provenance/662e3e96-b365-568d-8e6a-090bacb2a7d9']);
  });
});
