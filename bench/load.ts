/**
 * Load run in workerd: starts the Worker with `wrangler dev --env local` on loopback, with
 * `--log-level warn` (wrangler then writes no line per request, which would otherwise be part
 * of what is measured), and drives 16 concurrent connections with a bounded number of requests,
 * alternating phases of `GET /healthz` and `POST /v1/$validate` (the completed example's
 * Bundle). Reports p50/p99 latency and throughput per route and the ratios to /healthz, then
 * stops the Worker. Run: npm run bench:load
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mapEpisode } from '../src/mapping/bundle.ts';
import { completed } from '../test/fixtures/examples.ts';
import { quantile } from './stats.ts';

const CONNECTIONS = 16;
const REQUESTS = Number(process.env.BENCH_LOAD_REQUESTS ?? 400); // per phase
const PHASES = Number(process.env.BENCH_LOAD_PHASES ?? 3); // per route, alternating

const root = resolve(import.meta.dirname, '..');

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

async function waitUntilUp(base: string, worker: ChildProcess, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (worker.exitCode !== null) throw new Error(`wrangler dev exited (${worker.exitCode})`);
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('the Worker did not answer /healthz in time');
}

interface Phase {
  latencies: number[];
  ms: number;
}

/** `total` requests over `CONNECTIONS` concurrent loops; each checks its answer. */
async function drive(request: () => Promise<Response>, check: (r: Response, body: string) => boolean, total: number): Promise<Phase> {
  let next = 0;
  const latencies: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < total) {
        next++;
        const s = performance.now();
        const r = await request();
        const body = await r.text();
        latencies.push(performance.now() - s);
        if (!check(r, body)) throw new Error(`unexpected answer ${r.status}: ${body.slice(0, 200)}`);
      }
    }),
  );
  return { latencies, ms: performance.now() - t0 };
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const state = mkdtempSync(join(tmpdir(), 'imh-load-'));
const worker = spawn(
  process.execPath,
  [join(root, 'node_modules/.bin/wrangler'), 'dev', '--env', 'local', '--port', String(port), '--ip', '127.0.0.1', '--persist-to', state, '--show-interactive-dev-session=false', '--log-level', 'warn'],
  { cwd: root, detached: true, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
);
const stop = () => {
  try {
    if (worker.pid && worker.exitCode === null) process.kill(-worker.pid, 'SIGTERM');
  } catch {
    // already gone
  }
};
process.once('exit', stop);
try {
  await waitUntilUp(base, worker);
  const bundle = JSON.stringify(mapEpisode(completed()));
  const healthz = () => fetch(`${base}/healthz`);
  const validate = () => fetch(`${base}/v1/$validate`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: bundle });
  const okHealth = (r: Response) => r.status === 200;
  const okValid = (r: Response, body: string) => r.status === 200 && !/"severity":"(error|fatal)"/.test(body);
  // Warm-up: the first $validate in an isolate loads the definitions.
  const first = performance.now();
  await drive(validate, okValid, 1);
  const firstMs = performance.now() - first;
  await drive(healthz, okHealth, 100);
  await drive(validate, okValid, 50);
  const routes: Record<string, Phase[]> = { 'GET /healthz': [], 'POST /v1/$validate': [] };
  for (let p = 0; p < PHASES; p++) {
    routes['GET /healthz']?.push(await drive(healthz, okHealth, REQUESTS));
    routes['POST /v1/$validate']?.push(await drive(validate, okValid, REQUESTS));
  }
  const stats = Object.fromEntries(
    Object.entries(routes).map(([route, phases]) => {
      const lat = phases.flatMap((x) => x.latencies);
      const rps = phases.map((x) => (x.latencies.length / x.ms) * 1000);
      return [route, { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), rps: quantile(rps, 0.5), rpsLo: Math.min(...rps), rpsHi: Math.max(...rps) }];
    }),
  );
  const h = stats['GET /healthz'] as { p50: number; p99: number; rps: number };
  console.log(`Load in workerd (wrangler dev --env local --log-level warn), ${CONNECTIONS} connections, ${PHASES} alternating phases × ${REQUESTS} requests per route\n`);
  console.log(`first $validate after start: ${firstMs.toFixed(1)} ms`);
  console.log('route                | p50 ms | p99 ms | req/s median (min–max) | p50 ×healthz | p99 ×healthz | req/s ×healthz');
  for (const [route, s] of Object.entries(stats)) {
    console.log(
      [
        route.padEnd(20),
        s.p50.toFixed(2).padStart(6),
        s.p99.toFixed(2).padStart(6),
        `${s.rps.toFixed(0)} (${s.rpsLo.toFixed(0)}–${s.rpsHi.toFixed(0)})`.padEnd(22),
        (s.p50 / h.p50).toFixed(2).padStart(12),
        (s.p99 / h.p99).toFixed(2).padStart(12),
        (s.rps / h.rps).toFixed(2).padStart(14),
      ].join(' | '),
    );
  }
} finally {
  stop();
  await new Promise((r) => setTimeout(r, 500));
  rmSync(state, { recursive: true, force: true });
}
