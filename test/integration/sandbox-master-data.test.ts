/**
 * The sandbox's handling of what master-data delivery relies on: conditional create
 * (If-None-Exist alone and `ifNoneExist` in a transaction, https://hl7.org/fhir/R4/http.html#ccreate),
 * JSON Patch under If-Match (https://hl7.org/fhir/R4/http.html#patch) with the identifier
 * index kept in step, updates that change nothing keeping their version, and 201 for a
 * transaction entry that PUTs to a new id.
 */
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const SYS = 'urn:example:sandbox-master';
let sb: Sandbox;
beforeAll(async () => {
  sb = await startSandbox({ port: 0 });
});
afterAll(async () => {
  await sb?.close();
});
beforeEach(() => sb.reset());

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Json }> {
  const res = await fetch(`${sb.baseUrl}/${path}`, {
    method,
    headers: { 'content-type': 'application/fhir+json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const total = async (query: string) => (await call('GET', `${query}&_summary=count`)).body.total as number;
const patient = (value: string, extra: Json = {}) => ({ resourceType: 'Patient', identifier: [{ system: SYS, value }], ...extra });

describe('sandbox: conditional create, patch, unchanged updates', () => {
  it('POST with If-None-Exist creates once, then answers 200 with the existing resource untouched', async () => {
    const first = await call('POST', 'Patient', patient('P1', { gender: 'female' }), { 'if-none-exist': `identifier=${SYS}|P1` });
    expect(first.status).toBe(201);
    const again = await call('POST', 'Patient', patient('P1', { gender: 'male', birthDate: '1990-01-01' }), { 'if-none-exist': `identifier=${SYS}|P1` });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.meta.versionId).toBe(first.body.meta.versionId);
    expect(again.body.gender).toBe('female');
    expect(again.body.birthDate).toBeUndefined();
    expect(await total(`Patient?identifier=${SYS}|P1`)).toBe(1);
  });

  it('resolves a transaction entry with ifNoneExist to the existing resource, and references to it', async () => {
    const existing = (await call('POST', 'Patient', patient('P2', { address: [{ city: 'Bergen' }] }))).body;
    const entries: BundleEntry[] = [
      {
        fullUrl: 'urn:uuid:8a3c1a52-3f0e-5b1e-9d7a-0c1f2e3d4b51',
        resource: patient('P2', { gender: 'female' }) as never,
        request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${encodeURIComponent(SYS)}|P2` },
      },
      {
        fullUrl: 'urn:uuid:8a3c1a52-3f0e-5b1e-9d7a-0c1f2e3d4b52',
        resource: patient('P3') as never,
        request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${encodeURIComponent(SYS)}|P3` },
      },
      {
        fullUrl: 'urn:uuid:8a3c1a52-3f0e-5b1e-9d7a-0c1f2e3d4b53',
        resource: {
          resourceType: 'Flag',
          identifier: [{ system: SYS, value: 'F1' }],
          status: 'active',
          code: { text: 'synthetic' },
          subject: { reference: 'urn:uuid:8a3c1a52-3f0e-5b1e-9d7a-0c1f2e3d4b51' },
        } as never,
        request: { method: 'PUT', url: `Flag?identifier=${encodeURIComponent(SYS)}|F1` },
      },
    ];
    const r = await call('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: entries });
    expect(r.status).toBe(200);
    const out = r.body as Bundle;
    expect(out.entry?.map((e) => e.response?.status?.slice(0, 3))).toEqual(['200', '201', '201']);
    expect(out.entry?.[0]?.response?.location).toMatch(new RegExp(`^Patient/${existing.id}/_history/${existing.meta.versionId}$`));
    const flag = (await call('GET', `Flag?identifier=${SYS}|F1`)).body.entry[0].resource;
    expect(flag.subject.reference).toBe(`Patient/${existing.id}`);
    const now = (await call('GET', `Patient/${existing.id}`)).body;
    expect(now).toEqual(existing);
    expect(await total(`Patient?identifier=${SYS}|P2`)).toBe(1);
  });

  it('PATCH adds under If-Match, refuses a stale version with 412, and the added identifier is searchable', async () => {
    const p = (await call('POST', 'Patient', patient('P4', { address: [{ city: 'Bergen' }] }))).body;
    const ops = [
      { op: 'add', path: '/identifier/-', value: { system: `${SYS}-second`, value: 'S4' } },
      { op: 'add', path: '/gender', value: 'female' },
    ];
    const patched = await call('PATCH', `Patient/${p.id}`, ops, { 'content-type': 'application/json-patch+json', 'if-match': `W/"${p.meta.versionId}"` });
    expect(patched.status).toBe(200);
    expect(patched.body.meta.versionId).not.toBe(p.meta.versionId);
    expect(patched.body.address).toEqual([{ city: 'Bergen' }]);
    expect(patched.body.identifier).toEqual([...p.identifier, { system: `${SYS}-second`, value: 'S4' }]);
    // The identifier index follows the patch: found by either identifier.
    expect(await total(`Patient?identifier=${SYS}-second|S4`)).toBe(1);
    expect(await total(`Patient?identifier=${SYS}|P4`)).toBe(1);
    const stale = await call('PATCH', `Patient/${p.id}`, [{ op: 'add', path: '/birthDate', value: '1990-01-01' }], {
      'content-type': 'application/json-patch+json',
      'if-match': `W/"${p.meta.versionId}"`,
    });
    expect(stale.status).toBe(412);
    expect((await call('GET', `Patient/${p.id}`)).body.birthDate).toBeUndefined();
  });

  it('keeps the version of an update that changes nothing, and writes a new one for a change', async () => {
    const url = `Patient?identifier=${SYS}|P5`;
    const a = await call('PUT', url, patient('P5', { gender: 'female' }));
    const b = await call('PUT', url, patient('P5', { gender: 'female' }));
    expect([a.status, b.status]).toEqual([201, 200]);
    expect(b.body.meta.versionId).toBe(a.body.meta.versionId);
    expect(b.headers.get('etag')).toBe(`W/"${a.body.meta.versionId}"`);
    const c = await call('PUT', url, patient('P5', { gender: 'male' }));
    expect(c.body.meta.versionId).not.toBe(a.body.meta.versionId);
    expect((await call('GET', `Patient/${a.body.id}/_history`)).body.entry).toHaveLength(2);
    // An If-Match on a stale version is still refused, even for the same content.
    const stale = await call('PUT', `Patient/${a.body.id}`, { ...c.body, meta: undefined }, { 'if-match': `W/"${a.body.meta.versionId}"` });
    expect(stale.status).toBe(412);
  });

  it('answers 201 for a transaction entry that PUTs to an id nothing had, 200 when it existed', async () => {
    const id = '5d0b6c1e-1a7e-5c55-8f0e-2f2a4b8e9c01';
    const tx = (city: string) => ({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Patient', id, address: [{ city }] }, request: { method: 'PUT', url: `Patient/${id}` } }],
    });
    const first = await call('POST', '', tx('Bergen'));
    expect(first.body.entry[0].response.status).toBe('201');
    const second = await call('POST', '', tx('Oslo'));
    expect(second.body.entry[0].response.status).toMatch(/^200/);
  });
});
