/**
 * The sandbox FHIR server in a browser: a GET whose Accept prefers text/html gets a readable
 * page (pretty-printed, escaped, references and paging links as links), `GET /fhir` answers
 * the CapabilityStatement or an index of what the server holds, and JSON clients are served
 * JSON as before. Search pages carry self, previous and next links.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prefersHtml } from '../../sandbox/html.ts';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';

/** What Chromium and Firefox send for a page. */
const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
const FHIR_JSON = 'application/fhir+json';

let sandbox: Sandbox;
const ids: string[] = [];
beforeAll(async () => {
  sandbox = await startSandbox();
  for (const family of ['Testesen', '<script>alert("x")</script>', 'Prøvesen & Co']) {
    const r = await fetch(`${sandbox.baseUrl}/Patient`, {
      method: 'POST',
      headers: { 'content-type': FHIR_JSON },
      body: JSON.stringify({
        resourceType: 'Patient',
        name: [{ family }],
        managingOrganization: { reference: 'Organization/org-1' },
        link: [{ other: { reference: 'javascript:alert(1)' }, type: 'seealso' }],
      }),
    });
    expect(r.status).toBe(201);
    ids.push(((await r.json()) as { id: string }).id);
  }
});
afterAll(() => sandbox.close());

const get = (path: string, accept?: string) => fetch(`${sandbox.url}${path}`, accept ? { headers: { accept } } : {});

describe('Accept negotiation', () => {
  it('prefers HTML only where the client ranks it above JSON', () => {
    expect(prefersHtml(BROWSER)).toBe(true);
    expect(prefersHtml('text/*')).toBe(true);
    for (const accept of [
      undefined,
      '',
      '*/*',
      FHIR_JSON,
      'application/json',
      'text/html;q=0.5, application/fhir+json',
      'text/html, application/json',
      'text/html;q=0',
      'application/*, text/html;q=0.9',
    ]) {
      expect(prefersHtml(accept), String(accept)).toBe(false);
    }
  });
});

describe('GET /fhir (the base)', () => {
  it('answers JSON clients with the CapabilityStatement, as /metadata', async () => {
    for (const accept of [undefined, '*/*', FHIR_JSON]) {
      const r = await get('/fhir', accept);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
      expect(await r.json()).toEqual(await (await get('/fhir/metadata')).json());
    }
  });

  it('answers a browser with an index of the resource types held, with counts and links', async () => {
    const r = await get('/fhir', BROWSER);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(r.headers.get('vary')).toBe('Accept');
    const html = await r.text();
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<tr><td><a href="/fhir/Patient">Patient</a></td><td>3</td></tr>');
    expect(html).toContain('href="/fhir/metadata"');
    expect(html).not.toContain('Observation');
  });
});

describe('a resource in a browser', () => {
  it('is pretty-printed and escaped, with its references as links and a way back to JSON', async () => {
    const r = await get(`/fhir/Patient/${ids[1]}`, BROWSER);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await r.text();
    // Nothing from the data is markup.
    expect(html).not.toContain('<script>');
    expect(html).toContain('&quot;&lt;script&gt;alert(\\&quot;x\\&quot;)&lt;/script&gt;&quot;');
    // One value per line, indented as JSON.stringify(…, null, 2) would.
    expect(html).toMatch(/\n {2}<span class="k">&quot;resourceType&quot;<\/span>: <span class="s">&quot;Patient&quot;<\/span>,\n/);
    // A reference to this server links to it; anything else stays text.
    expect(html).toContain('<a href="/fhir/Organization/org-1">&quot;Organization/org-1&quot;</a>');
    expect(html).not.toMatch(/href="javascript/);
    expect(html).toContain(`<a href="/fhir">sandbox FHIR R4</a> / <a href="/fhir/Patient">Patient</a> / <a href="/fhir/Patient/${ids[1]}">${ids[1]}</a>`);
    // The JSON link answers JSON to the same browser.
    expect(html).toContain(`href="/fhir/Patient/${ids[1]}?_format=json"`);
    const json = await get(`/fhir/Patient/${ids[1]}?_format=json`, BROWSER);
    expect(json.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(((await json.json()) as { name: { family: string }[] }).name[0]?.family).toBe('<script>alert("x")</script>');
  });

  it('shows errors as pages too, with their status', async () => {
    const r = await get('/fhir/NotAResource', BROWSER);
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await r.text();
    expect(html).toContain('OperationOutcome');
    expect(html).toContain('· 404');
  });

  it('leaves JSON clients as they were: the same resource as JSON', async () => {
    const r = await get(`/fhir/Patient/${ids[0]}`, FHIR_JSON);
    expect(r.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const body = (await r.json()) as { resourceType: string; id: string; meta: { versionId: string } };
    expect([body.resourceType, body.id]).toEqual(['Patient', ids[0]]);
    expect(r.headers.get('etag')).toBe(`W/"${body.meta.versionId}"`);
  });
});

describe('search pages', () => {
  interface Page {
    total: number;
    entry?: { resource: { id: string } }[];
    link: { relation: string; url: string }[];
  }
  const link = (p: Page, relation: string) => p.link.find((l) => l.relation === relation)?.url;

  it('link to the next and previous page, and the pages together hold every match once', async () => {
    const first = (await (await get('/fhir/Patient?_count=2', FHIR_JSON)).json()) as Page;
    expect(first.total).toBe(3);
    expect(first.entry).toHaveLength(2);
    expect(link(first, 'self')).toBe(`${sandbox.baseUrl}/Patient?_count=2`);
    expect(link(first, 'previous')).toBeUndefined();
    expect(link(first, 'next')).toBe(`${sandbox.baseUrl}/Patient?_count=2&_offset=2`);
    const second = (await (await fetch(link(first, 'next') as string, { headers: { accept: FHIR_JSON } })).json()) as Page;
    expect(second.entry).toHaveLength(1);
    expect(link(second, 'next')).toBeUndefined();
    expect(link(second, 'previous')).toBe(`${sandbox.baseUrl}/Patient?_count=2`);
    expect(new Set([...(first.entry ?? []), ...(second.entry ?? [])].map((e) => e.resource.id))).toEqual(new Set(ids));
  });

  it("in a browser, the paging links and each entry's fullUrl are links", async () => {
    const html = await (await get('/fhir/Patient?_count=2', BROWSER)).text();
    expect(html).toContain('<a href="/fhir/Patient?_count=2&amp;_offset=2">');
    expect(html).toMatch(new RegExp(`<a href="/fhir/Patient/(${ids.join('|')})">`));
  });
});
