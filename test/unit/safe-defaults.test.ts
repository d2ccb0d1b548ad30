/**
 * Safe by default: the configurations wrangler.toml ships (read by wrangler itself, with its
 * rules for what named environments inherit) cannot start an open API, except local
 * development ([env.local], BRIDGE_ENV "local"); production refuses the local setting and
 * synthetic ids.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { unstable_readConfig } from 'wrangler';
import { type ConfigEnv, loadConfig } from '../../src/config.ts';
import { OperationOutcomeError } from '../../src/fhir/outcome.ts';

const WRANGLER_TOML = resolve(import.meta.dirname, '../../wrangler.toml');

/** The vars `wrangler deploy [--env <env>]` would give the Worker. */
function shippedVars(env?: string): Record<string, string> {
  const config = unstable_readConfig({ config: WRANGLER_TOML, ...(env === undefined ? {} : { env }) }, { hideWarnings: true });
  return Object.fromEntries(Object.entries(config.vars).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
}

/** The settings loadConfig refuses, by path, or [] when it starts. */
function refused(env: ConfigEnv): { paths: string[]; text: string } {
  try {
    loadConfig(env);
    return { paths: [], text: '' };
  } catch (e) {
    expect(e).toBeInstanceOf(OperationOutcomeError);
    const issues = (e as OperationOutcomeError).outcome.issue ?? [];
    return { paths: issues.flatMap((i) => i.expression ?? []), text: JSON.stringify(issues) };
  }
}

const PRODUCTION_SETTINGS = {
  IDENTIFIER_NAMESPACE: 'https://fhir.clinic.example/sid',
  IDENTITY_SECRET: 'test-identity-secret-0123456789abcdefghij',
  DATA_ENCRYPTION_KEYS: '[{"kid":"test-1","k":"dGVzdC1vbmx5LWRhdGEta2V5LTAxMjM0NTY3ODlhYmM"}]',
  FHIR_TARGETS: '{"clinic":{"baseUrl":"https://fhir.clinic.example/fhir","auth":{"type":"bearer","tokenSecret":"CLINIC_FHIR_TOKEN"}}}',
  CLINIC_FHIR_TOKEN: 'test-clinic-fhir-token-0123456789',
};
const TOKEN = 'test-api-token-0123456789abcdefghijkl';
const BEARER = { API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: TOKEN };
const OPEN = { API_AUTH: '{"type":"none"}' };

describe('wrangler.toml as shipped', () => {
  it('top level (a plain `wrangler deploy`): refuses to start without API_AUTH, and refuses an open API added with --var', () => {
    const vars = shippedVars();
    expect(vars.API_AUTH).toBeUndefined();
    expect(vars.BRIDGE_ENV).toBeUndefined();
    const plain = refused(vars);
    expect(plain.paths).toEqual(['API_AUTH']);
    expect(plain.text).toMatch(/is required/);
    expect(refused({ ...vars, ...OPEN }).paths).toEqual(['API_AUTH']);
    // With authentication it starts.
    expect(loadConfig({ ...vars, ...BEARER }).apiAuth.type).toBe('bearer');
  });

  it('[env.production]: says production, takes real ids only, and refuses an open API and BRIDGE_ENV=local', () => {
    const vars = shippedVars('production');
    expect(vars).toMatchObject({ BRIDGE_ENV: 'production', ALLOW_SYNTHETIC_IDS: 'false' });
    // As shipped: placeholders (scripts/check-production.ts refuses to deploy them), and the
    // Worker would refuse them too: the deployment must still say how callers authenticate,
    // set its identity and name its targets.
    expect(vars.API_AUTH).toMatch(/^REPLACE-WITH-/);
    expect(refused(vars).paths).toEqual(['API_AUTH', 'IDENTIFIER_NAMESPACE', 'IDENTITY_SECRET', 'DATA_ENCRYPTION_KEYS', 'FHIR_TARGETS']);
    const complete = { ...vars, ...PRODUCTION_SETTINGS, ...BEARER };
    const config = loadConfig(complete);
    expect([config.bridgeEnv, config.allowSyntheticIds, config.apiAuth.type]).toEqual(['production', false, 'bearer']);

    // `--var API_AUTH:{"type":"none"}`, with or without `--var BRIDGE_ENV:local`, or synthetic ids on.
    expect(refused({ ...complete, ...OPEN }).paths).toEqual(['API_AUTH']);
    expect(refused({ ...complete, ...OPEN, BRIDGE_ENV: 'local' }).paths).toEqual(['BRIDGE_ENV', 'API_AUTH']);
    expect(refused({ ...complete, BRIDGE_ENV: 'local' }).paths).toEqual(['BRIDGE_ENV']);
    expect(refused({ ...complete, ALLOW_SYNTHETIC_IDS: 'true' }).paths).toEqual(['ALLOW_SYNTHETIC_IDS']);
  });

  it('[env.local] (wrangler dev --env local, npm start, the workerd tests): the one open API, with synthetic ids, and no public URL', () => {
    const vars = shippedVars('local');
    expect(vars).toMatchObject({ BRIDGE_ENV: 'local', ALLOW_SYNTHETIC_IDS: 'true', API_AUTH: '{"type":"none"}' });
    const config = loadConfig(vars);
    expect([config.bridgeEnv, config.apiAuth.type, config.allowSyntheticIds]).toEqual(['local', 'none', true]);
    const local = unstable_readConfig({ config: WRANGLER_TOML, env: 'local' }, { hideWarnings: true });
    expect(local.workers_dev).toBe(false);
    expect(local.preview_urls).toBe(false);
    expect(local.routes ?? []).toEqual([]);
  });

  it('gives every environment the same bindings, so none deploys a Worker missing its queue or database', () => {
    const shape = (env?: string) => {
      const c = unstable_readConfig({ config: WRANGLER_TOML, ...(env === undefined ? {} : { env }) }, { hideWarnings: true });
      return {
        d1: c.d1_databases.map((d: { binding: string }) => d.binding),
        producers: c.queues.producers?.map((q: { binding: string }) => q.binding),
        consumers: c.queues.consumers?.map((q: { queue: string; dead_letter_queue?: string }) => [q.queue, q.dead_letter_queue]),
        durableObjects: c.durable_objects.bindings.map((b: { name: string; class_name: string }) => [b.name, b.class_name]),
        crons: c.triggers.crons,
      };
    };
    expect(shape('production')).toEqual(shape());
    expect(shape('local')).toEqual(shape());
  });
});

describe('BRIDGE_ENV and an open API (loadConfig)', () => {
  it('allows {"type":"none"} only where BRIDGE_ENV is "local", naming API_AUTH and never a value', () => {
    expect(loadConfig({ ...OPEN, BRIDGE_ENV: 'local' }).apiAuth).toEqual({ type: 'none' });
    for (const env of [OPEN, { ...OPEN, BRIDGE_ENV: 'production', ...PRODUCTION_SETTINGS }]) {
      const { paths, text } = refused(env);
      expect(paths).toEqual(['API_AUTH']);
      expect(text).toMatch(/only allowed for local development: where BRIDGE_ENV is \\"local\\"/);
    }
  });

  it('refuses an unknown BRIDGE_ENV by name, without its value', () => {
    const { paths, text } = refused({ ...BEARER, BRIDGE_ENV: 'staging-xyz' });
    expect(paths).toEqual(['BRIDGE_ENV']);
    expect(text).not.toContain('staging-xyz');
  });

  it('refuses local development beside real national ids, and defaults production to real ids only', () => {
    expect(refused({ ...BEARER, BRIDGE_ENV: 'local', ALLOW_SYNTHETIC_IDS: 'false', ...PRODUCTION_SETTINGS }).paths).toEqual(['BRIDGE_ENV']);
    expect(loadConfig({ ...BEARER, BRIDGE_ENV: 'production', ...PRODUCTION_SETTINGS }).allowSyntheticIds).toBe(false);
    expect(refused({ ...BEARER, BRIDGE_ENV: 'production' }).paths).toEqual(['IDENTIFIER_NAMESPACE', 'IDENTITY_SECRET', 'DATA_ENCRYPTION_KEYS', 'FHIR_TARGETS']);
  });

  it('refuses production without FHIR_TARGETS instead of delivering to the local sandbox', () => {
    const { FHIR_TARGETS: _unset, ...withoutTargets } = PRODUCTION_SETTINGS;
    const { paths, text } = refused({ ...BEARER, BRIDGE_ENV: 'production', ...withoutTargets });
    expect(paths).toEqual(['FHIR_TARGETS']);
    expect(text).toMatch(/is required where BRIDGE_ENV is \\"production\\".*local development sandbox/);
    const config = loadConfig({ ...BEARER, BRIDGE_ENV: 'production', ...PRODUCTION_SETTINGS });
    expect(config.targets.clinic.baseUrl).toBe('https://fhir.clinic.example/fhir');
    // Local development keeps its default: the sandbox.
    expect(loadConfig({ ...OPEN, BRIDGE_ENV: 'local' }).targets.clinic.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:8103\/fhir$/);
  });

  it('still refuses an open API where real national ids are accepted', () => {
    expect(refused({ ...OPEN, ALLOW_SYNTHETIC_IDS: 'false', ...PRODUCTION_SETTINGS }).paths).toEqual(['API_AUTH']);
  });
});
