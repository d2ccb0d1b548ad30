import { describe, expect, it } from 'vitest';
import { checkNationalId } from '../../src/domain/identifiers.ts';
import { mapEpisode } from '../../src/index.ts';
import { countByType } from '../fixtures/bundle.ts';
import { longEpisode, syntheticNationalId } from '../fixtures/generate.ts';

describe('synthetic test data', () => {
  it('makes valid synthetic national ids with month + 80', () => {
    for (let i = 0; i < 50; i++) {
      const id = syntheticNationalId('1994-03-02', i);
      expect(id.slice(0, 6)).toBe('028394');
      expect(checkNationalId(id)).toEqual({ kind: 'fnr', synthetic: true });
    }
  });

  it('builds long episodes that map to one Encounter and Procedure per session', () => {
    const counts = countByType(mapEpisode(longEpisode(50)));
    expect(counts.Encounter).toBe(50);
    expect(counts.Procedure).toBe(50);
    expect(counts.DocumentReference).toBe(25);
  });
});

describe('short synthetic episodes', () => {
  it('map for any number of sessions', () => {
    for (const n of [1, 2, 5, 8, 12]) expect(() => mapEpisode(longEpisode(n))).not.toThrow();
  });
});
