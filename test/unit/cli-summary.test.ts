/** `imh-bridge summary`: the document (signed when the bridge has a key) or the page; exit 3 when the consent refuses. */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { publicJwks } from '../../src/auth/jwks.ts';
import { verifySummary } from '../../src/coordination/summary.ts';
import { EXAMPLES_DIR } from '../fixtures/examples.ts';
import { privateJwk } from '../fixtures/keys.ts';

const bin = resolve(import.meta.dirname, '../../bin/imh-bridge.js');
const run = (args: string[], env: Record<string, string> = {}) => {
  const { BRIDGE_PRIVATE_JWKS: _k, ...rest } = process.env;
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...rest, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const mother = join(EXAMPLES_DIR, 'completed-mother.episode.json');
const AT = ['--at', '2026-05-10T10:00:00Z'];

describe('imh-bridge summary', () => {
  it('prints the FHIR document, unsigned with a note when the bridge has no key, the same bytes for the same --at', () => {
    const r = run(['summary', mother, '--format', 'fhir', '--lang', 'nb', ...AT]);
    expect(r.code).toBe(0);
    const b = JSON.parse(r.out);
    expect([b.resourceType, b.type, b.timestamp, b.entry[0].resource.resourceType]).toEqual(['Bundle', 'document', '2026-05-10T10:00:00Z', 'Composition']);
    expect(b.signature).toBeUndefined();
    expect(r.err).toMatch(/not signed/);
    expect(run(['summary', mother, '--format', 'fhir', '--lang', 'nb', ...AT]).out).toBe(r.out);
  });

  it('signs with BRIDGE_PRIVATE_JWKS, verifiable against its public JWKS; never prints the key', async () => {
    const key = await privateJwk('RS384', 'bridge-1');
    const r = run(['summary', mother, '--format', 'fhir', '--lang', 'en', ...AT], { BRIDGE_PRIVATE_JWKS: JSON.stringify({ keys: [key] }) });
    expect(r.code).toBe(0);
    expect(r.err).not.toMatch(/not signed/);
    expect(r.out + r.err).not.toContain(key.d as string);
    const b = JSON.parse(r.out);
    expect(b.signature.sigFormat).toBe('application/jose');
    expect(await verifySummary(b, publicJwks({ keys: [key] }))).toBe(true);
  });

  it('prints the page', () => {
    const r = run(['summary', mother, '--format', 'html', '--lang', 'en', ...AT]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^<!DOCTYPE html>\n<html lang="en">/);
    expect(r.out).not.toMatch(/<script/i);
  });

  it('exits 3 with the OperationOutcome when the gate is closed (declined, expired)', () => {
    const declined = run(['summary', join(EXAMPLES_DIR, 'active-father-no-consent.episode.json'), '--format', 'html', '--lang', 'nb']);
    expect(declined.code).toBe(3);
    expect(JSON.parse(declined.out)).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'forbidden' }] });
    const expired = run(['summary', mother, '--format', 'fhir', '--lang', 'nb', '--at', '2027-02-01']);
    expect(expired.code).toBe(3);
    expect(JSON.parse(expired.out).issue[0].details.text).toMatch(/expired/);
  });

  it('exits 2 for a wrong format, language, time or key set', () => {
    expect(run(['summary', mother, '--format', 'pdf', '--lang', 'nb']).code).toBe(2);
    expect(run(['summary', mother, '--format', 'fhir', '--lang', 'de']).code).toBe(2);
    expect(run(['summary', mother, '--format', 'fhir', '--lang', 'nb', '--at', 'tomorrow']).code).toBe(2);
    const bad = run(['summary', mother, '--format', 'fhir', '--lang', 'nb', ...AT], { BRIDGE_PRIVATE_JWKS: '{"keys":[{"kty":"RSA","n":"secret-ish"}]}' });
    expect(bad.code).toBe(2);
    expect(bad.err).not.toContain('secret-ish');
  });
});
