/**
 * Sharing with the parent's primary treatment team through the delivery engine, against two
 * sandbox FHIR servers: the clinic's own and the primary team's (behind a flaky proxy). What
 * reaches the primary server per consent, what never does, the coordination requests and their
 * read-back, withdrawal, the audit on the clinic's server, and faults on the primary server
 * (shared contract `sharing.md`).
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { AuditEvent, Bundle, Resource, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { clearCapabilityCache, entryKey } from '../../src/sync/apply.ts';
import { FhirTargetClient } from '../../src/sync/client.ts';
import { listCoordination } from '../../src/sync/coordination.ts';
import type { DeliveryDeps } from '../../src/sync/deliver.ts';
import { LocalQueue } from '../../src/sync/local-queue.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import type { RetryPolicy } from '../../src/sync/retry.ts';
import { createDeliveryService } from '../../src/sync/service.ts';
import type { Job } from '../../src/sync/types.ts';
import { activeFather, completed } from '../fixtures/examples.ts';
import { type FlakyProxy, startFlakyProxy } from '../fixtures/flaky-proxy.ts';
import { syntheticNationalId } from '../fixtures/generate.ts';
import { scannedText } from '../fixtures/leaks.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** The moment of every send: the mother's consent (2026-01-12 … 2027-01-12) is active, the father's decided. */
const NOW = Date.parse('2026-10-01T10:00:00Z');
const MOTHER_ORG = '993778125';
const FATHER_ORG = '923456783';
const POLICY: RetryPolicy = { maxAttempts: 30, baseDelayMs: 10, maxDelayMs: 100, retryAfterCapMs: 1000 };

let clinic: Sandbox;
let primary: Sandbox;
let proxy: FlakyProxy;
/** Writes (non-GET) that reached the primary sandbox. */
let primaryWrites: { method: string; url: string }[] = [];

beforeAll(async () => {
  clinic = await startSandbox({ port: 0 });
  primary = await startSandbox({ port: 0, onRequest: (method, url) => void (method !== 'GET' && primaryWrites.push({ method, url })) });
  proxy = await startFlakyProxy({ target: primary.baseUrl });
});
afterAll(async () => {
  await proxy?.close();
  await primary?.close();
  await clinic?.close();
});
beforeEach(() => {
  clinic.reset();
  primary.reset();
  proxy.reset();
  proxy.setApplies(undefined);
  primaryWrites = [];
  clearCapabilityCache();
});

/** The engine as the Worker wires it: a store, a queue, the clinic target and a primary target per configured organisation. */
function harness(opts: { policy?: RetryPolicy; primaryTimeoutMs?: number; primaryUrl?: string; onAttempt?: (job: Job) => void } = {}) {
  const store = new MemoryStore();
  const primaryUrl = opts.primaryUrl ?? proxy.baseUrl;
  const clinicClient = new FhirTargetClient(clinic.baseUrl, { fetch: (...a) => fetch(...a), timeoutMs: 5000 });
  const primaryClient = new FhirTargetClient(primaryUrl, { fetch: (...a) => fetch(...a), timeoutMs: opts.primaryTimeoutMs ?? 2000 });
  let seed = 11;
  const deps: DeliveryDeps = {
    store,
    clientFor: (name) => (name === 'clinic' ? clinicClient : primaryClient),
    now: () => NOW,
    random: () => (seed = (seed * 48271) % 2147483647) / 2147483647,
    newId: () => crypto.randomUUID(),
    policy: opts.policy ?? POLICY,
  };
  const queue = new LocalQueue(deps, { delayScale: 0.01, onAttempt: (_id, r) => r && opts.onAttempt?.(structuredClone(r.job)) });
  const service = createDeliveryService(store, queue, {
    allowSyntheticIds: true,
    now: () => NOW,
    primaryEndpoint: (org) => (org === MOTHER_ORG || org === FATHER_ORG ? primaryUrl : undefined),
  });
  const owner = { caller: 'journal-west', tenant: 'local' };
  return {
    store,
    queue,
    service,
    async send(e: unknown): Promise<Job> {
      const job = await service.submit(e, owner);
      await queue.drain();
      return (await store.getJob(job.id)) as Job;
    },
  };
}

/** The father's episode with an active consent to share everything: the guidance has started, and EPDS item 10 was positive. */
function fatherSharing(): Json {
  const e = activeFather();
  e.consent = { ...e.consent, status: 'active', share: ['attendance', 'focus-areas', 'scores', 'themes', 'risk-flags', 'summary'] };
  return e;
}

