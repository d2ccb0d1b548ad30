/**
 * `npm start` (scripts/start.ts): a port in use ends it with one sentence naming the variable to
 * change, and a start stopped with Ctrl-C leaves no process and no temporary folder behind.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
/** The start script exactly as package.json runs it. */
const startCommand = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

interface Started {
  exited: Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>;
  output: () => string;
  pid: number;
}

/** Runs `npm start`'s command in its own process group (as a terminal would), with a private TMPDIR. */
function start(env: Record<string, string>, tmp: string): Started {
  const t0 = Date.now();
  const child = spawn('/bin/sh', ['-c', startCommand], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${join(root, 'node_modules/.bin')}${delimiter}${process.env.PATH}`, TMPDIR: tmp, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>((ok) =>
    child.once('exit', (code) => ok({ code, stdout, stderr, ms: Date.now() - t0 })),
  );
  return { exited, output: () => stdout + stderr, pid: child.pid as number };
}

/** Processes whose command line mentions `needle` (Linux /proc). */
function processesWith(needle: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(needle)) out.push(`${pid} ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The private TMPDIRs of the starts, removed at the end. */
const tmps: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'imh-start-test-'));
  tmps.push(dir);
  return dir;
};

let occupied: Server;
let occupiedPort: number;
beforeAll(async () => {
  occupied = createServer(() => undefined);
  await new Promise<void>((r) => occupied.listen(0, '127.0.0.1', r));
  occupiedPort = (occupied.address() as { port: number }).port;
});
afterAll(() => {
  occupied?.close();
  for (const dir of tmps) rmSync(dir, { recursive: true, force: true });
});

describe('npm start with a port in use', () => {
  it.each(['SANDBOX_PORT', 'PRIMARY_SANDBOX_PORT', 'PORT'])(
    '%s taken: one sentence naming the port and the variable, exit 1, nothing left',
    async (variable) => {
      const tmp = scratch();
      const ports: Record<string, string> = {
        SANDBOX_PORT: String(await freePort()),
        PRIMARY_SANDBOX_PORT: String(await freePort()),
        PORT: String(await freePort()),
      };
      ports[variable] = String(occupiedPort);
      const r = await start(ports, tmp).exited;
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual([
        `port ${occupiedPort} is already in use (${variable}): stop what listens there (another npm start?) or choose a free port, e.g. ${variable}=${occupiedPort + 10000 <= 65535 ? occupiedPort + 10000 : occupiedPort - 1000} npm start`,
      ]);
      // Checked before anything starts: no wrangler, no temporary folder, and the other ports are free again.
      expect(r.ms).toBeLessThan(15_000);
      expect(readdirSync(tmp).filter((f) => f.startsWith('imh-bridge-dev-'))).toEqual([]);
      for (const [name, port] of Object.entries(ports)) if (name !== variable) expect(await canListen(Number(port))).toBe(true);
    },
  );

  it('two variables naming one port: one sentence, exit 1', async () => {
    const tmp = scratch();
    const port = String(await freePort());
    const r = await start({ SANDBOX_PORT: port, PRIMARY_SANDBOX_PORT: String(await freePort()), PORT: port }, tmp).exited;
    expect([r.code, r.stderr.trim()]).toEqual([1, `SANDBOX_PORT and PORT are both ${port}: give each its own port`]);
  });
});

async function canListen(port: number): Promise<boolean> {
  const srv = createServer();
  return new Promise((ok) => {
    srv.once('error', () => ok(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => ok(true)));
  });
}

describe('npm start and Ctrl-C', () => {
  it('prints progress while the Worker starts, answers as its own Worker, and Ctrl-C stops every child and removes the temporary folder', async () => {
    const tmp = scratch();
    const s = start(
      // No examples: this test is about the processes, not the delivery.
      {
        SANDBOX_PORT: String(await freePort()),
        PRIMARY_SANDBOX_PORT: String(await freePort()),
        PORT: String(await freePort()),
        EXAMPLES_DIR: join(tmp, 'none'),
      },
      tmp,
    );
    const deadline = Date.now() + 120_000;
    while (
      !s.output().includes('running; Ctrl-C') &&
      Date.now() < deadline &&
      !(await Promise.race([s.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 250))]))
    ) {
      // waiting for the start to finish
    }
    const out = s.output();
    expect(out).toContain('applying the D1 migrations');
    expect(out).toContain('starting the Worker (wrangler dev');
    expect(out).toMatch(/bridge \(workerd\)\s+http:\/\/127\.0\.0\.1:\d+/);
    // Offline, wrangler used to print the Request.cf fetch failure with a stack trace, twice.
    expect(out).not.toContain('Request.cf');
    expect(out).not.toMatch(/^\s+at /m);
    // No warning that needs explaining: wrangler's Cron notice becomes one plain line of our own.
    expect(out).not.toMatch(/WARNING/);
    expect(out).toMatch(/curl http:\/\/127\.0\.0\.1:\d+\/cdn-cgi\/local\/scheduled/);
    const [state] = readdirSync(tmp).filter((f) => f.startsWith('imh-bridge-dev-'));
    expect(state).toBeDefined();
    const ours = processesWith(join(tmp, state as string));
    expect(ours.length).toBeGreaterThan(0);
    // The local SMART client secret reaches the Worker from a file, never on a command line.
    const secret = readFileSync(join(tmp, state as string, 'worker-secrets.env'), 'utf8')
      .trim()
      .split('=')[1] as string;
    expect(secret.length).toBeGreaterThan(20);
    expect(ours.join('\n')).not.toContain(secret);

    // Ctrl-C in a terminal: SIGINT to the whole process group.
    process.kill(-s.pid, 'SIGINT');
    await s.exited;
    // The shell may end at once; the start script goes on stopping wrangler (at most 5 s before SIGKILL).
    for (let i = 0; i < 40 && processesWith(tmp).length; i++) await new Promise((ok) => setTimeout(ok, 250));
    expect(processesWith(tmp)).toEqual([]);
    expect(readdirSync(tmp).filter((f) => f.startsWith('imh-bridge-dev-'))).toEqual([]);
  }, 180_000);
});

describe('npm start never sends to a Worker it did not start', () => {
  it("another server taking PORT after the check (a second instance's Worker): one sentence, exit 1, nothing sent to it", async () => {
    const tmp = scratch();
    const port = await freePort();
    const seen: string[] = [];
    // Answers like a bridge's /healthz, and to anything else with 404.
    const impostor = createHttpServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/healthz') res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      else res.writeHead(404).end();
    });
    try {
      const s = start({ SANDBOX_PORT: String(await freePort()), PRIMARY_SANDBOX_PORT: String(await freePort()), PORT: String(port) }, tmp);
      // The ports are checked first; the impostor takes PORT while the migrations run.
      while (!s.output().includes('applying the D1 migrations')) await new Promise((ok) => setTimeout(ok, 100));
      await new Promise<void>((ok) => impostor.listen(port, '127.0.0.1', ok));
      const r = await s.exited;
      expect(r.code).toBe(1);
      const sentence = r.stderr.trim().split('\n').at(-1);
      expect(sentence).toMatch(
        new RegExp(`^port ${port} (is already in use \\(PORT\\)|answers, but not as the Worker this start launched).*PORT=\\d+ npm start$`),
      );
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(seen.filter((l) => !l.startsWith('GET /healthz') && !l.startsWith('GET /smart/launch'))).toEqual([]);
      expect(readdirSync(tmp).filter((f) => f.startsWith('imh-bridge-dev-'))).toEqual([]);
    } finally {
      impostor.close();
    }
  }, 120_000);
});
