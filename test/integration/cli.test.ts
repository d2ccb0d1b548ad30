/** The delivery commands of the CLI against a real sandbox FHIR server. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { completed, EXAMPLES_DIR } from '../fixtures/examples.ts';
import { type FlakyProxy, startFlakyProxy } from '../fixtures/flaky-proxy.ts';

const bin = resolve(import.meta.dirname, '../../bin/imh-bridge.js');
/** Runs the CLI without blocking this process, which serves the sandbox it talks to. */
function run(args: string[], input?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (status) => ok({ status, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

let sandbox: Sandbox;
let proxy: FlakyProxy;
beforeAll(async () => {
  sandbox = await startSandbox({ port: 0 });
  proxy = await startFlakyProxy({ target: sandbox.baseUrl });
});
afterAll(async () => {
  await proxy?.close();
  await sandbox?.close();
});

describe('imh-bridge sync', () => {
  it('delivers one episode and exits 0; a second run changes nothing and says so', async () => {
    const file = resolve(EXAMPLES_DIR, 'completed-mother.episode.json');
    const first = await run(['sync', file, '--target', sandbox.baseUrl]);
    expect(first.status).toBe(0);
    expect(JSON.parse(first.stdout).result).toMatchObject({ status: 'delivered', written: 69, counts: { created: 69, updated: 0, unchanged: 0 } });
    expect(first.stderr).toContain('created 69, updated 0, unchanged 0');
    const counts = sandbox.repo.countByType();
    // The same episode again: the user is told nothing was written.
    const second = await run(['sync', file, '--target', sandbox.baseUrl]);
    expect(second.status).toBe(0);
    expect(JSON.parse(second.stdout).result.counts).toEqual({ created: 0, updated: 0, unchanged: 69 });
    expect(second.stderr).toContain('created 0, updated 0, unchanged 69');
    expect(sandbox.repo.countByType()).toEqual(counts);
  });

  it('retries through 503 with Retry-After and still delivers once', async () => {
    proxy.reset();
    proxy.setApplies((req) => req.method === 'POST');
    proxy.enqueue({ kind: '503', retryAfter: '1' }, 'apply-then-drop');
    const e = completed();
    e.episodeId = 'VG-CLI-RETRY';
    e.consent.consentId = 'CN-CLI-RETRY';
    const before = sandbox.repo.countByType().EpisodeOfCare ?? 0;
    const r = await run(['sync', '-', '--target', proxy.baseUrl], JSON.stringify(e));
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/retrying in/);
    expect(JSON.parse(r.stdout).attempts).toBe(3);
    expect(sandbox.repo.countByType().EpisodeOfCare).toBe(before + 1);
    proxy.setApplies(undefined);
  });

  it("exits 1 with the server's words when the server refuses", async () => {
    proxy.reset();
    proxy.setApplies((req) => req.method === 'POST');
    proxy.enqueue('412');
    const r = await run(['sync', resolve(EXAMPLES_DIR, 'planned-minimal.episode.json'), '--target', proxy.baseUrl]);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).result).toMatchObject({ status: 'failed', httpStatus: 412 });
    proxy.setApplies(undefined);
  });

  it('exits 2 for a bad episode or a missing --target, and sends nothing', async () => {
    const e = completed();
    e.status = 'paused';
    const requests = proxy.requests;
    const bad = await run(['sync', '-', '--target', proxy.baseUrl], JSON.stringify(e));
    expect(bad.status).toBe(2);
    expect(JSON.parse(bad.stdout).issue[0].expression).toEqual(['/status']);
    expect(proxy.requests).toBe(requests);
    expect((await run(['sync', resolve(EXAMPLES_DIR, 'planned-minimal.episode.json')])).status).toBe(2);
  });
});

describe('imh-bridge sandbox', () => {
  it('serves FHIR R4 at the printed URL and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [bin, 'sandbox', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await new Promise<string>((ok, fail) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /(http:\/\/127\.0\.0\.1:\d+\/fhir)/.exec(out);
        if (m) ok(m[1] as string);
      });
      child.once('exit', () => fail(new Error(`sandbox exited: ${out}`)));
    });
    const meta = (await (await fetch(`${url}/metadata`)).json()) as { resourceType: string; fhirVersion: string };
    expect([meta.resourceType, meta.fhirVersion]).toEqual(['CapabilityStatement', '4.0.1']);
    const code = await new Promise<number | null>((ok) => {
      child.once('exit', ok);
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
  });
});
