/**
 * Debian's Chromium for the browser tests (playwright-core downloads no browser). Where it is
 * missing, each test file says so loudly, naming what to install, and skips.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Flags for a headless run in a container: no sandbox, GPU, QUIC or background traffic. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Whether Chromium is installed; if not, says which tests skip and how to install it. */
export function chromiumFor(what: string): boolean {
  const has = existsSync(CHROMIUM);
  if (!has) console.warn(`\n*** SKIPPING ${what}: no Chromium at ${CHROMIUM}. Install it with: apt-get update && apt-get install -y chromium ***\n`);
  return has;
}

/** A headless Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}
