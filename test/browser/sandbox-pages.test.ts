/**
 * The sandbox FHIR server as an integration tester meets it in a real browser (Debian's
 * chromium): the base lists what the server holds, a resource type's link opens its search
 * page, a reference on that page opens the resource it names, and a value holding markup is
 * shown as text, never run.
 *
 * Needs Debian's chromium (`apt-get install chromium`; .ci/run installs it). Without it the
 * tests skip and say so.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { chromiumFor, launchChromium } from './chromium.ts';

const hasChromium = chromiumFor('the sandbox page browser tests');

const FHIR_JSON = 'application/fhir+json';
let sandbox: Sandbox;
let browser: Browser | undefined;
let organizationId = '';

beforeAll(async () => {
  sandbox = await startSandbox();
  const post = async (resource: object): Promise<string> => {
    const r = await fetch(`${sandbox.baseUrl}/${(resource as { resourceType: string }).resourceType}`, {
      method: 'POST',
      headers: { 'content-type': FHIR_JSON },
      body: JSON.stringify(resource),
    });
    expect(r.status).toBe(201);
    return ((await r.json()) as { id: string }).id;
  };
  organizationId = await post({ resourceType: 'Organization', name: 'Testklinikken' });
  await post({
    resourceType: 'Patient',
    name: [{ family: '<img src=x onerror="window.__ran=1">' }],
    managingOrganization: { reference: `Organization/${organizationId}` },
  });
  if (hasChromium) browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await sandbox?.close();
});

describe.skipIf(!hasChromium)('the sandbox in Chromium', () => {
  it('goes from the base to a search page to the resource a reference names, and shows markup as text', async () => {
    const page = await (browser as Browser).newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`${sandbox.baseUrl}`);
    // The base: an index of the resource types held, each a link.
    await page.getByRole('link', { name: 'Patient', exact: false }).first().click();
    await page.waitForURL(/\/Patient/);
    const search = await page.locator('body').innerText();
    expect(search).toContain('"resourceType": "Bundle"');
    // The name with markup is text on the page; nothing in it ran.
    expect(search).toContain(JSON.stringify('<img src=x onerror="window.__ran=1">'));
    expect(await page.evaluate(() => (globalThis as { __ran?: number }).__ran)).toBeUndefined();
    expect(dialogs).toEqual([]);
    // A reference is a link to the resource it names.
    await page.locator(`a[href$="Organization/${organizationId}"]`).first().click();
    await page.waitForURL(new RegExp(`Organization/${organizationId}`));
    expect(await page.locator('body').innerText()).toContain('Testklinikken');
    await page.close();
  }, 60_000);
});
