/**
 * Load run in workerd: starts the Worker with `wrangler dev --env local` on loopback, with
 * `--log-level warn` (wrangler then writes no line per request, which would otherwise be part
 * of what is measured), and drives 16 concurrent connections with a bounded number of requests,
 * alternating phases of `GET /healthz` and `POST /v1/$validate` (the completed example's
 * Bundle), after a warm-up of both. Each round is one phase of each route, back to back, so a
 * machine that slows down moves both; the ratios to /healthz are taken per round and reported
 * as the median (min–max) over the rounds. Also times the first `$validate` after start (a
 * valid Bundle: the fast path only) and the first of an invalid Bundle (which loads the
 * reference validator). Stops the Worker. Run: npm run bench:load
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
const PHASES = Number(process.env.BENCH_LOAD_PHASES ?? 7); // rounds: one phase per route each

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
  [
    join(root, 'node_modules/.bin/wrangler'),
    'dev',
    '--env',
    'local',
    '--port',
    String(port),
    '--ip',
    '127.0.0.1',
    '--persist-to',
    state,
    '--show-interactive-dev-session=false',
    '--log-level',
    'warn',
  ],
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
  const mapped = mapEpisode(completed());
  const bundle = JSON.stringify(mapped);
  // The same Bundle with one defect: the generated validators hand it to the reference.
  const broken = JSON.parse(bundle);
  const org = broken.entry.find((e: { resource: { resourceType: string } }) => e.resource.resourceType === 'Organization');
  org.resource.active = 'yes';
  const invalidBody = JSON.stringify(broken);
  const healthz = () => fetch(`${base}/healthz`);
  // Encoded once: turning the 100 KB string into UTF-8 on every request is the load client's
  // work, and it would run on the same cores as the Worker it measures.
  const post = (text: string) => {
    const body = new TextEncoder().encode(text);
    return () => fetch(`${base}/v1/$validate`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body });
  };
  const validate = post(bundle);
  const okHealth = (r: Response) => r.status === 200;
  const okValid = (r: Response, body: string) => r.status === 200 && !/"severity":"(error|fatal)"/.test(body);
  const okInvalid = (r: Response, body: string) => r.status === 200 && /"severity":"error"/.test(body);
  // The first $validate in the isolate: the fast path, without Medplum. Then the first
  // fallback, which imports and indexes the reference validator.
  let t = performance.now();
  await drive(validate, okValid, 1);
  const firstMs = performance.now() - t;
  t = performance.now();
  await drive(post(invalidBody), okInvalid, 1);
  const firstFallbackMs = performance.now() - t;
  t = performance.now();
  await drive(validate, okValid, 1);
  const secondMs = performance.now() - t;
  // Warm-up of both routes (JIT, connection pool), not measured.
  for (let i = 0; i < 2; i++) {
    await drive(healthz, okHealth, REQUESTS / 2);
    await drive(validate, okValid, REQUESTS / 2);
  }
  const names = ['GET /healthz', 'POST /v1/$validate'] as const;
  const rounds: [Phase, Phase][] = [];
  for (let p = 0; p < PHASES; p++) rounds.push([await drive(healthz, okHealth, REQUESTS), await drive(validate, okValid, REQUESTS)]);
  const summary = (ph: Phase) => ({ p50: quantile(ph.latencies, 0.5), p99: quantile(ph.latencies, 0.99), rps: (ph.latencies.length / ph.ms) * 1000 });
  const per = rounds.map(([h, v]) => [summary(h), summary(v)] as const);
  const fmt = (xs: number[], d = 2) => `${quantile(xs, 0.5).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
  console.log(
    `Load in workerd (wrangler dev --env local --log-level warn), ${CONNECTIONS} connections, ${PHASES} rounds × ${REQUESTS} requests per route; median (min–max) over rounds\n`,
  );
  console.log(
    `first $validate after start (valid Bundle, fast path): ${firstMs.toFixed(1)} ms; first invalid Bundle (loads the reference validator): ${firstFallbackMs.toFixed(1)} ms; next valid: ${secondMs.toFixed(1)} ms`,
  );
  console.log('route                | p50 ms              | p99 ms              | req/s');
  names.forEach((name, i) => {
    const col = (k: 'p50' | 'p99' | 'rps') => per.map((r) => r[i]?.[k] as number);
    console.log([name.padEnd(20), fmt(col('p50')).padEnd(19), fmt(col('p99')).padEnd(19), fmt(col('rps'), 0)].join(' | '));
  });
  const ratio = (k: 'p50' | 'p99' | 'rps') => per.map(([h, v]) => v[k] / h[k]);
  console.log(`\n$validate ÷ /healthz, per round: p50 ${fmt(ratio('p50'))}×, p99 ${fmt(ratio('p99'))}×, throughput ${fmt(ratio('rps'))}×`);
  // A round's p99 rests on its 4 slowest of 400 answers; over all rounds it rests on 28 of 2,800
  // per route, with the rounds still interleaved.
  const pooled = (i: 0 | 1, q: number) =>
    quantile(
      rounds.flatMap((r) => r[i].latencies),
      q,
    );
  console.log(
    `$validate ÷ /healthz, all rounds pooled (${PHASES * REQUESTS} requests per route): p50 ${(pooled(1, 0.5) / pooled(0, 0.5)).toFixed(2)}×, p99 ${(pooled(1, 0.99) / pooled(0, 0.99)).toFixed(2)}×`,
  );
} finally {
  stop();
  await new Promise((r) => setTimeout(r, 500));
  rmSync(state, { recursive: true, force: true });
}
