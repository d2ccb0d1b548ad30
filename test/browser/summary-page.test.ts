/**
 * The coordination summary page in headless Chromium, served from a loopback server with the
 * strict Content-Security-Policy an EHR frame imposes: it loads without a blocked resource or
 * request, shows the scores and their reliable-change classification, axe-core finds no WCAG
 * 2.1 A/AA violation (bokmål and English), it can be screenshotted and printed on A4 with every
 * chart inside the page.
 *
 * Needs Debian's chromium (`apt-get install chromium`; .ci/run installs it). Without it the
 * tests skip and say so.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderSummaryPage, SUMMARY_PAGE_CSP } from '../../src/coordination/summary-page.ts';
import { parseEpisode } from '../../src/domain/parse.ts';
import { completed } from '../fixtures/examples.ts';
import { chromiumFor, launchChromium } from './chromium.ts';

const hasChromium = chromiumFor('the summary page browser tests');

const AT = '2026-05-10T10:00:00Z';
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The mother with a positive PHQ-9 self-harm item, so that every section has content. */
function mother(share?: string[]) {
  const e = completed();
  e.assessments[1].answers['9'] = 1;
  if (share) e.consent.share = share;
  return parseEpisode(e);
}

const pages: Record<string, string> = {
  '/nb': renderSummaryPage(mother(), { at: AT, lang: 'nb' }),
  '/en': renderSummaryPage(mother(), { at: AT, lang: 'en' }),
  '/scores-only': renderSummaryPage(mother(['scores', 'summary']), { at: AT, lang: 'en' }),
};
// A page with two accessibility faults, to show that the axe check finds what it looks for.
pages['/faulty'] = (pages['/en'] as string).replace('<html lang="en">', '<html>').replace(/<title id="chart-epds-title">[^<]*<\/title>/, '');

async function serve(): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const body = pages[req.url ?? ''];
    if (!body) return void res.writeHead(404).end();
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': SUMMARY_PAGE_CSP, 'x-content-type-options': 'nosniff' })
      .end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

interface AxeResult {
  violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[];
  passes: unknown[];
}

