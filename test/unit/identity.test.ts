import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEV_IDENTITY, type IdentityOptions } from '../../src/fhir/identity.ts';
import { mapEpisode } from '../../src/index.ts';
import { submitEpisode } from '../../src/sync/deliver.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { resources } from '../fixtures/bundle.ts';
import { completed, plannedMinimal } from '../fixtures/examples.ts';

const CLINIC: IdentityOptions = { namespace: 'https://fhir.clinic.example/sid', secret: 'a-synthetic-test-secret-0123456789abcdef' };
const OTHER_SECRET: IdentityOptions = { ...CLINIC, secret: 'another-synthetic-test-secret-9876543210' };

/** Every identifier system in a Bundle. */
const systems = (b: ReturnType<typeof mapEpisode>): string[] =>
  resources(b).flatMap((r) => (Array.isArray(r.identifier) ? r.identifier : r.identifier ? [r.identifier] : []).map((i: { system: string }) => i.system));

describe("the deployment's identifier namespace", () => {
  it('puts every business identifier under the configured namespace, and none under the development one', () => {
    const b = mapEpisode(completed(), { identity: CLINIC });
    const ours = systems(b).filter((s) => !s.startsWith('urn:oid:'));
    expect(ours.length).toBeGreaterThan(20);
    for (const s of ours) expect(s.startsWith(`${CLINIC.namespace}/`)).toBe(true);
    expect(JSON.stringify(b)).not.toContain(`${DEV_IDENTITY.namespace}/`);
  });

  it('is deterministic for the same settings', () => {
    expect(JSON.stringify(mapEpisode(completed(), { identity: CLINIC }))).toBe(JSON.stringify(mapEpisode(completed(), { identity: CLINIC })));
  });
});

describe('pseudonyms derived from national ids', () => {
  it('are keyed: another secret gives other newborn, relationship and condition identifiers, and other fullUrls', () => {
    const a = mapEpisode(completed(), { identity: CLINIC });
    const b = mapEpisode(completed(), { identity: OTHER_SECRET });
    const derived = (x: typeof a) =>
      resources(x)
        .filter((r) => ['RelatedPerson', 'Condition'].includes(r.resourceType))
        .map((r) => r.identifier[0].value);
    expect(derived(a)).toHaveLength(2);
    for (const v of derived(a)) expect(derived(b)).not.toContain(v);
    const urls = (x: typeof a) => new Set((x.entry ?? []).map((e) => e.fullUrl));
    const shared = [...urls(a)].filter((u) => urls(b).has(u));
    expect(shared).toHaveLength(1); // only the Provenance, whose id derives from the episode id alone

    const newborn = (identity: IdentityOptions) =>
      resources(mapEpisode(plannedMinimal(), { identity }), 'Patient').find((p) => p.meta.profile[0].endsWith('imh-infant'))?.identifier[0].value;
    expect(newborn(CLINIC)).not.toBe(newborn(OTHER_SECRET));
  });

  it('cannot be recomputed from the national id alone (no plain hash of the key)', () => {
    const e = plannedMinimal();
    const value = resources(mapEpisode(e, { identity: CLINIC }), 'Patient').find((p) => p.meta.profile[0].endsWith('imh-infant'))?.identifier[0].value;
    const key = `infant|${e.parent.nationalId}|${e.infants[0].birthDate}|0`;
    for (const algo of ['sha256', 'sha1', 'md5']) expect(createHash(algo).update(key).digest('hex')).not.toContain(value);
  });

  it('key the per-parent delivery lane, so queues and storage carry no national id or plain hash of one', async () => {
    const store = new MemoryStore();
    const deps = { store, now: () => 0, newId: () => crypto.randomUUID() };
    const a = await submitEpisode(completed(), deps, { identity: CLINIC });
    const b = await submitEpisode(completed(), deps, { identity: OTHER_SECRET });
    expect(a.parentKey).not.toBe(b.parentKey);
    const nationalId = completed().parent.nationalId;
    expect(a.parentKey).not.toContain(nationalId);
    const plain = createHash('sha256').update(`parent|974557746|${nationalId}`).digest('hex');
    expect(a.parentKey).not.toBe(plain);
  });
});
