/**
 * `imh-bridge sync` for an initial load (NDJSON files and folders) against a real sandbox FHIR
 * server, and against servers that do not answer: a closed port and one that never replies.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { completed, EXAMPLES_DIR } from '../fixtures/examples.ts';

const bin = resolve(import.meta.dirname, '../../bin/imh-bridge.js');
function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((ok) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (status) => ok({ status, stdout, stderr, ms: Date.now() - started }));
  });
}

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

let sandbox: Sandbox;
let silent: Server;
beforeAll(async () => {
  sandbox = await startSandbox({ port: 0 });
  // Accepts connections and never answers.
  silent = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
});
const scratch: string[] = [];
afterAll(async () => {
  await sandbox?.close();
  silent?.close();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe('imh-bridge sync over files and folders', () => {
  it('sends a folder of .json and .ndjson files; a bad line is named by file:line and the rest arrives', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imh-sync-load-'));
    scratch.push(dir);
    const ndjson = readFileSync(join(EXAMPLES_DIR, 'episodes.ndjson'), 'utf8').trimEnd();
    const extra = completed();
    extra.episodeId = 'VG-LOAD-1';
    extra.consent.consentId = 'CN-LOAD-1';
    writeFileSync(join(dir, 'history.ndjson'), `${ndjson}\n\n{"episodeId": "VG-CUT\n${JSON.stringify(extra)}\n`);
    copyFileSync(join(EXAMPLES_DIR, 'planned-minimal.episode.json'), join(dir, 'a-planned.json'));
    mkdirSync(join(dir, 'archive'));
    writeFileSync(join(dir, 'archive', 'ignored.json'), 'not even JSON');

    const first = await run(['sync', dir, '--target', sandbox.baseUrl]);
    const summary = JSON.parse(first.stdout);
    expect(summary).toMatchObject({ total: 6, outcomes: { delivered: 5, unreadable: 1, invalid: 0, refused: 0, failed: 0 } });
    expect(summary.failures).toEqual([{ where: `${join(dir, 'history.ndjson')}:5`, outcome: 'unreadable', reason: expect.stringMatching(/^not valid JSON/) }]);
    expect(first.stderr).toContain(`${join(dir, 'history.ndjson')}:5: not readable (not JSON)`);
    expect(first.stderr).toMatch(/^sync: 6 of 6 episodes in /m);
    // Only an unreadable line failed: the servers are fine, the input needs fixing.
    expect(first.status).toBe(2);
    const episodes = sandbox.repo.countByType().EpisodeOfCare;
    expect(episodes).toBe(4);

    // The same load again: every episode is already there, and nothing is duplicated.
    const again = await run(['sync', join(dir, 'history.ndjson'), join(dir, 'a-planned.json'), '--target', sandbox.baseUrl, '--concurrency', '2']);
    expect(JSON.parse(again.stdout).outcomes).toMatchObject({ delivered: 0, unchanged: 5, unreadable: 1 });
    expect(again.stderr).toMatch(/unchanged \(the server already held it\)\s+5/);
    expect(sandbox.repo.countByType().EpisodeOfCare).toBe(episodes);
    // No person's number, name or phone in anything printed.
    const { nationalId, given, family } = completed().parent;
    for (const term of [nationalId, ...given, family]) expect(first.stderr + first.stdout + again.stderr + again.stdout).not.toContain(term);
  });
});

describe('imh-bridge sync to a server that does not answer', () => {
  it('a closed port: ends within the default bound, says ECONNREFUSED host:port, exits 1', async () => {
    const port = await closedPort();
    const r = await run(['sync', join(EXAMPLES_DIR, 'planned-minimal.episode.json'), '--target', `http://127.0.0.1:${port}/fhir`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`connection failed (ECONNREFUSED 127.0.0.1:${port})`);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'dead', attempts: 5, result: { status: 'dead' } });
    // Four retries with backoff from 1 s: about 8–15 s, never the 98 s of eight attempts.
    expect(r.ms).toBeLessThan(30_000);
  });

  it('--retries 0 gives up after one attempt', async () => {
    const port = await closedPort();
    const r = await run(['sync', join(EXAMPLES_DIR, 'planned-minimal.episode.json'), '--target', `http://127.0.0.1:${port}/fhir`, '--retries', '0']);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).attempts).toBe(1);
    expect(r.ms).toBeLessThan(10_000);
  });

  it('a server that never answers: --timeout bounds the whole delivery and says what had no answer', async () => {
    const { port } = silent.address() as { port: number };
    const r = await run(['sync', join(EXAMPLES_DIR, 'planned-minimal.episode.json'), '--target', `http://127.0.0.1:${port}/fhir`, '--timeout', '2']);
    expect(r.status).toBe(1);
    expect(r.ms).toBeLessThan(8_000);
    const report = JSON.parse(r.stdout);
    expect(report.status).toBe('dead');
    expect(report.gaveUp).toMatch(/^gave up after 1 attempt: the next retry would end after the 2 s timeout \(clinic: GET \w+\?…: no answer within \d+ ms/);
    expect(r.stderr).toContain(report.gaveUp);
  });

  it('refuses a --timeout, --retries or --concurrency that is not a number in range', async () => {
    for (const args of [
      ['--timeout', '0'],
      ['--retries', '-1'],
      ['--concurrency', 'many'],
    ]) {
      const r = await run(['sync', join(EXAMPLES_DIR, 'planned-minimal.episode.json'), '--target', sandbox.baseUrl, ...args]);
      expect([r.status, r.stderr.split('\n')[0]]).toEqual([2, expect.stringContaining(args[0] as string)]);
    }
  });
});
