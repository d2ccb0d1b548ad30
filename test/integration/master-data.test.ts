/**
 * Delivering to a hospital FHIR server that already holds the people and the clinic. The
 * hospital wrote them (not the bridge) with more than the bridge knows: an address, its own
 * EHR identifier, a general practitioner, phones, an alias. After the example episodes are
 * delivered, as one transaction each and as ordered writes, everything the hospital had is
 * still there as it was, the bridge has added only what was missing, nothing is duplicated,
 * and a re-send reports that it wrote nothing.
 */
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { NO } from '../../src/fhir/systems.ts';
import { MASTER_DATA_TYPES } from '../../src/fhir/write-semantics.ts';
import { createApp } from '../../src/http/app.ts';
import { clearCapabilityCache, entryKey } from '../../src/sync/apply.ts';
import { FhirTargetClient } from '../../src/sync/client.ts';
import { type DeliveryDeps, submitEpisode } from '../../src/sync/deliver.ts';
import { LocalQueue } from '../../src/sync/local-queue.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService } from '../../src/sync/service.ts';
import { syncOnce } from '../../src/sync/sync-once.ts';
import type { Job } from '../../src/sync/types.ts';
import { activeFather, completed, plannedMinimal } from '../fixtures/examples.ts';
import { type FlakyProxy, startFlakyProxy } from '../fixtures/flaky-proxy.ts';
import { clinicBundle, isConsentRefusal } from './engine-bundles.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const EHR = 'urn:example:hospital-ehr-patient-id';
const RATER_HPR = '7700011';

/** The completed example with one assessment rated by a clinician given by HPR number alone. */
function completedWithRater(): Json {
  const e = completed();
  const a = e.assessments.find((x: Json) => x.rater);
  a.rater = { hprNumber: RATER_HPR };
  return e;
}

const episodes = (): Json[] => [completedWithRater(), activeFather(), plannedMinimal()];

/** What "the hospital" wrote before the bridge ever sent anything (synthetic data). */
function hospitalRecords(parentNationalId: string, gpId: string): Record<string, Json> {
  return {
    parent: {
      resourceType: 'Patient',
      identifier: [
        { system: EHR, value: 'EHR-000123' },
        { system: NO.fnr, value: parentNationalId },
      ],
      name: [{ use: 'official', family: 'Hospitalregistrert', given: ['Kari', 'Testa'] }],
      address: [{ use: 'home', line: ['Testveien 1'], postalCode: '5000', city: 'Bergen' }],
      generalPractitioner: [{ reference: `Practitioner/${gpId}` }],
    },
    therapist: {
      resourceType: 'Practitioner',
      identifier: [{ system: NO.hpr, value: '9144889' }],
      name: [{ family: 'Haugen', given: ['Ingrid', 'M.'] }],
      telecom: [{ system: 'phone', value: '+47 55 11 11 11', use: 'work' }],
    },
    rater: {
      resourceType: 'Practitioner',
      identifier: [{ system: NO.hpr, value: RATER_HPR }],
      name: [{ family: 'Vurderer', given: ['Siri'] }],
    },
    // Known to the hospital by HPR number and phone only: the bridge adds the name.
    fatherTherapist: {
      resourceType: 'Practitioner',
      identifier: [{ system: NO.hpr, value: '8512377' }],
      telecom: [{ system: 'phone', value: '+47 55 33 33 33' }],
    },
    clinic: {
      resourceType: 'Organization',
      identifier: [{ system: NO.orgNumber, value: '974557746' }],
      name: 'BUP Vest, sped- og småbarnsteam (hospital register)',
      alias: ['Småbarnsteamet'],
      telecom: [{ system: 'phone', value: '+47 55 22 22 22' }],
    },
  };
}

async function fhir<T = Json>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}/${path}`, {
    method,
    headers: { 'content-type': 'application/fhir+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status}`);
  return (await res.json()) as T;
}

/** How many resources the server has for one entry's condition (or `Type/id`). */
async function matches(base: string, key: string): Promise<number> {
  if (!key.includes('?')) return (await fetch(`${base}/${key}`)).status === 200 ? 1 : 0;
  return (await fhir<{ total: number }>(base, 'GET', `${key}&_summary=count`)).total;
}

/** One resource per distinct write key across all bundles. */
function expectedCounts(bundles: Bundle[]): Record<string, number> {
  const seen = new Map<string, string>();
  for (const b of bundles) for (const e of b.entry ?? []) seen.set(entryKey(e), (e.resource as Resource).resourceType);
  const out: Record<string, number> = {};
  for (const type of seen.values()) out[type] = (out[type] ?? 0) + 1;
  return out;
}

/** Every element the hospital wrote is there unchanged; identifiers may have gained entries after its own. */
function expectKept(now: Json, before: Json): void {
  for (const [k, v] of Object.entries(before)) {
    if (k === 'meta') continue;
    if (k === 'identifier') expect(now.identifier.slice(0, v.length), `${before.resourceType}.identifier`).toEqual(v);
    else expect(now[k], `${before.resourceType}.${k}`).toEqual(v);
  }
}

