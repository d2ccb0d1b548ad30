/**
 * The coordination summary opened from the psychiatry EHR by SMART App Launch, in headless
 * Chromium, end to end on loopback: a sandbox plays the EHR (its FHIR server holds the mother as
 * Patient; its SMART authorisation server signs in a synthetic psychiatrist), the bridge's app
 * runs in-process with a MemoryStore holding the mother's stored episode, and a second sandbox is
 * the clinic's FHIR server where every view and refusal is audited.
 *
 * Needs Debian's chromium (`apt-get install chromium`; .ci/run installs it). Without it the
 * tests skip and say so.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AuditEvent, Bundle, Patient } from '@medplum/fhirtypes';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { DEFAULT_TENANT } from '../../src/auth/tenants.ts';
import { loadConfig } from '../../src/config.ts';
import { parseEpisode } from '../../src/domain/parse.ts';
import type { IdentityOptions } from '../../src/fhir/identity.ts';
import { NO } from '../../src/fhir/systems.ts';
import { createApp } from '../../src/http/app.ts';
import { SESSION_COOKIE, smartDepsFrom } from '../../src/http/smart.ts';
import { personKey } from '../../src/sync/episodes.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { completed } from '../fixtures/examples.ts';
import { chromiumFor, launchChromium } from './chromium.ts';

const hasChromium = chromiumFor('the SMART launch browser tests');
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const CLIENT_ID = 'imh-bridge-test';
const CLIENT_SECRET = 'sandbox-client-secret-for-tests-only-0123456789';
const DPS = '993778125';

/** The mother with a positive PHQ-9 self-harm item; her consent lasts beyond any run of this test. */
function mother(status: 'active' | 'withdrawn' = 'active') {
  const e = completed();
  e.assessments[1].answers['9'] = 1;
  e.consent.expiresOn = '2099-01-01';
  e.consent.status = status;
  return parseEpisode(e);
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

describe.skipIf(!hasChromium)('the summary opened from the psychiatry EHR (SMART EHR launch) in Chromium', () => {
  let browser: Browser;
  let ehr: Sandbox;
  let clinic: Sandbox;
  let bridge: Server;
  let bridgeUrl: string;
  let patientId: string;
  const store = new MemoryStore();
  let identity: IdentityOptions;
  const nationalId = mother().parent.nationalId;

  beforeAll(async () => {
    clinic = await startSandbox();
    // The bridge first, so that its URLs can be registered with the EHR.
    let handler: ((r: Request) => Promise<Response>) | undefined;
    bridge = createServer((req, res) => {
      void (async () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
        const method = req.method ?? 'GET';
        const r = await (handler as (r: Request) => Promise<Response>)(
          new Request(`${bridgeUrl}${req.url}`, {
            method,
            headers,
            ...(method === 'GET' || method === 'HEAD' ? {} : { body: new Uint8Array(await body(req)) }),
          }),
        );
        const out: Record<string, string | string[]> = {};
        r.headers.forEach((v, k) => {
          if (k !== 'set-cookie') out[k] = v;
        });
        if (r.headers.getSetCookie().length) out['set-cookie'] = r.headers.getSetCookie();
        res.writeHead(r.status, out).end(Buffer.from(await r.arrayBuffer()));
      })().catch(() => res.writeHead(500).end());
    });
    await new Promise<void>((r) => bridge.listen(0, '127.0.0.1', r));
    bridgeUrl = `http://127.0.0.1:${(bridge.address() as { port: number }).port}`;

    ehr = await startSandbox({
      smart: {
        clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: `${bridgeUrl}/smart/callback`, launchUrl: `${bridgeUrl}/smart/launch` }],
      },
    });
    const patient = await ehr.repo.createResource<Patient>({
      resourceType: 'Patient',
      identifier: [{ system: NO.fnr, value: nationalId }],
      name: [{ given: ['Kari'], family: 'Nordmann' }],
    });
    patientId = patient.id;

    const config = loadConfig({
      API_AUTH: '{"type":"none"}',
      BRIDGE_ENV: 'local',
      FHIR_TARGETS: JSON.stringify({ clinic: { baseUrl: clinic.baseUrl, auth: { type: 'none' } } }),
      SMART_ISSUERS: JSON.stringify([{ iss: ehr.baseUrl, orgNumber: DPS, clientId: CLIENT_ID, clientSecretSecret: 'SMART_CLIENT_SECRET' }]),
      SMART_CLIENT_SECRET: CLIENT_SECRET,
    });
    identity = config.identity.reveal();
    const app = createApp({ allowSyntheticIds: true, identity, smart: smartDepsFrom(config, () => store) });
    handler = async (r) => app.fetch(r);

    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => bridge?.close(r));
    await ehr?.close();
    await clinic?.close();
  });

  beforeEach(() => clinic.reset());

  const putMother = (status: 'active' | 'withdrawn') => {
    const episode = mother(status);
    return store.putEpisode({
      tenant: DEFAULT_TENANT,
      episodeKey: `${episode.clinic.orgNumber}/${episode.episodeId}`,
      personKey: personKey(identity, nationalId),
      episode,
      storedAt: new Date().toISOString(),
    });
  };

  /** The clinic's AuditEvents, as anyone with access to its FHIR server would search them. */
  async function audits(): Promise<AuditEvent[]> {
    const res = await fetch(`${clinic.baseUrl}/AuditEvent?_count=100`, { headers: { accept: 'application/fhir+json' } });
    expect(res.status).toBe(200);
    return ((await res.json()) as Bundle).entry?.map((e) => e.resource as AuditEvent) ?? [];
  }

  /** The psychiatrist opens the app from the EHR for the mother; returns the page where the launch ends. */
  async function launch(locale = 'nb-NO') {
    const context = await browser.newContext({ locale });
    const page = await context.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(new URL(r.url()).origin + new URL(r.url()).pathname));
    const res = await page.goto(ehr.smart?.launchLink(patientId) as string);
    return { page, context, res, requests };
  }

  it("ends on the mother's summary with her scores and their classification, in a session cookie the page cannot read, and audits the view", async () => {
    await putMother('active');
    const { page, context, res, requests } = await launch();
    // EHR launch → the bridge's launch → the EHR's authorize → the bridge's callback → the summary.
    expect(requests).toEqual([
      `${ehr.url}/ehr/launch`,
      `${bridgeUrl}/smart/launch`,
      `${ehr.url}/auth/authorize`,
      `${bridgeUrl}/smart/callback`,
      `${bridgeUrl}/smart/summary`,
    ]);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'");
    expect(res?.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res?.headers()['cache-control']).toBe('no-store');
    const text = (await page.locator('main').innerText()).replace(/\s+/g, ' ');
    expect(text).toContain('14 (12. januar 2026) → 7 (4. mai 2026), endring −7, RCI −3,78: bedring til under klinisk grense (reliabel)');
    expect(text).toContain('16 (12. januar 2026) → 8 (4. mai 2026), endring −8: bedring til under klinisk grense (reliabel)');
    expect(await page.getByRole('img', { name: /^PHQ-9 over tid$/ }).count()).toBe(1);
    expect(await page.locator('header').innerText()).toMatch(/Kari Nordmann/);

    const cookies = await context.cookies(`${bridgeUrl}/smart/summary`);
    const session = cookies.find((c) => c.name === SESSION_COOKIE);
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/smart' });
    // Encrypted: the national id and the episode are not readable in it.
    expect(session?.value.split('.')).toHaveLength(5);
    expect(session?.value).not.toContain(nationalId);
    expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).toBe('');

    const events = await audits();
    expect(events).toHaveLength(1);
    const [view] = events as [AuditEvent];
    expect(view.outcome).toBe('0');
    expect(view.type.code).toBe('110110');
    const clinician = view.agent.find((a) => a.requestor);
    expect(clinician?.who?.identifier).toEqual({ system: ehr.baseUrl, value: `${ehr.baseUrl}/Practitioner/${ehr.smart?.practitionerId}` });
    expect(view.agent.some((a) => a.who?.identifier?.value === DPS)).toBe(true);
    expect(view.entity?.some((e) => e.what?.identifier?.value === nationalId)).toBe(true);
    expect(view.entity?.some((e) => e.what?.type === 'EpisodeOfCare' && e.what.identifier?.value === mother().episodeId)).toBe(true);

    // A reload is another view, audited again; the session serves it without a new sign-in.
    const again = await page.reload();
    expect(again?.status()).toBe(200);
    expect((await audits()).filter((e) => e.outcome === '0')).toHaveLength(2);
    await context.close();
  });

  it('shows the summary in English for an English browser', async () => {
    await putMother('active');
    const { page, context, res } = await launch('en-GB');
    expect(res?.status()).toBe(200);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect((await page.locator('main').innerText()).replace(/\s+/g, ' ')).toMatch(/reliable/);
    await context.close();
  });

  it('ends on an accessible refusal page when the consent is withdrawn, shows nothing of the record and audits the refusal', async () => {
    await putMother('withdrawn');
    const { page, context, res } = await launch();
    expect(res?.status()).toBe(403);
    expect(new URL(page.url()).pathname).toBe('/smart/callback');
    const text = await page.locator('main').innerText();
    expect(text).toMatch(/trukket samtykket/);
    const html = await page.content();
    for (const leak of ['Kari', 'Nordmann', nationalId, 'EPDS', 'PHQ-9', 'BUP Vest']) expect(html).not.toContain(leak);
    expect((await context.cookies(`${bridgeUrl}/smart/summary`)).find((c) => c.name === SESSION_COOKIE)).toBeUndefined();

    const events = await audits();
    expect(events).toHaveLength(1);
    const [refusal] = events as [AuditEvent];
    expect(refusal.outcome).toBe('4');
    expect(refusal.outcomeDesc).toMatch(/withdrew the consent/);
    expect(refusal.entity?.some((e) => e.what?.identifier?.value === nationalId)).toBe(true);
    expect(refusal.agent.find((a) => a.requestor)?.who?.identifier?.value).toBe(`${ehr.baseUrl}/Practitioner/${ehr.smart?.practitionerId}`);

    // axe is injected by the test only (the page has no script and its CSP allows none).
    const axePage = await (await browser.newContext({ bypassCSP: true })).newPage();
    await axePage.setContent(html);
    await axePage.addScriptTag({ content: AXE_SOURCE });
    const result = (await axePage.evaluate(() => {
      const w = globalThis as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<unknown> }; document: unknown };
      return w.axe.run(w.document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    })) as { violations: { id: string }[]; passes: unknown[] };
    expect(result.violations.map((v) => v.id)).toEqual([]);
    expect(result.passes.length).toBeGreaterThan(5);
    await axePage.context().close();
    await context.close();
  });
});
