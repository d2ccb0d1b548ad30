/**
 * GET /v1/episodes/{episodeId}/summary through the real app, auth middleware and delivery service
 * over MemoryStore: the clinic's callers get the summary of their tenant's latest stored version,
 * as the signed FHIR document or the page (with its CSP), in bokmål or English; another tenant
 * and an unknown episode get the same 404; a closed gate is a 403 OperationOutcome; the route
 * needs read access.
 */
import type { Bundle, Composition, OperationOutcome, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { createInboundAuthenticator } from '../../src/auth/inbound.ts';
import { publicJwks } from '../../src/auth/jwks.ts';
import { withTenants } from '../../src/auth/tenants.ts';
import { loadConfig } from '../../src/config.ts';
import { verifySummary } from '../../src/coordination/summary.ts';
import { SUMMARY_PAGE_CSP } from '../../src/coordination/summary-page.ts';
import { createApp } from '../../src/http/app.ts';
import { languageOf, representation } from '../../src/http/summary.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService } from '../../src/sync/service.ts';
import { activeFather, completed } from '../fixtures/examples.ts';
import { privateJwk } from '../fixtures/keys.ts';

const NORTH = 'summary-token-north-journal-6Ws2Kd9Fp4Lq';
const WEST = 'summary-token-west-journal-3Zm8Hc1Vt7Rb';
const ENV = {
  API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
  API_TOKENS: JSON.stringify({ 'journal-north': NORTH, 'journal-west': WEST }),
  TENANTS: JSON.stringify({ 'clinic-north': ['journal-north'] }),
};
const AT = '2026-06-01T10:00:00Z';

async function bridge(opts: { sign?: boolean } = {}) {
  const config = loadConfig(ENV);
  const key = await privateJwk('RS384', 'bridge-summary-1');
  const store = new MemoryStore();
  const service = createDeliveryService(
    store,
    { send: async () => undefined },
    { allowSyntheticIds: true, ...(opts.sign === false ? {} : { signingKeys: { keys: [key] } }) },
  );
  const app = createApp({ allowSyntheticIds: true, auth: withTenants(createInboundAuthenticator(config.apiAuth), config.tenants), delivery: () => service });
  const call = (token: string, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string) =>
    app.request(path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers }, ...(body ? { body } : {}) });
  const put = async (token: string, episode: { episodeId: string }) => {
    const r = await call(token, `/v1/episodes/${episode.episodeId}`, {}, 'PUT', JSON.stringify(episode));
    expect(r.status).toBe(202);
  };
  return { store, call, put, jwks: publicJwks({ keys: [key] }) };
}

const composition = (b: Bundle) => b.entry?.[0]?.resource as Composition;

