/**
 * `imh-bridge coordination` against two sandboxes: the primary team's server holding the
 * bridge's requests as the bridge writes them (one accepted there by the primary team), and the
 * clinic's server holding a risk-not-shared request for the therapist.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Bundle, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { clinicSharing, evaluateGate } from '../../src/coordination/gate.ts';
import { sharePrimaryParsed } from '../../src/coordination/share.ts';
import { parseEpisode } from '../../src/domain/parse.ts';
import { DEV_IDENTITY } from '../../src/fhir/identity.ts';
import { mapParsedEpisode } from '../../src/mapping/bundle.ts';
import { activeFather, completed } from '../fixtures/examples.ts';

const bin = resolve(import.meta.dirname, '../../bin/imh-bridge.js');
/** Runs the CLI without blocking this process, which serves the sandboxes it reads. */
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

const SENT_AT = '2026-05-10T10:00:00Z';
const post = async (sandbox: Sandbox, bundle: Bundle) => {
  const res = await fetch(sandbox.baseUrl, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundle) });
  expect(res.status).toBe(200);
};
const search = async (sandbox: Sandbox, query: string): Promise<Task[]> =>
  (((await (await fetch(`${sandbox.baseUrl}/${query}`)).json()) as Bundle).entry ?? []).map((e) => e.resource as Task);