const all = (s: Sandbox): Resource[] => s.repo.allResources();
const ofType = <T extends Resource>(s: Sandbox, type: string): T[] => all(s).filter((r) => r.resourceType === type) as T[];
const taskBy = (s: Sandbox, occasion: string): Task | undefined => ofType<Task>(s, 'Task').find((t) => t.code?.coding?.some((c) => c.code === occasion));

async function fhir(base: string, method: string, path: string, body?: unknown): Promise<Json> {
  const r = await fetch(`${base}/${path}`, {
    method,
    headers: { 'content-type': 'application/fhir+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return r.json();
}

/** The AuditEvents on the clinic's server, found by search as a privacy officer would. */
async function clinicAudits(): Promise<AuditEvent[]> {
  const b = (await fhir(clinic.baseUrl, 'GET', 'AuditEvent?_count=1000')) as Bundle;
  return (b.entry ?? []).map((e) => e.resource as AuditEvent);
}

describe('what reaches the primary treatment team', () => {
  it("the mother's consent: everything but notes and video, and nothing that never crosses", async () => {
    const h = harness();
    const e = completed();
    const job = await h.send(e);
    expect(job.status).toBe('delivered');
    expect(Object.keys(job.targets).sort()).toEqual(['clinic', `primary.${MOTHER_ORG}`]);
    const target = job.targets[`primary.${MOTHER_ORG}`];
    expect(target).toMatchObject({ status: 'delivered' });

    const held = all(primary);
    const types = new Set(held.map((r) => r.resourceType));
    for (const t of [
      'Patient',
      'Organization',
      'Practitioner',
      'PractitionerRole',
      'EpisodeOfCare',
      'Consent',
      'Provenance',
      'Encounter',
      'Procedure',
      'Observation',
      'Task',
    ]) {
      expect(types, t).toContain(t);
    }
    // Never: item answers, infants as persons, clips, the referral, the primary team's own conditions.
    for (const t of ['QuestionnaireResponse', 'RelatedPerson', 'Media', 'ServiceRequest', 'Condition', 'CareTeam', 'AuditEvent'])
      expect(types, t).not.toContain(t);
    // The one DocumentReference is the coordination summary (the episode is finished, summary shared), never a clip.
    const documents = ofType<Json>(primary, 'DocumentReference');
    expect(documents.map((d) => [d.type?.coding?.[0]?.code, d.content?.[0]?.attachment?.contentType])).toEqual([['34133-9', 'application/fhir+json']]);
    expect(ofType(primary, 'Patient')).toHaveLength(1);

    // A scan of everything the primary server holds, the summary document decoded.
    const text = scannedText(held);
    const never: string[] = [e.parent.phone, e.parent.phone.replace(/\D/g, '').slice(2), e.referral.reason];
    for (const s of e.sessions as Json[]) {
      if (s.note) never.push(s.note);
      for (const c of s.clips ?? []) never.push(c.clipId, c.uri, c.sha256, c.recordedAt);
      for (const id of s.reviewsClips ?? []) never.push(id);
    }
    for (const inf of e.infants as Json[]) {
      never.push(inf.birthDate);
      if (inf.nationalId) never.push(inf.nationalId);
    }
    expect(never.length).toBeGreaterThan(10);
    for (const s of never) expect(text.includes(s), s).toBe(false);
    // The parent is there to be filed with the right person.
    expect(text).toContain(e.parent.nationalId);

    // Coordination requests read back onto the job: each Task the server holds, as it holds it.
    const tasks = ofType<Task>(primary, 'Task');
    expect(tasks.length).toBeGreaterThan(0);
    expect(target?.requests?.map((q) => q.status).sort()).toEqual(tasks.map((t) => t.status).sort());
    expect(target?.requests?.map((q) => q.occasion)).toContain('guidance-ended');
    expect(target?.requestsReadAt).toBe(new Date(NOW).toISOString());

    // The clinic: the risk was shared, so no Task for the therapist; one AuditEvent of the disclosure.
    expect(ofType<Task>(clinic, 'Task').filter((t) => t.code?.coding?.some((c) => c.code === 'risk-not-shared'))).toEqual([]);
    const audits = await clinicAudits();
    expect(audits).toHaveLength(1);
    const [audit] = audits as [AuditEvent];
    expect(audit.outcome).toBe('0');
    expect(audit.agent?.find((a) => a.network)?.network?.address).toBe(proxy.baseUrl);
    expect(audit.agent?.some((a) => a.requestor && a.who?.display === 'journal-west')).toBe(true);
    expect(audit.entity?.some((x) => x.what?.type === 'Consent')).toBe(true);
    expect(audit.entity?.some((x) => x.what?.type === 'Task')).toBe(true);
    expect(job.audits).toMatchObject([{ kind: 'disclosure', status: 'written', outcome: 'success' }]);
  });

  it("the father's declined consent: nothing reaches the primary server; a refusal audit and the therapist's Task at the clinic", async () => {
    const h = harness();
    const job = await h.send(activeFather());
    expect(job.status).toBe('delivered');
    expect(Object.keys(job.targets)).toEqual(['clinic']);
    expect(proxy.requests).toBe(0);
    expect(all(primary)).toEqual([]);

    const audits = await clinicAudits();
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ outcome: '4' });
    expect(audits[0]?.outcomeDesc).toContain('declined');
    expect(audits[0]?.agent?.find((a) => a.network)?.network?.address).toBe(proxy.baseUrl);
    const task = taskBy(clinic, 'risk-not-shared');
    expect(task).toMatchObject({ status: 'requested', priority: 'urgent' });
    expect(task?.description).toContain('declined');
  });

  it('a closed gate without a target is no refusal: nothing sent, nothing audited', async () => {
    const h = harness();
    const e = completed();
    e.primaryTreatment.organization.orgNumber = '974760673'; // an organisation with no target configured
    const job = await h.send(e);
    expect(Object.keys(job.targets)).toEqual(['clinic']);
    expect(job.audits).toBeUndefined();
    expect(await clinicAudits()).toEqual([]);
    expect(proxy.requests).toBe(0);
  });
});

describe('coordination requests', () => {
  it('a Task the primary team accepted survives a re-send unchanged, and its status is read back', async () => {
    const h = harness();
    const first = await h.send(fatherSharing());
    const target = `primary.${FATHER_ORG}`;
    expect(first.targets[target]?.requests).toEqual([
      expect.objectContaining({ occasion: 'guidance-started', status: 'requested', priority: 'routine' }),
      expect.objectContaining({ occasion: 'risk-follow-up', status: 'requested', priority: 'urgent', due: '2026-09-08', authoredOn: '2026-09-07' }),
    ]);
    const risk = taskBy(primary, 'risk-follow-up') as Task;
    // The primary team accepts, on their own server.
    const accepted = await fhir(primary.baseUrl, 'PUT', `Task/${risk.id}`, { ...risk, status: 'accepted' });
    expect(accepted.status).toBe('accepted');

    // A changed episode is sent again: the Task is not touched.
    const e = fatherSharing();
    e.sessions[0].minutes += 5;
    const again = await h.send(e);
    expect(again.targets[target]).toMatchObject({ status: 'delivered' });
    expect(again.targets[target]?.unchanged).toBeUndefined();
    const now = taskBy(primary, 'risk-follow-up') as Task;
    expect(now.status).toBe('accepted');
    expect(now.meta?.versionId).toBe(accepted.meta.versionId);
    expect(ofType<Task>(primary, 'Task')).toHaveLength(2);
    expect(again.targets[target]?.requests?.find((q) => q.occasion === 'risk-follow-up')).toMatchObject({
      status: 'accepted',
      lastModified: accepted.meta.lastUpdated,
    });

    // What the clinic sees: per episode, the latest statuses, due dates and overdue flags.
    const listed = await listCoordination(h.store, 'local', NOW);
    expect(listed).toEqual([
      {
        episodeKey: `974557746/${e.episodeId}`,
        target,
        readAt: new Date(NOW).toISOString(),
        requests: [
          expect.objectContaining({ occasion: 'guidance-started', status: 'requested', overdue: false }),
          expect.objectContaining({ occasion: 'risk-follow-up', status: 'accepted', due: '2026-09-08', overdue: true }),
        ],
      },
    ]);
    expect((await listCoordination(h.store, 'local', Date.parse('2026-09-08T12:00:00Z')))[0]?.requests[1]?.overdue).toBe(false);
    expect(await listCoordination(h.store, 'another-tenant', NOW)).toEqual([]);

    // The same episode once more: nothing written there, nothing disclosed, nothing audited.
    const writes = primaryWrites.length;
    const same = await h.send(e);
    expect(same.targets[target]).toMatchObject({ status: 'delivered', unchanged: true });
    expect(same.audits).toMatchObject([{ status: 'skipped' }]);
    expect(primaryWrites.length).toBe(writes);
    expect(same.targets[target]?.requests?.find((q) => q.occasion === 'risk-follow-up')?.status).toBe('accepted');
    // One AuditEvent per disclosure: the first and the changed send.
    expect(await clinicAudits()).toHaveLength(2);
  });

  it('withdrawal cancels only the requests still requested, with the reason, and sends nothing new', async () => {
    const h = harness();
    await h.send(fatherSharing());
    const risk = taskBy(primary, 'risk-follow-up') as Task;
    const accepted = await fhir(primary.baseUrl, 'PUT', `Task/${risk.id}`, { ...risk, status: 'accepted' });
    const before = new Map(all(primary).map((r) => [`${r.resourceType}/${r.id}`, r.meta?.versionId]));
    primaryWrites = [];

    const e = fatherSharing();
    e.consent.status = 'withdrawn';
    const job = await h.send(e);
    const target = `primary.${FATHER_ORG}`;
    expect(job.status).toBe('delivered');
    // Three requests to cancel: one cancelled, one the team has acted on, one (ended) never created.
    expect(job.targets[target]).toMatchObject({ status: 'delivered', counts: { created: 0, updated: 1, unchanged: 2 } });

    const started = taskBy(primary, 'guidance-started') as Task;
    expect(started.status).toBe('cancelled');
    expect(started.statusReason?.text).toContain('withdrew');
    expect(taskBy(primary, 'risk-follow-up')).toMatchObject({ status: 'accepted', meta: { versionId: accepted.meta.versionId } });
    // Nothing new: the same resources, each at the version it had, but the one cancelled Task.
    const after = all(primary);
    expect(after).toHaveLength(before.size);
    for (const r of after) if (r.id !== started.id) expect(r.meta?.versionId, `${r.resourceType}/${r.id}`).toBe(before.get(`${r.resourceType}/${r.id}`));
    expect(primaryWrites.map((w) => w.method)).toEqual(['PATCH']);
    expect(job.targets[target]?.requests?.map((q) => `${q.occasion}:${q.status}`)).toEqual(['guidance-started:cancelled', 'risk-follow-up:accepted']);

    // At the clinic: the refusal is audited, and the risk now unshared is the therapist's to decide.
    const refusal = (await clinicAudits()).find((a) => a.outcome === '4');
    expect(refusal?.outcomeDesc).toContain('withdrew');
    expect(refusal?.outcomeDesc).toContain('cancelled there: 1');
    expect(taskBy(clinic, 'risk-not-shared')?.description).toContain('withdrew');

    // The withdrawal sent again: nothing is written there at all.
    primaryWrites = [];
    const again = await h.send(e);
    expect(again.status).toBe('delivered');
    expect(primaryWrites).toEqual([]);
  });

  it('where the server has no PATCH, cancels by read and PUT under If-Match, changing status and reason only', async () => {
    const noPatch = await startSandbox({ port: 0, patch: false });
    try {
      const h = harness({ primaryUrl: noPatch.baseUrl });
      await h.send(fatherSharing());
      const e = fatherSharing();
      e.consent.status = 'expired';
      const job = await h.send(e);
      expect(job.targets[`primary.${FATHER_ORG}`]).toMatchObject({ status: 'delivered', counts: { updated: 2 } });
      const tasks = ofType<Task>(noPatch, 'Task');
      expect(tasks.map((t) => t.status)).toEqual(['cancelled', 'cancelled']);
      for (const t of tasks) {
        expect(t.statusReason?.text).toContain('expired');
        expect(t.priority).toBeDefined();
        expect(t.description).toBeDefined();
      }
    } finally {
      await noPatch.close();
    }
  });

  it('a lost answer to a cancellation cancels once', async () => {
    const h = harness();
    await h.send(fatherSharing());
    proxy.setApplies((r) => r.method === 'PATCH');
    proxy.enqueue('apply-then-drop');
    const e = fatherSharing();
    e.consent.status = 'withdrawn';
    const job = await h.send(e);
    expect(job.status).toBe('delivered');
    expect(proxy.counts['apply-then-drop']).toBe(1);
    for (const t of ofType<Task>(primary, 'Task')) {
      expect(t.status).toBe('cancelled');
      const history = (await fhir(primary.baseUrl, 'GET', `Task/${t.id}/_history`)) as Bundle;
      expect(history.entry).toHaveLength(2); // created, then cancelled: once
    }
  });
});

describe('faults on the primary server', () => {
  /** Episodes of several parents, half of them with a changed session, all sharing. */
  function episodes(n: number): Json[] {
    return Array.from({ length: n }, (_, i) => {
      const e = i % 2 ? fatherSharing() : completed();
      e.episodeId = `VG-SHARE-${i}`;
      e.consent.consentId = `CN-SHARE-${i}`;
      e.parent.nationalId = syntheticNationalId(e.parent.birthDate, 700 + i);
      return e;
    });
  }

  it('429, 503, 500, timeouts, resets and lost answers lose nothing and duplicate nothing, and never hold up the clinic', async () => {
    const firstAttempts = new Map<string, Job>();
    const h = harness({ primaryTimeoutMs: 400, onAttempt: (j) => void (j.attempts === 1 && firstAttempts.set(j.id, j)) });
    proxy.setRandom({ seed: 99, rates: { '429': 0.08, '503': 0.08, '500': 0.05, timeout: 0.03, reset: 0.05, 'apply-then-drop': 0.08 }, retryAfter: '1' });
    const inputs = episodes(12);
    const jobs: Job[] = [];
    for (const e of inputs) jobs.push(await h.service.submit(e, { caller: 'journal-west', tenant: 'local' }));
    await h.queue.drain();
    for (const kind of ['429', '503', 'apply-then-drop'] as const) expect(proxy.counts[kind], kind).toBeGreaterThan(0);

    const done = await Promise.all(jobs.map(async (j) => (await h.store.getJob(j.id)) as Job));
    expect(done.map((j) => j.status)).toEqual(jobs.map(() => 'delivered'));
    // The clinic's own server never waited for the primary's retries: delivered at the first attempt.
    expect(firstAttempts.size).toBe(jobs.length);
    for (const j of firstAttempts.values()) expect(j.targets.clinic).toMatchObject({ status: 'delivered' });
    // … while the primary server's faults made jobs retry.
    expect(
      [...firstAttempts.values()].some(
        (j) => j.targets[`primary.${MOTHER_ORG}`]?.status === 'retrying' || j.targets[`primary.${FATHER_ORG}`]?.status === 'retrying',
      ),
    ).toBe(true);
    for (const j of done) expect(j.targets.clinic).toMatchObject({ status: 'delivered' });

    // Exactly one resource per write key of everything sent there.
    const expected = new Map<string, string>();
    for (const j of jobs) {
      const content = await h.store.getContent(j.id);
      for (const [name, b] of Object.entries(content?.bundles ?? {}))
        if (name !== 'clinic') for (const x of b.entry ?? []) expected.set(entryKey(x), x.resource?.resourceType as string);
    }
    const byType: Record<string, number> = {};
    for (const t of expected.values()) byType[t] = (byType[t] ?? 0) + 1;
    expect(primary.repo.countByType()).toEqual(byType);
    for (const key of expected.keys()) {
      if (!key.includes('?')) continue;
      const found = (await fhir(primary.baseUrl, 'GET', key)) as Bundle;
      expect(found.entry, key).toHaveLength(1);
    }
    // One AuditEvent per disclosure, each a success.
    const audits = await clinicAudits();
    expect(audits).toHaveLength(jobs.length);
    expect(audits.every((a) => a.outcome === '0')).toBe(true);

    // Everything again through the same faults: nothing written there, nothing more audited.
    primaryWrites = [];
    const again: Job[] = [];
    for (const e of inputs) again.push(await h.service.submit(e, { caller: 'journal-west', tenant: 'local' }));
    await h.queue.drain();
    proxy.setRandom(undefined);
    for (const j of again) expect((await h.store.getJob(j.id))?.status).toBe('delivered');
    expect(primaryWrites).toEqual([]);
    expect(await clinicAudits()).toHaveLength(jobs.length);
  }, 120_000);

  it('a primary server that keeps failing never fails the clinic; its failure is audited, and a replay delivers and audits again', async () => {
    const h = harness({ policy: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20, retryAfterCapMs: 100 } });
    proxy.setScript(() => ({ kind: '503', retryAfter: '0' }));
    const job = await h.send(completed());
    expect(job.status).toBe('dead');
    expect(job.targets.clinic).toMatchObject({ status: 'delivered', counts: { created: 69 } });
    expect(job.targets[`primary.${MOTHER_ORG}`]).toMatchObject({ status: 'dead', httpStatus: 503 });
    expect(ofType(clinic, 'EpisodeOfCare')).toHaveLength(1);
    const failed = await clinicAudits();
    expect(failed).toHaveLength(1);
    expect(failed[0]?.outcome).toBe('8');
    expect(failed[0]?.outcomeDesc).toContain('503');

    proxy.setScript(undefined);
    const replay = await h.service.replay(job.id, 'local');
    expect(replay?.replayed).toBe(true);
    await h.queue.drain();
    const after = (await h.store.getJob(job.id)) as Job;
    expect(after.status).toBe('delivered');
    expect(after.targets[`primary.${MOTHER_ORG}`]).toMatchObject({ status: 'delivered' });
    const audits = await clinicAudits();
    expect(audits.map((a) => a.outcome).sort()).toEqual(['0', '8']);
    expect(new Set(audits.map((a) => a.id)).size).toBe(2);
  });

  it('a lost answer to an audit write is retried and leaves one AuditEvent', async () => {
    const clinicProxy = await startFlakyProxy({ target: clinic.baseUrl });
    try {
      clinicProxy.setApplies((r) => r.url.includes('/AuditEvent/'));
      clinicProxy.enqueue('apply-then-drop', '503');
      const store = new MemoryStore();
      const clinicClient = new FhirTargetClient(clinicProxy.baseUrl, { fetch: (...a) => fetch(...a) });
      const primaryClient = new FhirTargetClient(proxy.baseUrl, { fetch: (...a) => fetch(...a) });
      const deps: DeliveryDeps = {
        store,
        clientFor: (n) => (n === 'clinic' ? clinicClient : primaryClient),
        now: () => NOW,
        random: () => 0.5,
        newId: () => crypto.randomUUID(),
        policy: POLICY,
      };
      const queue = new LocalQueue(deps, { delayScale: 0.01 });
      const service = createDeliveryService(store, queue, { allowSyntheticIds: true, now: () => NOW, primaryEndpoint: () => proxy.baseUrl });
      const job = await service.submit(completed(), { caller: 'journal-west', tenant: 'local' });
      await queue.drain();
      const done = (await store.getJob(job.id)) as Job;
      expect(done.status).toBe('delivered');
      expect(done.audits).toMatchObject([{ status: 'written', attempts: 3 }]);
      expect(clinicProxy.counts['apply-then-drop']).toBe(1);
      expect(await clinicAudits()).toHaveLength(1);
    } finally {
      await clinicProxy.close();
    }
  });
});