describe.each([
  ['as one transaction per episode', true],
  ['as ordered writes (server without transactions)', false],
])('delivering to a server that already holds the master data, %s', (_name, transactions) => {
  let sandbox: Sandbox;
  let proxy: FlakyProxy;
  let seeded: Record<string, Json>;
  const store = new MemoryStore();
  let deps: DeliveryDeps;
  const inputs = episodes();
  const bundles = inputs.map((e) => clinicBundle(e));
  // Each send of a declined consent is a refusal, audited on the clinic's server.
  const refusals = inputs.filter((e) => isConsentRefusal(e)).length;

  beforeAll(async () => {
    clearCapabilityCache();
    sandbox = await startSandbox({ port: 0, transactions });
    proxy = await startFlakyProxy({ target: sandbox.baseUrl });
    const client = new FhirTargetClient(proxy.baseUrl, { fetch: (...a) => fetch(...a), timeoutMs: 2000 });
    deps = {
      store,
      clientFor: () => client,
      now: Date.now,
      random: () => 0.5,
      newId: () => crypto.randomUUID(),
      policy: { maxAttempts: 10, baseDelayMs: 10, maxDelayMs: 50, retryAfterCapMs: 100 },
    };
    // The hospital's own records, written straight to the server.
    const gp = await fhir(sandbox.baseUrl, 'POST', 'Practitioner', {
      resourceType: 'Practitioner',
      identifier: [{ system: NO.hpr, value: '1234567' }],
      name: [{ family: 'Fastlege', given: ['Per'] }],
    });
    seeded = {};
    for (const [k, r] of Object.entries(hospitalRecords(inputs[0]?.parent.nationalId, gp.id)))
      seeded[k] = await fhir(sandbox.baseUrl, 'POST', r.resourceType, r);
    seeded.gp = gp;
  });
  afterAll(async () => {
    await proxy?.close();
    await sandbox?.close();
    clearCapabilityCache();
  });

  const deliver = async (es: Json[]): Promise<Job[]> => {
    const queue = new LocalQueue(deps);
    const jobs: Job[] = [];
    for (const e of es) {
      const job = await submitEpisode(e, deps);
      jobs.push(job);
      queue.enqueue(job.id, job.parentKey);
    }
    await queue.drain();
    return Promise.all(jobs.map(async (j) => (await store.getJob(j.id)) as Job));
  };

  it('keeps every element the hospital had, adds only what was missing, duplicates nothing', async () => {
    // The first episode alone, so its counts are known.
    const [first] = await deliver([inputs[0] as Json]);
    expect(first?.status).toBe('delivered');
    const n = bundles[0]?.entry?.length as number;
    // Matched: the parent, the therapist, the rater and the clinic. The parent gained
    // telecom, gender and birth date and the clinic its RESH id; the practitioners had all.
    expect(first?.targets.clinic?.counts).toEqual({ created: n - 4, updated: 2, unchanged: 2 });

    // The others, while the answer to the first PATCH (the father's therapist gets a name) is
    // lost after the server applied it: the retry finds it done and adds nothing twice.
    proxy.setApplies((r) => r.method === 'PATCH');
    proxy.enqueue('apply-then-drop');
    const rest = await deliver(inputs.slice(1));
    expect(proxy.counts['apply-then-drop']).toBe(1);
    proxy.setApplies(undefined);
    expect(rest.map((j) => j.status)).toEqual(['delivered', 'delivered']);
    expect(rest.map((j) => j.attempts)).toContain(2);

    // 1. Every element the hospital wrote is intact.
    const now: Record<string, Json> = {};
    for (const [k, r] of Object.entries(seeded)) now[k] = await fhir(sandbox.baseUrl, 'GET', `${r.resourceType}/${r.id}`);
    for (const k of Object.keys(seeded)) expectKept(now[k] as Json, seeded[k] as Json);

    // 2. What the bridge knew and the server lacked was added, and nothing else.
    const bridgeParent = (bundles[0]?.entry ?? []).find((e) => e.resource?.resourceType === 'Patient' && entryKey(e).includes(inputs[0]?.parent.nationalId))
      ?.resource as Json;
    expect(now.parent?.telecom).toEqual(bridgeParent.telecom);
    expect(now.parent?.gender).toBe(bridgeParent.gender);
    expect(now.parent?.birthDate).toBe(bridgeParent.birthDate);
    expect(now.parent?.identifier).toHaveLength(2); // its fnr was there: no second one
    expect(now.clinic?.identifier).toEqual([...(seeded.clinic?.identifier ?? []), { system: NO.resh, value: inputs[0]?.clinic.reshId }]);
    expect(now.therapist?.meta.versionId).toBe(seeded.therapist?.meta.versionId);
    expect(now.rater?.meta.versionId).toBe(seeded.rater?.meta.versionId);
    expect(now.gp).toEqual(seeded.gp);
    const bridgeFatherTherapist = (bundles[1]?.entry ?? []).find((e) => entryKey(e).endsWith('|8512377') && e.resource?.resourceType === 'Practitioner')
      ?.resource as Json;
    expect(now.fatherTherapist?.name).toEqual(bridgeFatherTherapist.name);
    expect(now.fatherTherapist?.identifier).toHaveLength(1);

    // 3. Nothing duplicated: one resource per write key, and nothing beyond them but the GP.
    for (const b of bundles) for (const e of b.entry ?? []) expect(await matches(sandbox.baseUrl, entryKey(e)), entryKey(e)).toBe(1);
    const expected = expectedCounts(bundles);
    expected.Practitioner = (expected.Practitioner ?? 0) + 1;
    expected.AuditEvent = refusals;
    expect(sandbox.repo.countByType()).toEqual(expected);

    // 4. The episode's resources point at the hospital's resources.
    const ledger = await store.getLedger('local', first?.episodeKey as string, 'clinic');
    const idOf = (key: string) => ledger?.resources.find((r) => r.key === key)?.id;
    const parentEntry = (bundles[0]?.entry ?? []).find((e) => e.resource === bridgeParent);
    expect(idOf(entryKey(parentEntry as object))).toBe(seeded.parent?.id);
    const referrers = (bundles[0]?.entry ?? []).filter((e) => JSON.stringify(e.resource).includes(`"${parentEntry?.fullUrl}"`));
    expect(referrers.length).toBeGreaterThan(0);
    for (const e of referrers) {
      const onServer = await fhir(sandbox.baseUrl, 'GET', `${e.resource?.resourceType}/${idOf(entryKey(e))}`);
      expect(JSON.stringify(onServer)).toContain(`"Patient/${seeded.parent?.id}"`);
    }
  });

  it('never sent a full replacement of master data: its history holds only additions', async () => {
    for (const k of ['parent', 'clinic', 'fatherTherapist'] as const) {
      const history = await fhir<Bundle>(sandbox.baseUrl, 'GET', `${seeded[k]?.resourceType}/${seeded[k]?.id}/_history`);
      const versions = (history.entry ?? []).map((x) => x.resource as Json).reverse();
      expect(versions.length).toBeGreaterThan(1);
      for (let i = 1; i < versions.length; i++) expectKept(versions[i] as Json, versions[i - 1] as Json);
    }
  });

  it('a re-send reports that it created and updated nothing, with the ledger and without it', async () => {
    const before = sandbox.repo.countByType();
    const again = await deliver(episodes());
    for (const [i, j] of again.entries()) {
      expect(j.targets.clinic).toMatchObject({
        status: 'delivered',
        unchanged: true,
        counts: { created: 0, updated: 0, unchanged: bundles[i]?.entry?.length },
      });
    }
    // Without a ledger (imh-bridge sync): everything is written again, and the server says it changed nothing.
    const r = await syncOnce(completedWithRater(), { baseUrl: sandbox.baseUrl, allowSyntheticIds: true });
    expect(r.delivered).toBe(true);
    expect(r.report.result.counts).toEqual({ created: 0, updated: 0, unchanged: bundles[0]?.entry?.length });
    // Only the refusals of this re-send were added: their AuditEvents.
    expect(sandbox.repo.countByType()).toEqual({ ...before, AuditEvent: (before.AuditEvent ?? 0) + refusals });
    // Master data is never retracted, even when an episode stops mentioning it.
    const e = completedWithRater();
    e.assessments = e.assessments.filter((a: Json) => a.rater?.hprNumber !== RATER_HPR);
    const [changed] = await deliver([e]);
    expect(changed?.status).toBe('delivered');
    const rater = await fhir(sandbox.baseUrl, 'GET', `Practitioner/${seeded.rater?.id}`);
    expectKept(rater, seeded.rater as Json);
    expect(rater.meta.versionId).toBe(seeded.rater?.meta.versionId);
    for (const t of MASTER_DATA_TYPES) expect(sandbox.repo.countByType()[t]).toBe(before[t]);
  });

  it('GET /v1/jobs/{id} shows the counts of a delivery', async () => {
    const queue = new LocalQueue(deps);
    const service = createDeliveryService(store, { send: async (ms) => ms.forEach((m) => queue.enqueue(m.jobId, m.parentKey)) }, { allowSyntheticIds: true });
    const app = createApp({ allowSyntheticIds: true, delivery: () => service });
    const e = plannedMinimal();
    e.goals = [{ goalId: 'G-COUNTS', description: 'Synthetic goal added for the counts', startOn: '2026-11-20', status: 'proposed', statusOn: '2026-11-20' }];
    const put = await app.request(`/v1/episodes/${e.episodeId}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(e) });
    expect(put.status).toBe(202);
    await queue.drain();
    const view = (await (await app.request(put.headers.get('location') as string)).json()) as Json;
    const entries = clinicBundle(e).entry?.length as number;
    // One goal is new, the Provenance that lists what the episode wrote changes, the rest is as it was.
    expect(view.targets.clinic).toMatchObject({ status: 'delivered', counts: { created: 1, updated: 1, unchanged: entries - 2 } });
  });
});
