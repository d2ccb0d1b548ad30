/**
 * `wrangler deploy --env production` refuses until every placeholder in wrangler.toml's
 * [env.production] is filled: scripts/check-production.mjs, run by wrangler as the
 * environment's custom build.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { unstable_readConfig } from 'wrangler';
import { loadConfig } from '../../src/config.ts';
import { OperationOutcomeError } from '../../src/fhir/outcome.ts';

const root = resolve(import.meta.dirname, '../..');
const WRANGLER_TOML = join(root, 'wrangler.toml');
const SCRIPT = join(root, 'scripts', 'check-production.mjs');
const shipped = readFileSync(WRANGLER_TOML, 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'imh-check-production-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PLACEHOLDERS = [
  '[env.production.vars] API_AUTH',
  '[env.production.vars] IDENTIFIER_NAMESPACE',
  '[env.production.vars] FHIR_TARGETS',
  '[[env.production.d1_databases]] database_id',
];

/** Synthetic values an operator would put in place of each placeholder. */
const FILLED: Record<string, string> = {
  '"REPLACE-WITH-API_AUTH-JSON"': `'{"type":"bearer","tokensSecret":"API_TOKENS"}'`,
  '"REPLACE-WITH-IDENTIFIER_NAMESPACE-HTTPS-URL"': '"https://fhir.clinic.example/sid"',
  '"REPLACE-WITH-FHIR_TARGETS-JSON"': `'{"clinic":{"baseUrl":"https://fhir.clinic.example/fhir","auth":{"type":"bearer","tokenSecret":"CLINIC_FHIR_TOKEN"}}}'`,
  '"REPLACE-WITH-D1-DATABASE-ID"': '"4d3c2b1a-0000-4000-8000-000000000001"',
};

function copy(name: string, replace: Record<string, string>): string {
  let text = shipped;
  for (const [from, to] of Object.entries(replace)) {
    expect(text, `wrangler.toml carries ${from}`).toContain(from);
    text = text.replaceAll(from, to);
  }
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function check(...args: string[]) {
  return spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', cwd: root, timeout: 60_000 });
}

describe('scripts/check-production.mjs', () => {
  it('refuses the wrangler.toml as shipped, naming every placeholder and what goes there', () => {
    const r = check('--env', 'production');
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Refusing to deploy: .*wrangler\.toml \[env\.production\] still has 4 placeholders/);
    for (const name of PLACEHOLDERS) expect(r.stderr).toContain(`  ${name}: `);
    expect(r.stderr).toContain('wrangler d1 create imh-bridge');
    expect(r.stderr).toContain('README "Deploying to Cloudflare"');
  });

  it('passes a filled copy, and names only what is left in a partly filled one', () => {
    const filled = check('--env', 'production', '--config', copy('filled.toml', FILLED));
    expect(filled.stderr).toBe('');
    expect(filled.status).toBe(0);
    expect(filled.stdout).toMatch(/no placeholders left/);

    const { '"REPLACE-WITH-FHIR_TARGETS-JSON"': _left, ...most } = FILLED;
    const partly = check('--env', 'production', '--config', copy('partly.toml', most));
    expect(partly.status).toBe(1);
    expect(partly.stderr).toMatch(/still has 1 placeholder \(/);
    expect(partly.stderr).toContain('[env.production.vars] FHIR_TARGETS');
    for (const name of PLACEHOLDERS.filter((n) => !n.endsWith('FHIR_TARGETS'))) expect(partly.stderr).not.toContain(name);
  });

  it('treats a var deleted from wrangler.toml (passed with --var instead) as filled', () => {
    const { '"REPLACE-WITH-API_AUTH-JSON"': _api, ...rest } = FILLED;
    const file = copy('var.toml', rest);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^API_AUTH = "REPLACE-WITH-API_AUTH-JSON"\n/m, ''));
    const r = check('--env', 'production', '--config', file);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('is the custom build of [env.production] only', () => {
    const read = (env?: string) => unstable_readConfig({ config: WRANGLER_TOML, ...(env ? { env } : {}) }, { hideWarnings: true });
    expect(read('production').build.command).toBe('node scripts/check-production.mjs --env production');
    expect(read('local').build.command).toBeUndefined();
    expect(read().build.command).toBeUndefined();
  });

  it('`wrangler deploy --env production --dry-run` runs it and stops, naming the placeholders', () => {
    const wrangler = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
    const out = join(dir, 'dist');
    const r = spawnSync(process.execPath, [wrangler, 'deploy', '--env', 'production', '--dry-run', '--outdir', out], {
      encoding: 'utf8',
      cwd: root,
      timeout: 120_000,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1' },
    });
    expect(r.status).not.toBe(0);
    const text = r.stdout + r.stderr;
    expect(text).toContain('[custom build] Refusing to deploy');
    for (const name of PLACEHOLDERS) expect(text).toContain(name);
    // Nothing was bundled.
    expect(spawnSync('ls', [out]).status).not.toBe(0);
  }, 120_000);

  it('the Worker refuses the shipped placeholders too, should the check be bypassed', () => {
    const config = unstable_readConfig({ config: WRANGLER_TOML, env: 'production' }, { hideWarnings: true });
    const vars = Object.fromEntries(Object.entries(config.vars).map(([k, v]) => [k, String(v)]));
    const env = {
      ...vars,
      API_TOKENS: 'test-api-token-0123456789abcdefghijkl',
      IDENTITY_SECRET: 'test-identity-secret-0123456789abcdefghij',
      DATA_ENCRYPTION_KEYS: '[{"kid":"test-1","k":"dGVzdC1vbmx5LWRhdGEta2V5LTAxMjM0NTY3ODlhYmM"}]',
    };
    let paths: string[] = [];
    try {
      loadConfig(env);
    } catch (e) {
      expect(e).toBeInstanceOf(OperationOutcomeError);
      paths = ((e as OperationOutcomeError).outcome.issue ?? []).flatMap((i) => i.expression ?? []);
    }
    expect(paths).toEqual(['API_AUTH', 'IDENTIFIER_NAMESPACE', 'FHIR_TARGETS']);
  });
});
