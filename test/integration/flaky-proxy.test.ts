/**
 * The flaky proxy in front of the sandbox, as a plain `fetch` sees each injected fault.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { FAULT_KINDS, type FaultKind, type FlakyProxy, prng, startFlakyProxy } from '../fixtures/flaky-proxy.ts';

const FHIR_JSON = 'application/fhir+json';
let sb: Sandbox;
let proxy: FlakyProxy;
let upstream: string[] = [];

beforeAll(async () => {
  sb = await startSandbox({ onRequest: (method, url, status) => upstream.push(`${method} ${url} ${status}`) });
  proxy = await startFlakyProxy({ target: sb.baseUrl });
});
afterAll(async () => {
  await proxy?.close();
  await sb?.close();
});
beforeEach(() => {
  sb.reset();
  proxy.reset();
  upstream = [];
});

const patient = (value: string) => ({ resourceType: 'Patient', identifier: [{ system: 'urn:example:proxy', value }] });
const putPatient = (value: string, init: RequestInit = {}) =>
  fetch(`${proxy.baseUrl}/Patient?identifier=urn:example:proxy|${value}`, {
    method: 'PUT',
    headers: { 'content-type': FHIR_JSON },
    body: JSON.stringify(patient(value)),
    ...init,
  });
const patientsOnSandbox = async (value: string) =>
  ((await (await fetch(`${sb.baseUrl}/Patient?identifier=urn:example:proxy|${value}&_summary=count`)).json()) as { total: number }).total;

describe('flaky proxy', () => {
  it('passes requests through to the target, with its status, headers and body', async () => {
    expect(proxy.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/fhir$/);
    const res = await putPatient('p1');
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toMatch(new RegExp(`^${proxy.url}/fhir/Patient/`));
    expect(res.headers.get('etag')).toMatch(/^W\//);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('Patient');
    expect(proxy.counts.pass).toBe(1);
    expect(proxy.forwarded).toBe(1);
    expect(upstream).toHaveLength(1);
  });

  it.each([
    ['429', { kind: '429', retryAfter: '2' } as const, '2'],
    ['429 with an HTTP-date', { kind: '429', retryAfter: 'Wed, 21 Oct 2037 07:28:00 GMT' } as const, 'Wed, 21 Oct 2037 07:28:00 GMT'],
    ['503', { kind: '503', retryAfter: '1' } as const, '1'],
    ['503 without Retry-After', { kind: '503' } as const, null],
    ['500', { kind: '500' } as const, null],
    ['412', { kind: '412' } as const, null],
  ])('answers %s itself, as an OperationOutcome, without touching the target', async (_name, fault, retryAfter) => {
    proxy.enqueue(fault);
    const res = await putPatient('p2');
    expect(res.status).toBe(Number(fault.kind));
    expect(res.headers.get('retry-after')).toBe(retryAfter);
    expect(res.headers.get('content-type')).toContain(FHIR_JSON);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    expect(upstream).toEqual([]);
    expect(await patientsOnSandbox('p2')).toBe(0);
    expect(proxy.counts[fault.kind]).toBe(1);
    // The queue is used up: the next request passes.
    expect((await putPatient('p2')).status).toBe(201);
  });

  it('never answers a timeout fault: fetch gives up by its own AbortSignal', async () => {
    proxy.enqueue('timeout');
    const err = await putPatient('p3', { signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('TimeoutError');
    expect(proxy.counts.timeout).toBe(1);
    expect(await patientsOnSandbox('p3')).toBe(0);
  });

  it('resets the connection: fetch rejects and nothing reaches the target', async () => {
    proxy.enqueue({ kind: 'reset' });
    const err = await putPatient('p4', { signal: AbortSignal.timeout(5000) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(proxy.counts.reset).toBe(1);
    expect(upstream).toEqual([]);
    expect(await patientsOnSandbox('p4')).toBe(0);
  });

  it('apply-then-drop: the target applies the write, the client sees only a dropped connection', async () => {
    proxy.enqueue('apply-then-drop');
    const err = await putPatient('p5', { signal: AbortSignal.timeout(5000) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(upstream).toHaveLength(1);
    expect(upstream[0]).toMatch(/^PUT \/fhir\/Patient\?identifier=.* 201$/);
    expect(proxy.log[0]).toMatchObject({ kind: 'apply-then-drop', upstreamStatus: 201 });
    expect(await patientsOnSandbox('p5')).toBe(1);
    // The conditional PUT sent again updates the one written, no duplicate.
    expect((await putPatient('p5')).status).toBe(200);
    expect(await patientsOnSandbox('p5')).toBe(1);
  });

  it('takes faults from the queue in order, then from the script, and only for the requests it applies to', async () => {
    proxy.setApplies((r) => r.method !== 'GET');
    proxy.enqueue('500', { kind: '429', retryAfter: '0' });
    proxy.setScript((r) => (r.seq % 2 === 0 ? '503' : undefined));
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      // GETs in between pass and do not consume the queue.
      expect((await fetch(`${proxy.baseUrl}/metadata`)).status).toBe(200);
      statuses.push((await putPatient(`q${i}`)).status);
    }
    // PUT seqs are 2, 4, …, 12: queue first, then the script's 503 on every even seq.
    expect(statuses).toEqual([500, 429, 503, 503, 503, 503]);
    expect(proxy.queued()).toBe(0);
    expect(proxy.counts).toMatchObject({ '500': 1, '429': 1, '503': 4, pass: 6 });
    expect(proxy.requests).toBe(12);
  });

  it('seeded random mode injects the same faults for the same seed, near the asked rates', async () => {
    const rates = { '429': 0.1, '503': 0.1, '500': 0.05, reset: 0.05, 'apply-then-drop': 0.05 } as const;
    const run = async () => {
      sb.reset();
      proxy.reset();
      proxy.setRandom({ seed: 42, rates, retryAfter: '0' });
      const kinds: FaultKind[] = [];
      for (let i = 0; i < 200; i++) {
        await putPatient(`r${i}`, { signal: AbortSignal.timeout(5000) }).then(
          (r) => r.arrayBuffer(),
          () => undefined,
        );
        kinds.push(proxy.log.at(-1)?.kind as FaultKind);
      }
      return { kinds, counts: { ...proxy.counts } };
    };
    const a = await run();
    const b = await run();
    expect(b.kinds).toEqual(a.kinds);
    expect(Object.values(a.counts).reduce((x, y) => x + y, 0)).toBe(200);
    expect(a.counts.timeout).toBe(0);
    expect(a.counts['412']).toBe(0);
    for (const kind of ['429', '503', 'pass'] as const) {
      const want = kind === 'pass' ? 0.65 : rates[kind];
      expect(a.counts[kind] / 200, kind).toBeGreaterThan(want / 2);
      expect(a.counts[kind] / 200, kind).toBeLessThan(want * 2);
    }
    // Written on the target: exactly the requests that passed or were applied then dropped.
    expect(sb.repo.countByType().Patient).toBe(a.counts.pass + a.counts['apply-then-drop']);
    expect(FAULT_KINDS).toContain('apply-then-drop');
  });

  it('its PRNG is deterministic and uniform enough', () => {
    const r1 = prng(7);
    const r2 = prng(7);
    const xs = Array.from({ length: 10_000 }, () => r1());
    expect(Array.from({ length: 10_000 }, () => r2())).toEqual(xs);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });

  it('closes cleanly with a request still held, and the held request fails', async () => {
    const own = await startFlakyProxy({ target: sb.baseUrl, faults: ['timeout'] });
    const pending = fetch(`${own.baseUrl}/metadata`).catch((e: unknown) => e);
    while (own.held() === 0) await new Promise((r) => setTimeout(r, 5));
    const t = performance.now();
    await own.close();
    expect(performance.now() - t).toBeLessThan(1000);
    expect(await pending).toBeInstanceOf(TypeError);
  });
});
