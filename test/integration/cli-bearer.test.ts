/**
 * `imh-bridge sync` takes the target's bearer token from an environment variable or a file,
 * never from the command line (where `ps` and shell history would show it), and only sends
 * to https targets or loopback. A proxy in front of the sandbox records what arrives.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { EXAMPLES_DIR } from '../fixtures/examples.ts';
import { type FlakyProxy, startFlakyProxy } from '../fixtures/flaky-proxy.ts';

const bin = resolve(import.meta.dirname, '../../bin/imh-bridge.js');
const EPISODE = resolve(EXAMPLES_DIR, 'planned-minimal.episode.json');
const TOKEN = 'target-bearer-token-3vQ9xL2mK7pR5sT8';

function run(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (status) => ok({ status, stdout, stderr }));
  });
}

let sandbox: Sandbox;
let proxy: FlakyProxy;
/** The Authorization header of every request the proxy received. */
let seen: (string | undefined)[] = [];
beforeAll(async () => {
  sandbox = await startSandbox({ port: 0 });
  proxy = await startFlakyProxy({ target: sandbox.baseUrl });
  proxy.setApplies((req) => {
    seen.push(req.headers.authorization);
    return false;
  });
});
afterAll(async () => {
  await proxy?.close();
  await sandbox?.close();
});

const dir = mkdtempSync(join(tmpdir(), 'imh-cli-bearer-'));

describe('imh-bridge sync: the bearer token', () => {
  it('refuses --bearer with a message saying what to use instead, sending nothing and never repeating the token', async () => {
    seen = [];
    for (const args of [['--bearer', TOKEN], [`--bearer=${TOKEN}`]]) {
      const r = await run(['sync', EPISODE, '--target', proxy.baseUrl, ...args]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/--bearer is not accepted: a token on the command line is visible to other users/);
      expect(r.stderr).toMatch(/--bearer-env NAME/);
      expect(r.stderr).toMatch(/--bearer-file PATH/);
      expect(`${r.stdout}${r.stderr}`).not.toContain(TOKEN);
    }
    expect(seen).toEqual([]);
  });

  it('sends the token named by --bearer-env on every request', async () => {
    seen = [];
    const r = await run(['sync', EPISODE, '--target', proxy.baseUrl, '--bearer-env', 'CLINIC_FHIR_TOKEN'], { CLINIC_FHIR_TOKEN: TOKEN });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).result.status).toBe('delivered');
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set([`Bearer ${TOKEN}`]));
    expect(`${r.stdout}${r.stderr}`).not.toContain(TOKEN);
  });

  it('sends the token read from --bearer-file (trailing newline ignored)', async () => {
    seen = [];
    const file = join(dir, 'token');
    writeFileSync(file, `${TOKEN}\n`);
    chmodSync(file, 0o600);
    const r = await run(['sync', EPISODE, '--target', proxy.baseUrl, '--bearer-file', file]);
    expect(r.status).toBe(0);
    expect(new Set(seen)).toEqual(new Set([`Bearer ${TOKEN}`]));
  });

  it('exits 2 for an unset variable, an unreadable file, a token with spaces, or both options, and sends nothing', async () => {
    seen = [];
    const spaced = join(dir, 'spaced');
    writeFileSync(spaced, 'two words');
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--bearer-env', 'NOT_SET_ANYWHERE_X'], {}, /the environment variable NOT_SET_ANYWHERE_X is not set or is empty/],
      [['--bearer-env', 'not a name'], {}, /--bearer-env must name an environment variable/],
      [['--bearer-file', join(dir, 'missing')], {}, /cannot read --bearer-file .*: ENOENT/],
      [['--bearer-file', spaced], {}, /holds spaces or characters not allowed in a bearer token/],
      [['--bearer-env', 'T', '--bearer-file', spaced], { T: TOKEN }, /not both/],
    ];
    for (const [args, env, message] of cases) {
      const r = await run(['sync', EPISODE, '--target', proxy.baseUrl, ...args], env);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain('two words');
    }
    expect(seen).toEqual([]);
  });
});

describe('imh-bridge sync: the target', () => {
  it('refuses plain http to another host, and sends nothing', async () => {
    const r = await run(['sync', EPISODE, '--target', 'http://fhir.psych.example/fhir']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--target must use https \(http is allowed only for localhost\)/);
  });
});
