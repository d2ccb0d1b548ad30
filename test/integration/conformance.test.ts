/**
 * The conformance pass (scripts/sandbox-conformance.ts) against the local sandbox: in-process,
 * as the command a person runs, and against servers that lack transactions, DELETE, or
 * are not there at all.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { type Row, runConformance } from '../../scripts/sandbox-conformance.ts';
import { type FlakyProxy, startFlakyProxy } from '../fixtures/flaky-proxy.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = 'scripts/sandbox-conformance.ts';
let sb: Sandbox;
let seen: { method: string; url: string; auth: string | null }[] = [];
/** A pass-through proxy in front of the sandbox: the Authorization header of each request the command sent. */
let proxy: FlakyProxy;
let proxied: (string | undefined)[] = [];

beforeAll(async () => {
  sb = await startSandbox({ port: 0 });
  proxy = await startFlakyProxy({ target: sb.baseUrl });
  proxy.setApplies((req) => {
    proxied.push(req.headers.authorization);
    return false;
  });
});
afterAll(async () => {
  await proxy?.close();
  await sb?.close();
});

/** Runs the script with Node (the same binary as this test, which strips the types); never throws on exit codes. */
function runScript(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [SCRIPT, ...args], { cwd: ROOT, timeout: 90_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  return new Promise((done, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => done(port));
    });
  });
}

/** A `fetch` that records what it sends, and lets a test rewrite answers. */
function recordingFetch(rewrite?: (method: string, url: string, res: Response) => Promise<Response> | Response): typeof fetch {
  return async (input, init) => {
    const url = String(input);
    const method = init?.method ?? 'GET';
    const headers = new Headers(init?.headers);
    seen.push({ method, url, auth: headers.get('authorization') });
    const res = await fetch(input, init);
    return rewrite ? rewrite(method, url, res) : res;
  };
}

const byName = (rows: Row[], prefix: string) => rows.find((r) => r.capability.startsWith(prefix)) as Row;

