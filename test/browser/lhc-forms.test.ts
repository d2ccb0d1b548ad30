/**
 * The published Questionnaires in a real form renderer: LHC-Forms (web component) in headless
 * Chromium. Each form is filled as a person would (clicking options, typing), LHC-Forms' own
 * QuestionnaireResponse (LForms.Util.getFormFHIRData) is taken as it is, a subject is added,
 * and the bridge's $extract (the HTTP app, in-process) must give the right scores, bands and
 * self-harm flags — with no warning, i.e. the totals LHC-Forms computed agree with ours.
 *
 * Needs Debian's chromium (`apt-get install chromium`; .ci/run installs it). Without it the
 * tests skip and say so.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import type { Bundle, Flag, Observation, OperationOutcome, Parameters, Questionnaire, QuestionnaireResponse } from '@medplum/fhirtypes';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.ts';
import { CHROMIUM, CHROMIUM_ARGS, chromiumFor } from './chromium.ts';
import { lformsDist } from './lforms-dist.ts';

const hasChromium = chromiumFor('the LHC-Forms browser tests');

const app = createApp({ allowSyntheticIds: true });

/** The page: LHC-Forms' styles and scripts in the documented order, FHIR support after main.js. */
const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>LHC-Forms</title>
<link rel="stylesheet" href="/lforms/webcomponent/styles.css"></head>
<body><div id="form"></div>
<script src="/lforms/webcomponent/assets/lib/zone.min.js"></script>
<script src="/lforms/webcomponent/runtime.js" type="module"></script>
<script src="/lforms/webcomponent/polyfills.js" type="module"></script>
<script src="/lforms/webcomponent/main.js" type="module"></script>
<script src="/lforms/fhir/R4/lformsFHIR.min.js" type="module"></script>
</body></html>`;

const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** Loopback server: the page, LHC-Forms' files, and the bridge's own /v1 routes (Questionnaires). */
async function serve(dist: string): Promise<{ server: Server; base: string }> {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    if (url.pathname.startsWith('/v1/')) {
      const answer = await app.request(url.pathname);
      return void res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? '' }).end(Buffer.from(await answer.arrayBuffer()));
    }
    const rel = normalize(decodeURIComponent(url.pathname)).replace(/^\/lforms\//, '');
    const file = join(dist, rel);
    if (!url.pathname.startsWith('/lforms/') || rel.startsWith('..') || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { server, base: `http://127.0.0.1:${port}` };
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe.skipIf(!hasChromium)('LHC-Forms renders, fills and exports every published Questionnaire; $extract scores it', () => {
  let context: BrowserContext;
  let page: Page;
  let server: Server;
  let base: string;
  let profile: string;

  beforeAll(async () => {
    const dist = lformsDist();
    ({ server, base } = await serve(dist));
    profile = mkdtempSync(join(tmpdir(), 'imh-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);
    await page.goto(`${base}/`);
    await page.waitForFunction(() => {
      const w = globalThis as unknown as { LForms?: { Util?: { addFormToPage?: unknown; getFormFHIRData?: unknown } } };
      return !!w.LForms?.Util?.addFormToPage && !!w.LForms.Util.getFormFHIRData;
    });
  }, 600_000);

  afterAll(async () => {
    await context?.close();
    await new Promise((r) => server?.close(r));
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  /** Renders the Questionnaire as the bridge serves it (GET /v1/Questionnaire/{id}). */
  async function render(id: string): Promise<Questionnaire> {
    const q = (await (await app.request(`/v1/Questionnaire/${id}`)).json()) as Questionnaire;
    await page.evaluate(async (id) => {
      const q = await (await fetch(`/v1/Questionnaire/${id}`)).json();
      const w = globalThis as unknown as { LForms: { Util: { addFormToPage: (q: unknown, el: string, o: unknown) => Promise<void> } } };
      await w.LForms.Util.addFormToPage(q, 'form', {});
    }, id);
    await page.locator('lhc-item').first().waitFor();
    return q;
  }

  /** Clicks, for the question with this text, the option whose label starts with `option`. */
  async function choose(question: string, option: string): Promise<void> {
    const group = page.getByRole('radiogroup', { name: new RegExp(`^${escapeRe(question)}( \\*)?$`) });
    await group.getByRole('radio', { name: new RegExp(`^${escapeRe(option)}( - -?\\d+)?$`) }).click();
  }

  /**
   * LHC-Forms' own export, with a subject added and nothing else changed. LHC-Forms computes a
   * calculated total after the click that changes it, not during it: with `total`, the export
   * is taken once the form shows that total (and fails on the timeout if it never does).
   */
  async function exported(subject: QuestionnaireResponse['subject'], total?: number): Promise<QuestionnaireResponse> {
    if (total !== undefined)
      await page.waitForFunction((want) => {
        const w = globalThis as unknown as {
          document: { getElementById(id: string): unknown };
          LForms: { Util: { getFormFHIRData: (t: string, v: string, el: unknown) => QuestionnaireResponse } };
        };
        const qr = w.LForms.Util.getFormFHIRData('QuestionnaireResponse', 'R4', w.document.getElementById('form'));
        return qr.item?.find((i) => i.linkId === 'total')?.answer?.[0]?.valueInteger === want;
      }, total);
    const qr = (await page.evaluate(() => {
      // Runs in the page: `globalThis` is its window.
      const w = globalThis as unknown as {
        document: { getElementById(id: string): unknown };
        LForms: { Util: { getFormFHIRData: (t: string, v: string, el: unknown) => unknown } };
      };
      return w.LForms.Util.getFormFHIRData('QuestionnaireResponse', 'R4', w.document.getElementById('form'));
    })) as QuestionnaireResponse;
    expect(qr.resourceType).toBe('QuestionnaireResponse');
    return { ...qr, subject };
  }

  async function extract(qr: QuestionnaireResponse): Promise<{ bundle: Bundle; warnings: OperationOutcome['issue'] }> {
    const res = await app.request('/v1/QuestionnaireResponse/$extract', {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify(qr),
    });
    const body = (await res.json()) as Bundle | Parameters | OperationOutcome;
    expect(res.status, JSON.stringify(body)).toBe(200);
    if (body.resourceType === 'Parameters') {
      const get = (n: string) => body.parameter?.find((p) => p.name === n)?.resource;
      return { bundle: get('return') as Bundle, warnings: (get('issues') as OperationOutcome).issue };
    }
    return { bundle: body as Bundle, warnings: [] };
  }

  const observations = (b: Bundle) => (b.entry ?? []).map((e) => e.resource).filter((r): r is Observation => r?.resourceType === 'Observation');
  const flags = (b: Bundle) => (b.entry ?? []).map((e) => e.resource).filter((r): r is Flag => r?.resourceType === 'Flag');
  const band = (o: Observation | undefined) => o?.interpretation?.[0]?.coding?.[0]?.code;
  const patient = { reference: 'Patient/lhc-test-parent' };

  /** Answers a scored form option by option, `picks[i]` being the option label for item i+1. */
  async function fill(q: Questionnaire, picks: string[]): Promise<void> {
    const items = (q.item ?? []).filter((i) => i.type === 'choice');
    expect(items).toHaveLength(picks.length);
    for (const [i, item] of items.entries()) await choose(item.text as string, picks[i] as string);
  }

  it('PHQ-9: total 10 (moderate), and item 9 answered "Several days" raises the self-harm flag', async () => {
    const q = await render('phq-9');
    const L = ['Not at all', 'Several days', 'More than half the days', 'Nearly every day'];
    await fill(
      q,
      [1, 2, 1, 2, 1, 0, 1, 1, 1].map((n) => L[n] as string),
    );
    const qr = await exported(patient, 10);
    expect(qr.item?.find((i) => i.linkId === 'total')?.answer?.[0]?.valueInteger).toBe(10); // LHC-Forms' own total
    const { bundle, warnings } = await extract(qr);
    expect(warnings).toEqual([]);
    const [total] = observations(bundle);
    expect([total?.code?.coding?.[0]?.code, total?.valueInteger, band(total)]).toEqual(['44261-6', 10, 'moderate']);
    expect(flags(bundle).map((f) => f.code?.text)).toEqual(['PHQ-9 item 9 positive']);
    // The same export sent again is the same Bundle.
    expect((await extract(qr)).bundle).toEqual(bundle);
  });

  it('GAD-7: total 7 (mild), no flag; subject by synthetic national id', async () => {
    const q = await render('gad-7');
    await fill(q, Array(7).fill('Several days'));
    const fnr = '15819010029'; // synthetic (month 81), valid check digits
    const { bundle, warnings } = await extract(await exported({ identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.1', value: fnr } }, 7));
    expect(warnings).toEqual([]);
    const [total] = observations(bundle);
    expect([total?.code?.coding?.[0]?.code, total?.valueInteger, band(total)]).toEqual(['70274-6', 7, 'mild']);
    expect(total?.subject).toEqual({ reference: `Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|${fnr}` });
    expect(flags(bundle)).toEqual([]);
  });

  it('EPDS: positions scored with reversal, total 16 (probable depression), item 10 third option raises the flag', async () => {
    const q = await render('epds');
    const P = ['First option (top)', 'Second option', 'Third option', 'Fourth option (bottom)'];
    // Items 1, 2, 4 score the position; 3 and 5–10 score 3 − position: 1+1+2+1+2+2+2+2+2+1 = 16.
    await fill(
      q,
      [1, 1, 1, 1, 1, 1, 1, 1, 1, 2].map((n) => P[n] as string),
    );
    const { bundle, warnings } = await extract(await exported(patient, 16));
    expect(warnings).toEqual([]);
    const [total] = observations(bundle);
    expect([total?.code?.coding?.[0]?.code, total?.valueInteger, band(total)]).toEqual(['99046-5', 16, 'probable-depression']);
    expect(flags(bundle).map((f) => f.code?.text)).toEqual(['EPDS item 10 positive']);
  });

  it('PRFQ: three subscale means, items 11 and 18 reverse-coded', async () => {
    const q = await render('prfq');
    // All items "5", items 11 and 18 "2" (scored 8 − 2 = 6): means 5, 31/6, 31/6.
    await fill(
      q,
      Array.from({ length: 18 }, (_, i) => (i === 10 || i === 17 ? '2' : '5')),
    );
    const { bundle, warnings } = await extract(await exported(patient));
    expect(warnings).toEqual([]);
    expect(observations(bundle).map((o) => [o.code?.coding?.[0]?.code, o.valueQuantity?.value])).toEqual([
      ['prfq-pre-mentalizing', 5],
      ['prfq-certainty-about-mental-states', 5.17],
      ['prfq-interest-and-curiosity', 5.17],
    ]);
  });

  it('PDI-RF: the rating typed in is the score', async () => {
    await render('pdi-rf');
    const box = page.getByRole('textbox', { name: /Reflective functioning score/ });
    await box.pressSequentially('6');
    await box.press('Tab');
    const { bundle, warnings } = await extract(await exported(patient));
    expect(warnings).toEqual([]);
    expect(observations(bundle).map((o) => [o.code?.coding?.[0]?.code, o.valueInteger])).toEqual([['pdi-rf', 6]]);
  });

  it('Marte Meo session review: fillable without a terminology server; extracted as the response', async () => {
    await render('marte-meo-session-review');
    const date = page.getByRole('textbox', { name: 'Session date' });
    await date.click();
    await date.pressSequentially('03/02/2026');
    await date.press('Enter');
    const clips = page.getByRole('textbox', { name: /Clips reviewed/ });
    await clips.pressSequentially('C1');
    await clips.press('Tab');
    await page.getByRole('checkbox', { name: 'Naming' }).click();
    await page.getByRole('checkbox', { name: 'Sharing joy' }).click();
    await page.getByRole('checkbox', { name: 'Discovering the infant as intentional' }).click();
    const { bundle, warnings } = await extract(await exported(patient));
    expect(warnings).toEqual([]);
    const [qr, ...rest] = (bundle.entry ?? []).map((e) => e.resource) as QuestionnaireResponse[];
    expect(rest).toEqual([]);
    const answers = Object.fromEntries((qr?.item ?? []).map((i) => [i.linkId, i.answer?.map((a) => a.valueDate ?? a.valueString ?? a.valueCoding?.code)]));
    expect(answers).toEqual({
      'session-date': ['2026-03-02'],
      'clips-reviewed': ['C1'],
      'focus-elements': ['naming', 'sharing-joy'],
      themes: ['discovering-infant-as-intentional'],
    });
  });
});