describe('imh-bridge sync --primary', () => {
  const bin = resolve(import.meta.dirname, '../../bin/imh-bridge.js');
  function run(args: string[], input: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((ok) => {
      const child = spawn(process.execPath, [bin, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('exit', (status) => ok({ status, stdout, stderr }));
      child.stdin.end(input);
    });
  }

  it('delivers to both, audits on --target, and prints the requests read back', async () => {
    const e = fatherSharing();
    // The consent stays valid whenever the test runs.
    e.consent.decidedOn = '2026-01-01';
    const r = await run(['sync', '-', '--target', clinic.baseUrl, '--primary', primary.baseUrl], JSON.stringify(e));
    expect(r.stderr).not.toContain(e.parent.nationalId);
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.targets.clinic).toMatchObject({ url: clinic.baseUrl, result: { status: 'delivered' } });
    expect(report.targets[`primary.${FATHER_ORG}`]).toMatchObject({ url: primary.baseUrl, result: { status: 'delivered' } });
    expect(report.targets[`primary.${FATHER_ORG}`].result.requests.map((q: Json) => q.occasion)).toEqual(['guidance-started', 'risk-follow-up']);
    expect(report.audits).toMatchObject([{ kind: 'disclosure', status: 'written', outcome: 'success' }]);
    expect(r.stderr).toMatch(/primary\.923456783: request risk-follow-up requested \(urgent\), due 2026-09-08/);
    expect(ofType(primary, 'Task')).toHaveLength(2);
    expect(await clinicAudits()).toHaveLength(1);

    // Without --primary nothing is shared; the declined consent of the example is a refusal.
    const declined = await run(['sync', '-', '--target', clinic.baseUrl], JSON.stringify(activeFather()));
    expect(declined.status).toBe(0);
    expect(Object.keys(JSON.parse(declined.stdout).targets)).toEqual(['clinic']);
    expect(await clinicAudits()).toHaveLength(2);
  });
});