let primary: Sandbox;
let clinic: Sandbox;
let accepted: Task;
let father: { episodeId: string; assessmentId: string };
beforeAll(async () => {
  [primary, clinic] = await Promise.all([startSandbox({ port: 0 }), startSandbox({ port: 0 })]);
  // The mother's episode with a positive PHQ-9 self-harm item, as the primary team's server receives it.
  const mother = completed();
  mother.assessments[1].answers['9'] = 1;
  await post(primary, sharePrimaryParsed(parseEpisode(mother, {}), { at: SENT_AT, hasTarget: () => true }).bundle);
  // The primary team accepts the risk follow-up on their own server.
  const [risk] = await search(primary, 'Task?code=risk-follow-up');
  const res = await fetch(`${primary.baseUrl}/Task/${risk?.id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ ...risk, status: 'accepted' }),
  });
  expect(res.status).toBe(200);
  accepted = (await res.json()) as Task;
  // The father declined: his risk stays at the clinic, as a request to the therapist.
  const e = parseEpisode(activeFather(), {});
  await post(clinic, mapParsedEpisode(e, DEV_IDENTITY, clinicSharing(evaluateGate(e, SENT_AT, () => true))));
  const [notShared] = await search(clinic, 'Task?code=risk-not-shared');
  const value = notShared?.identifier?.[0]?.value as string;
  father = { episodeId: value.split('/')[0] as string, assessmentId: value.split('/')[2] as string };
});
afterAll(async () => {
  await primary?.close();
  await clinic?.close();
});

describe('imh-bridge coordination', () => {
  it("lists each episode's requests from both servers as JSON, with the primary team's status and the overdue flag", async () => {
    const r = await run(['coordination', '--target', clinic.baseUrl, '--primary', primary.baseUrl, '--at', '2026-01-13T23:00:00+01:00', '--format', 'json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.at).toBe('2026-01-13T23:00:00+01:00');
    const mother = out.episodes.find((e: { episodeId: string }) => e.episodeId === 'VG-2026-0042');
    expect(mother).toMatchObject({ clinicOrg: '974557746', overdue: 0 });
    expect(mother.requests).toEqual([
      {
        occasion: 'risk-follow-up',
        assessmentId: 'A2',
        server: 'primary',
        status: 'accepted',
        priority: 'urgent',
        due: '2026-01-13',
        overdue: false,
        lastModified: accepted.meta?.lastUpdated,
        task: `Task/${accepted.id}`,
      },
      {
        occasion: 'guidance-ended',
        server: 'primary',
        status: 'requested',
        priority: 'routine',
        overdue: false,
        lastModified: expect.any(String),
        task: expect.stringMatching(/^Task\//),
      },
    ]);
    const fatherRow = out.episodes.find((e: { episodeId: string }) => e.episodeId === father.episodeId);
    expect(fatherRow.requests).toEqual([
      expect.objectContaining({
        occasion: 'risk-not-shared',
        assessmentId: father.assessmentId,
        server: 'clinic',
        status: 'requested',
        priority: 'urgent',
        overdue: false,
      }),
    ]);
    expect(out.episodes).toHaveLength(2);
  });

  it('the accepted risk follow-up is overdue the day after it was due, in the default table', async () => {
    const r = await run(['coordination', '--target', clinic.baseUrl, '--primary', primary.baseUrl, '--at', '2026-01-14T08:00:00+01:00']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CLINIC\s+EPISODE\s+REQUEST\s+SERVER\s+STATUS\s+PRIORITY\s+DUE\s+OVERDUE\s+LAST MODIFIED$/);
    expect(lines).toContainEqual(
      expect.stringMatching(/^974557746\s+VG-2026-0042\s+risk-follow-up A2\s+primary\s+accepted\s+urgent\s+2026-01-13\s+OVERDUE\s+\S+Z$/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^974557746\s+VG-2026-0042\s+guidance-ended\s+primary\s+requested\s+routine\s+-\s+-\s/));
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`\\s${father.episodeId}\\s+risk-not-shared ${father.assessmentId}\\s+clinic\\s+requested\\s+urgent`)),
    );
    expect(lines).toHaveLength(4);
  });

  it('reads one server alone when only one is given', async () => {
    const r = await run(['coordination', '--primary', primary.baseUrl, '--format', 'json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.episodes.map((e: { episodeId: string }) => e.episodeId)).toEqual(['VG-2026-0042']);
    // Without --at: now, with this machine's offset.
    expect(out.at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$/);
    expect(Math.abs(Date.parse(out.at) - Date.now())).toBeLessThan(60_000);
  });

  it('a server that cannot be reached ends it with one line naming the server and the cause, exit 1', async () => {
    const closed = createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((ok) => closed.close(() => ok()));
    const r = await run(['coordination', '--target', `http://127.0.0.1:${port}/fhir`, '--primary', primary.baseUrl]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `cannot read the coordination requests from the clinic server at http://127.0.0.1:${port}/fhir: connection failed (ECONNREFUSED 127.0.0.1:${port})\n`,
    );
  });

  it("takes each server's token from its own variable or file, and says which server refused", async () => {
    const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
    const fake = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      const ok = req.headers.authorization === (req.url?.startsWith('/p/') ? 'Bearer primary-token' : 'Bearer clinic-token');
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/fhir+json' });
      res.end(
        JSON.stringify(
          ok ? { resourceType: 'Bundle', type: 'searchset', total: 0 } : { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] },
        ),
      );
    });
    await new Promise<void>((ok) => fake.listen(0, '127.0.0.1', ok));
    const url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    try {
      const env = { PRIMARY_TOKEN: 'primary-token', CLINIC_TOKEN: 'clinic-token' };
      const tokenFile = join(mkdtempSync(join(tmpdir(), 'imh-coordination-')), 'clinic.token');
      writeFileSync(tokenFile, 'clinic-token\n', { mode: 0o600 });
      const r = await run(
        ['coordination', '--primary', `${url}/p`, '--primary-bearer-env', 'PRIMARY_TOKEN', '--target', `${url}/c`, '--bearer-file', tokenFile],
        env,
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe('no coordination requests found\n');
      expect(seen.map((s) => [s.url.split('?')[0], s.headers.authorization])).toEqual([
        ['/p/Task', 'Bearer primary-token'],
        ['/c/Task', 'Bearer clinic-token'],
      ]);
      const wrong = await run(['coordination', '--primary', `${url}/p`, '--primary-bearer-env', 'CLINIC_TOKEN'], env);
      expect(wrong.status).toBe(1);
      expect(wrong.stderr).toBe(`cannot read the coordination requests from the primary server at ${url}/p: HTTP 401\n`);
      expect(wrong.stderr).not.toContain('clinic-token');
    } finally {
      await new Promise<void>((ok) => fake.close(() => ok()));
    }
  });

  it.each([
    [['coordination'], /needs --primary/],
    [['coordination', 'file.json', '--primary', 'http://127.0.0.1:1/fhir'], /takes no file/],
    [['coordination', '--primary', 'http://127.0.0.1:1/fhir', '--format', 'xml'], /--format must be table or json/],
    [['coordination', '--primary', 'http://127.0.0.1:1/fhir', '--at', 'yesterday'], /--at must be/],
    [['coordination', '--primary', 'http://fhir.example.org/fhir'], /--primary must use https/],
    [['coordination', '--primary', 'http://127.0.0.1:1/fhir', '--primary-bearer', 'x'], /--primary-bearer is not accepted/],
    [['coordination', '--primary', 'http://127.0.0.1:1/fhir', '--primary-bearer-env', 'UNSET_TOKEN_VARIABLE'], /UNSET_TOKEN_VARIABLE is not set/],
  ])('exits 2 on a usage error: %j', async (args, message) => {
    const r = await run(args);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
  });
});