describe('FHIR conformance pass', () => {
  it('passes every capability on the sandbox, and leaves nothing behind', async () => {
    seen = [];
    const { rows, ok, tag } = await runConformance({ baseUrl: sb.baseUrl, bearer: 'test-token-1', fetch: recordingFetch() });
    expect(rows.map((r) => [r.capability, r.result, r.detail])).toEqual(rows.map((r) => [r.capability, 'PASS', r.detail]));
    expect(ok).toBe(true);
    expect(rows.map((r) => r.capability.split(' ')[0])).toEqual([
      'metadata',
      'transactions',
      'create',
      'verify',
      're-send',
      'change',
      'remove',
      'conditional',
      'If-Match',
      'patch',
      'clean',
    ]);
    // The bearer token goes into the header of every request, and nowhere into the rows.
    expect(seen.length).toBeGreaterThan(50);
    expect(seen.every((s) => s.auth === 'Bearer test-token-1')).toBe(true);
    expect(JSON.stringify(rows)).not.toContain('test-token-1');
    // Synthetic, tagged data: the run's episode is gone, nothing of it is left on the server.
    expect(tag).toMatch(/^[0-9a-f]{8}$/);
    const left = (await (await fetch(`${sb.baseUrl}/EpisodeOfCare?_summary=count`)).json()) as { total: number };
    expect(left.total).toBe(0);
    const patients = (await (await fetch(`${sb.baseUrl}/Patient?_summary=count`)).json()) as { total: number };
    expect(patients.total).toBe(0);
  });

  it('writes ordered conditional writes where the server offers no transactions', async () => {
    const noTransactions = recordingFetch(async (method, url, res) => {
      if (method !== 'GET' || !url.endsWith('/metadata')) return res;
      const cs = (await res.json()) as { rest?: { interaction?: { code: string }[] }[] };
      for (const r of cs.rest ?? []) r.interaction = (r.interaction ?? []).filter((i) => i.code !== 'transaction');
      return new Response(JSON.stringify(cs), { status: 200, headers: { 'content-type': 'application/fhir+json' } });
    });
    seen = [];
    const { rows, ok } = await runConformance({ baseUrl: sb.baseUrl, fetch: noTransactions });
    expect(ok).toBe(true);
    expect(byName(rows, 'transactions')).toMatchObject({ result: 'SKIP', detail: expect.stringContaining('ordered conditional writes') });
    expect(byName(rows, 'create').detail).toContain('ordered conditional writes');
    expect(rows.filter((r) => r.result !== 'PASS').map((r) => r.capability)).toEqual(['transactions']);
    expect(seen.some((s) => s.method === 'POST' && s.url === sb.baseUrl)).toBe(false);
    expect(seen.every((s) => s.auth === null)).toBe(true);
  });

  it('skips the clean-up, with the reason, where DELETE is refused', async () => {
    const noDelete = recordingFetch((method, _url, res) =>
      method === 'DELETE'
        ? new Response(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported' }] }), {
            status: 405,
            headers: { 'content-type': 'application/fhir+json' },
          })
        : res,
    );
    const { rows, ok } = await runConformance({ baseUrl: sb.baseUrl, fetch: noDelete });
    expect(ok).toBe(true);
    expect(byName(rows, 'clean up')).toMatchObject({ result: 'SKIP', detail: expect.stringContaining('DELETE unsupported (HTTP 405)') });
    sb.reset();
  });

  it('runs as a command: prints the table and exits 0', async () => {
    const { code, stdout, stderr } = await runScript(['--base-url', sb.baseUrl]);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^capability\s+\| result \| detail\s+\|\s+ms$/m);
    for (const name of ['metadata', 'create', 'verify', 're-send', 'change', 'remove', 'If-Match', 'patch', 'clean up']) {
      expect(stdout).toMatch(new RegExp(`^${name}.*\\| PASS `, 'm'));
    }
    expect(stdout).toContain('0 failed');
  });

  const TOKEN = 'sandbox-bearer-token-6Tn2Wq8Jd4Lx';

  it('refuses --bearer TOKEN with a message saying what to use instead, sending nothing and never repeating it', async () => {
    proxied = [];
    for (const args of [['--bearer', TOKEN], [`--bearer=${TOKEN}`]]) {
      const { code, stdout, stderr } = await runScript(['--base-url', proxy.baseUrl, ...args]);
      expect(code).toBe(2);
      expect(stderr).toMatch(/--bearer is not accepted: a token on the command line is visible to other users \(ps\)/);
      expect(stderr).toContain('--bearer-env NAME');
      expect(stderr).toContain('--bearer-file PATH');
      expect(stdout + stderr).not.toContain(TOKEN);
    }
    expect(proxied).toEqual([]);
  });

  it('sends the token from --bearer-env on every request, and never prints it', async () => {
    proxied = [];
    const { code, stdout, stderr } = await runScript(['--base-url', proxy.baseUrl, '--bearer-env', 'SANDBOX_FHIR_TOKEN'], { SANDBOX_FHIR_TOKEN: TOKEN });
    expect(code).toBe(0);
    expect(stdout).toContain('(bearer token)');
    expect(proxied.length).toBeGreaterThan(50);
    expect(new Set(proxied)).toEqual(new Set([`Bearer ${TOKEN}`]));
    expect(stdout + stderr).not.toContain(TOKEN);
  });

  it('sends the token read from --bearer-file (trailing newline ignored), and never prints it', async () => {
    proxied = [];
    const file = join(mkdtempSync(join(tmpdir(), 'imh-conformance-')), 'token');
    writeFileSync(file, `${TOKEN}\n`);
    chmodSync(file, 0o600);
    const { code, stdout, stderr } = await runScript(['--base-url', proxy.baseUrl, '--bearer-file', file]);
    expect(code).toBe(0);
    expect(new Set(proxied)).toEqual(new Set([`Bearer ${TOKEN}`]));
    expect(stdout + stderr).not.toContain(TOKEN);
  });

  it('exits 2, sending nothing, for an unset variable, an unreadable file, or both options', async () => {
    proxied = [];
    const cases: [string[], RegExp][] = [
      [['--bearer-env', 'SANDBOX_TOKEN_NOT_SET'], /the environment variable SANDBOX_TOKEN_NOT_SET is not set or is empty/],
      [['--bearer-file', join(tmpdir(), 'no-such-token-file')], /cannot read --bearer-file .*: ENOENT/],
      [['--bearer-env', 'A', '--bearer-file', 'b'], /give --bearer-env or --bearer-file, not both/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await runScript(['--base-url', proxy.baseUrl, ...args]);
      expect(code).toBe(2);
      expect(stderr).toMatch(message);
    }
    expect(proxied).toEqual([]);
  });

  it('exits 2 with the usage on a usage error', async () => {
    const missing = await runScript([]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--base-url is required');
    expect(missing.stderr).toContain('usage:');
    expect(missing.stdout).toBe('');
    const unknown = await runScript(['--base-url', sb.baseUrl, '--nope']);
    expect(unknown.code).toBe(2);
    const notUrl = await runScript(['--base-url', 'not a url']);
    expect(notUrl.code).toBe(2);
  });

  it('exits 1 with FAIL rows and no stack trace when the server is not there', async () => {
    const port = await closedPort();
    const { code, stdout, stderr } = await runScript(['--base-url', `http://127.0.0.1:${port}/fhir`, '--timeout-ms', '5000']);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^metadata.*\| FAIL\s+\|.*connection failed/m);
    expect(stdout).toMatch(/^create.*\| FAIL\s+\|/m);
    expect(stdout).toMatch(/^clean up.*\| SKIP\s+\|.*nothing was written/m);
    expect(stdout).toContain('NOT OK');
    expect(stdout + stderr).not.toMatch(/\n\s+at /);
    expect(stdout + stderr).not.toMatch(/Error:|TypeError|node:internal/);
  });
});
