/**
 * The coordination summary on the primary team's server, through the delivery engine and two
 * sandbox FHIR servers (the clinic's and the primary team's): after a finished episode with
 * `summary` shared, the primary server holds a DocumentReference whose decoded document verifies
 * against the bridge's keys, the end-of-guidance request points at it, an unchanged re-send
 * writes nothing, and a changed goal brings a new version that replaces the previous one
 * (relatesTo, previous `superseded`).
 */
import type { Bundle, DocumentReference, Resource, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { publicJwks } from '../../src/auth/jwks.ts';
import { verifySummary } from '../../src/coordination/summary.ts';
import { clearCapabilityCache } from '../../src/sync/apply.ts';
import { FhirTargetClient } from '../../src/sync/client.ts';
import type { DeliveryDeps } from '../../src/sync/deliver.ts';
import { LocalQueue } from '../../src/sync/local-queue.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService } from '../../src/sync/service.ts';
import type { Job } from '../../src/sync/types.ts';
import { completed } from '../fixtures/examples.ts';
import { privateJwk } from '../fixtures/keys.ts';

const NOW = Date.parse('2026-10-01T10:00:00Z');
const MOTHER_ORG = '993778125';

let clinic: Sandbox;
let primary: Sandbox;
beforeAll(async () => {
  clinic = await startSandbox({ port: 0 });
  primary = await startSandbox({ port: 0 });
});
afterAll(async () => {
  await primary?.close();
  await clinic?.close();
});
beforeEach(() => {
  clinic.reset();
  primary.reset();
  clearCapabilityCache();
});

async function harness() {
  const key = await privateJwk('RS384', 'bridge-summary-it');
  const store = new MemoryStore();
  const clients = {
    clinic: new FhirTargetClient(clinic.baseUrl, { fetch: (...a) => fetch(...a), timeoutMs: 10_000 }),
    primary: new FhirTargetClient(primary.baseUrl, { fetch: (...a) => fetch(...a), timeoutMs: 10_000 }),
  };
  const deps: DeliveryDeps = {
    store,
    clientFor: (name) => (name === 'clinic' ? clients.clinic : clients.primary),
    now: () => NOW,
    random: () => 0.5,
    newId: () => crypto.randomUUID(),
  };
  const queue = new LocalQueue(deps, { delayScale: 0.01 });
  const service = createDeliveryService(store, queue, {
    allowSyntheticIds: true,
    now: () => NOW,
    primaryEndpoint: (org) => (org === MOTHER_ORG ? primary.baseUrl : undefined),
    signingKeys: { keys: [key] },
  });
  return {
    store,
    jwks: publicJwks({ keys: [key] }),
    async send(e: unknown): Promise<Job> {
      const job = await service.submit(e, { caller: 'journal-west', tenant: 'local' });
      await queue.drain();
      return (await store.getJob(job.id)) as Job;
    },
  };
}

const ofType = <T extends Resource>(s: Sandbox, type: string): T[] => s.repo.allResources().filter((r) => r.resourceType === type) as T[];
const summaries = () =>
  ofType<DocumentReference>(primary, 'DocumentReference').sort((a, b) => (a.meta?.lastUpdated ?? '').localeCompare(b.meta?.lastUpdated ?? ''));
const decoded = (d: DocumentReference): Bundle => JSON.parse(Buffer.from(d.content[0]?.attachment.data as string, 'base64').toString('utf8'));
const endedTask = () => ofType<Task>(primary, 'Task').find((t) => t.code?.coding?.some((c) => c.code === 'guidance-ended'));

describe("the coordination summary on the primary team's server", () => {
  it('arrives signed with a finished episode, is replaced by a new version when a goal changes, and an unchanged re-send writes nothing', async () => {
    const h = await harness();
    const e = completed();
    const first = await h.send(e);
    expect(first.targets[`primary.${MOTHER_ORG}`]?.status).toBe('delivered');

    const [v1] = summaries();
    expect(summaries()).toHaveLength(1);
    expect(v1?.status).toBe('current');
    expect(v1?.type?.coding?.[0]?.code).toBe('34133-9');
    expect(v1?.identifier?.[0]?.value).toMatch(/^VG-2026-0042\/summary\/[0-9a-f]{16}$/);
    expect(v1?.relatesTo).toBeUndefined();
    const document = decoded(v1!);
    expect(document.type).toBe('document');
    expect(await verifySummary(document, h.jwks)).toBe(true);
    // The server resolved the references inside the transaction.
    expect(v1?.subject?.reference).toMatch(/^Patient\//);
    expect(endedTask()?.focus?.reference).toBe(`DocumentReference/${v1?.id}`);
    // Nothing of the clinic's own record is a summary: it goes to the primary team only.
    expect(ofType<DocumentReference>(clinic, 'DocumentReference').filter((d) => d.type?.coding?.[0]?.code === '34133-9')).toEqual([]);

    const again = await h.send(e);
    expect(again.targets[`primary.${MOTHER_ORG}`]).toMatchObject({ status: 'delivered', unchanged: true });
    expect(summaries()).toHaveLength(1);

    const changed = completed();
    changed.goals[0].status = 'not-achieved';
    changed.goals[0].statusOn = changed.closing.closedOn;
    const second = await h.send(changed);
    expect(second.targets[`primary.${MOTHER_ORG}`]?.status).toBe('delivered');
    const all = summaries();
    expect(all).toHaveLength(2);
    const v2 = all.find((d) => d.id !== v1?.id)!;
    const old = all.find((d) => d.id === v1?.id)!;
    expect(v2.status).toBe('current');
    expect(v2.relatesTo).toEqual([{ code: 'replaces', target: { reference: `DocumentReference/${v1?.id}` } }]);
    expect(old.status).toBe('superseded');
    expect(v2.identifier?.[0]?.value).not.toBe(v1?.identifier?.[0]?.value);
    const newDocument = decoded(v2);
    expect(await verifySummary(newDocument, h.jwks)).toBe(true);
    expect(JSON.stringify(newDocument)).not.toBe(JSON.stringify(document));
    // The request is never rewritten: it still points at the version it was created with.
    expect(endedTask()?.focus?.reference).toBe(`DocumentReference/${v1?.id}`);

    // A third version replaces the second only; the first stays superseded.
    const third = completed();
    third.closing.recommendation = 'Videre oppfølging hos DPS; kontakt klinikken ved behov.';
    await h.send(third);
    const three = summaries();
    expect(three).toHaveLength(3);
    const v3 = three.find((d) => d.id !== v1?.id && d.id !== v2.id)!;
    expect(v3.relatesTo).toEqual([{ code: 'replaces', target: { reference: `DocumentReference/${v2.id}` } }]);
    expect(three.map((d) => [d.id, d.status]).sort()).toEqual(
      [
        [v1?.id, 'superseded'],
        [v2.id, 'superseded'],
        [v3.id, 'current'],
      ].sort(),
    );
  });
});