describe.skipIf(!hasChromium)('the coordination summary page in Chromium', () => {
  let browser: Browser;
  let server: Server;
  let base: string;
  let dir: string;

  beforeAll(async () => {
    ({ server, base } = await serve());
    dir = mkdtempSync(join(tmpdir(), 'imh-summary-page-'));
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Opens a page under the strict CSP, recording every request and every console error. */
  async function open(path: string, opts: { bypassCSP?: boolean } = {}): Promise<{ page: Page; requests: string[]; errors: string[] }> {
    const context = await browser.newContext({ bypassCSP: opts.bypassCSP ?? false, viewport: { width: 1000, height: 900 } });
    const page = await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    const res = await page.goto(`${base}${path}`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toBe(SUMMARY_PAGE_CSP);
    return { page, requests, errors };
  }

  it.each(['nb', 'en'] as const)('loads under the strict CSP with nothing blocked and nothing fetched (%s)', async (lang) => {
    const { page, requests, errors } = await open(`/${lang}`);
    expect(errors).toEqual([]);
    expect(requests).toEqual([`${base}/${lang}`]);
    expect(await page.getAttribute('html', 'lang')).toBe(lang);
    // The inline style applied (a blocked <style> would leave the browser's default serif font and black headings).
    expect(
      await page.locator('h1').evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle(el).color),
    ).toBe('rgb(16, 48, 77)');
    expect(await page.locator('script').count()).toBe(0);
    await page.context().close();
  });

  it('shows the scores, their bands and each change with its reliable-change classification', async () => {
    const { page } = await open('/nb');
    const body = (await page.locator('main').innerText()).replace(/\s+/g, ' ');
    expect(body).toContain('14 (12. januar 2026) → 7 (4. mai 2026), endring −7, RCI −3,78: bedring til under klinisk grense (reliabel)');
    expect(body).toContain('16 (12. januar 2026) → 8 (4. mai 2026), endring −8: bedring til under klinisk grense (reliabel)');
    expect(body).toMatch(/Sped- og småbarnsteamet, BUP Vest/);
    for (const name of [/^EPDS over tid$/, /^PHQ-9 over tid$/, /^GAD-7 over tid$/, /^PRFQ-delskalaer/, /^Oppmøte over tid$/, /^Endringsprosessen/]) {
      expect(await page.getByRole('img', { name }).count(), String(name)).toBe(1);
    }
    // Every chart also as a table: the PHQ-9 scores with their bands.
    const phq = page.getByRole('table', { name: 'PHQ-9: skårer' });
    expect(await phq.getByRole('row').count()).toBe(3);
    expect((await phq.innerText()).replace(/\s+/g, ' ')).toMatch(/12\. januar 2026 14 moderat 4\. mai 2026 7 mild/);
    expect(await page.locator('h2').allInnerTexts()).toEqual([
      'Forløp og oppmøte',
      'Marte Meo-elementer det er arbeidet med',
      'Forelderens endringsprosess slik terapeuten ser den',
      'Skårer over tid',
      'Risiko og oppfølging',
      'Mål, avslutning og anbefaling',
      'Kontakt',
    ]);
    await page.context().close();
  });

  it('shows only the sections the consent allows', async () => {
    const { page } = await open('/scores-only');
    expect(await page.locator('h2').allInnerTexts()).toEqual(['Scores over time', 'Goals, closing and recommendation', 'Contact']);
    expect(await page.getByRole('img', { name: /Attendance/ }).count()).toBe(0);
    expect(await page.getByRole('img', { name: /^EPDS over time$/ }).count()).toBe(1);
    await page.context().close();
  });

  it.each(['nb', 'en', 'scores-only'])('axe-core finds no WCAG 2.1 A or AA violation (%s)', async (path) => {
    // axe is injected by the test only (the page itself has no script), so this context lets a script tag in.
    const { page } = await open(`/${path}`, { bypassCSP: true });
    await page.addScriptTag({ content: AXE_SOURCE });
    const result = (await page.evaluate(async () => {
      const w = globalThis as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<unknown> }; document: unknown };
      return w.axe.run(w.document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    })) as AxeResult;
    expect(result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
    expect(result.passes.length).toBeGreaterThan(10);
    await page.context().close();
  });

  it('has an axe check that finds faults (no lang, a chart without a name)', async () => {
    const { page } = await open('/faulty', { bypassCSP: true });
    await page.addScriptTag({ content: AXE_SOURCE });
    const result = (await page.evaluate(async () => {
      const w = globalThis as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<unknown> }; document: unknown };
      return w.axe.run(w.document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    })) as AxeResult;
    expect(result.violations.map((v) => v.id)).toEqual(expect.arrayContaining(['html-has-lang', 'svg-img-alt']));
    await page.context().close();
  });

  it('takes a screenshot, and prints on A4 with every chart inside the page', async () => {
    const { page } = await open('/nb');
    const shot = join(dir, 'summary-nb.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    await page.emulateMedia({ media: 'print' });
    // A4 at 96 dpi less the 12 mm side margins: 210 mm − 24 mm = 186 mm ≈ 703 px.
    await page.setViewportSize({ width: 703, height: 1000 });
    const overflow = await page.evaluate(() => {
      const doc = (
        globalThis as unknown as {
          document: {
            documentElement: { clientWidth: number };
            querySelectorAll: (s: string) => ArrayLike<{ getBoundingClientRect(): { left: number; right: number } }>;
          };
        }
      ).document;
      const width = doc.documentElement.clientWidth;
      return Array.from(doc.querySelectorAll('svg, table')).filter((el) => el.getBoundingClientRect().right > width + 1 || el.getBoundingClientRect().left < -1)
        .length;
    });
    expect(overflow).toBe(0);
    const pdf = await page.pdf({ format: 'A4', printBackground: true, preferCSSPageSize: true });
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    expect(pdf.length).toBeGreaterThan(20_000);
    await page.context().close();
  });
});