describe('GET /v1/episodes/{id}/summary', () => {
  it("answers the FHIR document of the latest stored version, signed with the bridge's key, by default and for application/fhir+json", async () => {
    const { call, put, jwks } = await bridge();
    const e = completed();
    await put(NORTH, e);
    for (const accept of [undefined, 'application/fhir+json', 'application/json', '*/*']) {
      const r = await call(NORTH, `/v1/episodes/${e.episodeId}/summary?at=${AT}`, accept ? { accept } : {});
      expect(r.status, accept).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
      expect(r.headers.get('cache-control')).toBe('no-store');
      const doc = (await r.json()) as Bundle;
      expect(doc.type).toBe('document');
      expect(doc.timestamp).toBe(AT);
      expect(composition(doc).type?.coding?.[0]?.code).toBe('34133-9');
      expect(await verifySummary(doc, jwks)).toBe(true);
    }
    // A later send is what the summary shows.
    await put(NORTH, { ...e, closing: { ...e.closing, recommendation: 'Fortsett samarbeidet med DPS om foreldrestøtte.' } });
    const latest = (await (await call(NORTH, `/v1/episodes/${e.episodeId}/summary?at=${AT}`)).json()) as Bundle;
    expect(JSON.stringify(latest)).toContain('Fortsett samarbeidet med DPS om foreldrestøtte.');
  });

  it('shows the coordination requests with the status the primary team gave them, as last read back', async () => {
    const { call, put, store } = await bridge();
    const e = completed();
    e.assessments[1].answers['9'] = 1; // PHQ-9 A2: positive self-harm item, so a risk follow-up request
    await put(NORTH, e);
    const riskTask = async () => {
      const doc = (await (await call(NORTH, `/v1/episodes/${e.episodeId}/summary?at=${AT}`)).json()) as Bundle;
      return doc.entry?.map((x) => x.resource).find((r) => r?.resourceType === 'Task' && r.identifier?.[0]?.value === 'VG-2026-0042/risk-follow-up/A2') as
        | Task
        | undefined;
    };
    expect((await riskTask())?.status).toBe('requested');
    const request = { occasion: 'risk-follow-up', identifier: 'VG-2026-0042/risk-follow-up/A2', status: 'completed', lastModified: '2026-05-06T09:00:00Z' };
    await store.putCoordination({
      tenant: 'clinic-north',
      episodeKey: `974557746/${e.episodeId}`,
      target: 'primary.993778125',
      readAt: AT,
      requests: [request],
    });
    // Another tenant's read-back of the same episode id lends nothing.
    await store.putCoordination({
      tenant: 'journal-west',
      episodeKey: `974557746/${e.episodeId}`,
      target: 'primary.993778125',
      readAt: AT,
      requests: [{ ...request, status: 'rejected' }],
    });
    expect(await riskTask()).toMatchObject({ status: 'completed', lastModified: '2026-05-06T09:00:00Z' });
  });

  it('is unsigned where the bridge has no key', async () => {
    const { call, put } = await bridge({ sign: false });
    await put(NORTH, completed());
    const doc = (await (await call(NORTH, `/v1/episodes/${completed().episodeId}/summary?at=${AT}`)).json()) as Bundle;
    expect(doc.type).toBe('document');
    expect(doc.signature).toBeUndefined();
  });

  it('answers the page for text/html, with the CSP it is made for, in bokmål unless asked otherwise', async () => {
    const { call, put } = await bridge();
    const e = completed();
    await put(NORTH, e);
    const path = `/v1/episodes/${e.episodeId}/summary?at=${AT}`;
    const nb = await call(NORTH, path, { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' });
    expect(nb.status).toBe(200);
    expect(nb.headers.get('content-type')).toMatch(/^text\/html/);
    expect(nb.headers.get('content-security-policy')).toBe(SUMMARY_PAGE_CSP);
    expect(nb.headers.get('cache-control')).toBe('no-store');
    const page = await nb.text();
    expect(page).toMatch(/<html lang="nb"/);
    expect(page).not.toMatch(/<script/i);
    const en = await call(NORTH, path, { accept: 'text/html', 'accept-language': 'en-GB,en;q=0.9,nb;q=0.5' });
    expect(await en.text()).toMatch(/<html lang="en"/);
    const query = await call(NORTH, `${path}&lang=en`, { accept: 'text/html', 'accept-language': 'nb' });
    expect(await query.text()).toMatch(/<html lang="en"/);
    const doc = (await (await call(NORTH, `${path}&lang=en`)).json()) as Bundle;
    expect(doc.language).toBe('en');
  });

  it('answers 403 with the OperationOutcome when the consent refuses, never an empty document', async () => {
    const { call, put } = await bridge();
    await put(WEST, activeFather()); // consent declined
    for (const accept of ['application/fhir+json', 'text/html']) {
      const r = await call(WEST, `/v1/episodes/${activeFather().episodeId}/summary?at=${AT}`, { accept });
      expect(r.status, accept).toBe(403);
      const o = (await r.json()) as OperationOutcome;
      expect(o.resourceType).toBe('OperationOutcome');
      expect(o.issue[0]?.code).toBe('forbidden');
      expect(o.issue[0]?.diagnostics ?? o.issue[0]?.details?.text).toMatch(/declined/);
    }
    // By date: once the consent has expired.
    await put(NORTH, completed());
    const expired = await call(NORTH, `/v1/episodes/${completed().episodeId}/summary?at=2027-02-01T00:00:00Z`);
    expect(expired.status).toBe(403);
  });

  it('answers another tenant exactly as an episode that does not exist', async () => {
    const { call, put } = await bridge();
    await put(NORTH, completed());
    const other = await call(WEST, `/v1/episodes/${completed().episodeId}/summary?at=${AT}`);
    const none = await call(WEST, `/v1/episodes/VG-NOT-THERE/summary?at=${AT}`);
    expect(other.status).toBe(404);
    expect(none.status).toBe(404);
    expect(await other.text()).toBe(await none.text());
  });

  it('refuses bad parameters and unsupported representations', async () => {
    const { call, put } = await bridge();
    await put(NORTH, completed());
    const path = `/v1/episodes/${completed().episodeId}/summary`;
    expect((await call(NORTH, `${path}?lang=de`)).status).toBe(400);
    expect((await call(NORTH, `${path}?at=yesterday`)).status).toBe(400);
    expect((await call(NORTH, `${path}?at=${AT}&at=${AT}`)).status).toBe(400);
    expect((await call(NORTH, `${path}?clinic=12`)).status).toBe(400);
    expect((await call(NORTH, `${path}?clinic=999999999&at=${AT}`)).status).toBe(404);
    expect((await call(NORTH, `${path}?clinic=974557746&at=${AT}`)).status).toBe(200);
    expect((await call(NORTH, `${path}?at=${AT}`, { accept: 'image/png' })).status).toBe(406);
  });

  it('needs an authenticated caller with read access', async () => {
    const { put } = await bridge();
    await put(NORTH, completed());
    const config = loadConfig({ API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: JSON.stringify({ 'journal-north': NORTH }) });
    const app = createApp({
      allowSyntheticIds: true,
      auth: createInboundAuthenticator(config.apiAuth),
      delivery: () => createDeliveryService(new MemoryStore(), { send: async () => undefined }),
    });
    const r = await app.request(`/v1/episodes/${completed().episodeId}/summary`);
    expect(r.status).toBe(401);
  });
});

describe('content negotiation', () => {
  it('reads Accept by quality', () => {
    expect(representation(undefined)).toBe('fhir');
    expect(representation('text/html')).toBe('html');
    expect(representation('application/fhir+json;q=1, text/html;q=0.5')).toBe('fhir');
    expect(representation('application/fhir+json;q=0.4, text/html;q=0.5')).toBe('html');
    expect(representation('text/html;q=0, */*')).toBe('fhir');
    expect(representation('image/png')).toBeUndefined();
  });
  it('reads Accept-Language: nb, no and nn are bokmål; English; else bokmål', () => {
    expect(languageOf(undefined)).toBe('nb');
    expect(languageOf('nn-NO')).toBe('nb');
    expect(languageOf('de, en-US;q=0.7, nb;q=0.3')).toBe('en');
    expect(languageOf('en;q=0.2, no;q=0.9')).toBe('nb');
    expect(languageOf('de')).toBe('nb');
  });
});
