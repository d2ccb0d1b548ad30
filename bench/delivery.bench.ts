/**
 * Delivery throughput and cost: synthetic episodes through submitEpisode + attemptJob over
 * HTTP to the sandbox FHIR server, against the sandbox applying the same Bundles directly,
 * with a JSON round-trip of the same bundle as the baseline measured in the same run.
 *
 *   npm run bench:delivery            (N episodes: BENCH_EPISODES, default 60)
 *
 * The sandbox runs in this process, on its own worker thread, so that the main thread's
 * CPU time (process.threadCpuUsage) is the bridge's alone: parse, map, hash, store, the
 * HTTP client, reading answers, the ledger. The sandbox's CPU is read on its thread.
 * All data is synthetic (national ids month + 80). Everything stays on 127.0.0.1.
 */
import { randomUUID } from 'node:crypto';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import type { Bundle } from '@medplum/fhirtypes';
import { startSandbox } from '../sandbox/server.ts';
import { mapEpisode } from '../src/index.ts';
import { clearCapabilityCache } from '../src/sync/apply.ts';
import { FhirTargetClient } from '../src/sync/client.ts';
import { attemptJob, type DeliveryDeps, submitEpisode } from '../src/sync/deliver.ts';
import { LocalQueue } from '../src/sync/local-queue.ts';
import { MemoryStore } from '../src/sync/memory-store.ts';
import { longEpisode } from '../test/fixtures/generate.ts';

type ToSandbox = { cmd: 'reset' | 'cpu' | 'close'; id: number };
type FromSandbox = { id: number; cpuMs?: number } | { ready: string };

const cpuMs = () => {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
};

if (!isMainThread) {
  // The sandbox thread: answers reset / cpu / close from the bench.
  const port = parentPort;
  if (!port) throw new Error('no parent port');
  const sb = await startSandbox({ port: 0, host: '127.0.0.1' });
  port.on('message', async (m: ToSandbox) => {
    if (m.cmd === 'reset') sb.reset();
    if (m.cmd === 'close') await sb.close();
    port.postMessage({ id: m.id, cpuMs: cpuMs() } satisfies FromSandbox);
    if (m.cmd === 'close') port.close();
  });
  port.postMessage({ ready: sb.baseUrl } satisfies FromSandbox);
} else {
  await main();
}

async function main(): Promise<void> {
  const N = Number(process.env.BENCH_EPISODES ?? 60);
  const SESSIONS = 12; // longEpisode needs ≥ 12 sessions for its goals' dates to be valid
  const started = performance.now();

  // --- sandbox on its own thread ---
  const worker = new Worker(new URL(import.meta.url));
  let nextId = 0;
  const waiting = new Map<number, (cpu: number) => void>();
  const baseUrl = await new Promise<string>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: FromSandbox) => {
      if ('ready' in m) resolve(m.ready);
      else waiting.get(m.id)?.(m.cpuMs ?? 0);
    });
  });
  const ask = (cmd: ToSandbox['cmd']) =>
    new Promise<number>((resolve) => {
      const id = ++nextId;
      waiting.set(id, (cpu) => {
        waiting.delete(id);
        resolve(cpu);
      });
      worker.postMessage({ cmd, id } satisfies ToSandbox);
    });

  // --- inputs: N distinct parents ---
  const episodes = Array.from({ length: N }, (_, i) => longEpisode(SESSIONS, i + 1));
  const bundles: Bundle[] = episodes.map((e) => mapEpisode(e));
  const texts = bundles.map((b) => JSON.stringify(b));
  const entries = bundles[0]?.entry?.length ?? 0;
  const kb = texts.reduce((s, t) => s + t.length, 0) / N / 1024;

  // --- baseline: JSON round-trip of the same bundles ---
  // Thread CPU time rather than wall time: steadier on a busy machine, and the same clock as the bridge's figures.
  const rtMs = median(
    rounds(7, () => {
      const c = cpuMs();
      for (const b of bundles) JSON.parse(JSON.stringify(b));
      return (cpuMs() - c) / N;
    }),
  );

  const deps = (store: MemoryStore, client: FhirTargetClient): DeliveryDeps => ({
    store,
    clientFor: () => client,
    now: Date.now,
    random: Math.random,
    newId: randomUUID,
  });

  // Warm-up outside the timings: JIT, the sandbox's definitions and indexes, the HTTP pool.
  {
    const store = new MemoryStore();
    const d = deps(store, new FhirTargetClient(baseUrl, { fetch, timeoutMs: 60_000 }));
    for (const e of [longEpisode(SESSIONS, 900), longEpisode(SESSIONS, 901), longEpisode(SESSIONS, 900)]) {
      const job = await submitEpisode(e, d);
      const r = await attemptJob(job.id, d);
      if (!r?.done || r.job.status !== 'delivered') throw new Error(`warm-up delivery ended ${r?.job.status}: ${JSON.stringify(r?.job.targets)}`);
    }
  }

  interface Phase {
    name: string;
    wallMs: number;
    bridgeCpuMs: number;
    sandboxCpuMs: number;
    applyMs?: number;
    submitCpuMs?: number;
  }
  const phases: Phase[] = [];

  /** The round with the median wall time of `ROUNDS` runs of a phase. */
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
  async function medianRound(once: () => Promise<Phase>): Promise<void> {
    const runs: Phase[] = [];
    for (let i = 0; i < ROUNDS; i++) runs.push(await once());
    runs.sort((a, b) => a.wallMs - b.wallMs);
    phases.push(runs[Math.floor(runs.length / 2)] as Phase);
  }

  /** Delivers every episode end to end; `run` decides how attempts are scheduled. */
  const endToEnd = (name: string, run: (d: DeliveryDeps) => Promise<string[]>) => medianRound(() => endToEndOnce(name, run));
  async function endToEndOnce(name: string, run: (d: DeliveryDeps) => Promise<string[]>): Promise<Phase> {
    await ask('reset');
    clearCapabilityCache();
    const d = deps(new MemoryStore(), new FhirTargetClient(baseUrl, { fetch, timeoutMs: 60_000 }));
    const sb0 = await ask('cpu');
    const cpu0 = cpuMs();
    const t0 = performance.now();
    const jobIds = await run(d);
    const wallMs = performance.now() - t0;
    const bridgeCpuMs = cpuMs() - cpu0;
    const sandboxCpuMs = (await ask('cpu')) - sb0;
    for (const id of jobIds) {
      const job = await d.store.getJob(id);
      if (job?.status !== 'delivered') throw new Error(`${name}: a job ended ${job?.status}: ${JSON.stringify(job?.targets)}`);
    }
    if (jobIds.length !== N) throw new Error(`${name}: ${jobIds.length} jobs for ${N} episodes`);
    return { name, wallMs, bridgeCpuMs, sandboxCpuMs };
  }

  /** A pool of `workers` loops, each taking the next episode: submit, then attempt until done. */
  const pool = (workers: number) => async (d: DeliveryDeps) => {
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (next < N) {
          const e = episodes[next++];
          const job = await submitEpisode(e, d);
          ids.push(job.id);
          for (;;) {
            const r = await attemptJob(job.id, d);
            if (!r || r.done) break;
            await new Promise((w) => setTimeout(w, r.delayMs));
          }
        }
      }),
    );
    return ids;
  };

  await endToEnd('end-to-end, concurrency 1', pool(1));
  await endToEnd('end-to-end, concurrency 8', pool(8));
  // LocalQueue serialises per parent only: N distinct parents means N lanes at once.
  await endToEnd(`end-to-end, LocalQueue (${N} lanes)`, async (d) => {
    const queue = new LocalQueue(d);
    const ids: string[] = [];
    for (const e of episodes) {
      const job = await submitEpisode(e, d);
      ids.push(job.id);
      queue.enqueue(job.id, job.parentKey);
    }
    await queue.drain();
    queue.close();
    return ids;
  });

  // --- the sandbox applying the same Bundles directly, one POST at a time ---
  const responses = new Map<string, string>();
  let applyTimes: number[] = [];
  await medianRound(async () => {
    await ask('reset');
    applyTimes = [];
    const sb0 = await ask('cpu');
    const cpu0 = cpuMs();
    const t0 = performance.now();
    for (const text of texts) {
      const s = performance.now();
      const res = await fetch(baseUrl, { method: 'POST', headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' }, body: text });
      const body = await res.text();
      applyTimes.push(performance.now() - s);
      if (res.status !== 200) throw new Error(`direct transaction answered ${res.status}`);
      responses.set(text, body);
    }
    const wallMs = performance.now() - t0;
    const phase: Phase = {
      name: 'sandbox direct POST, sequential',
      wallMs,
      bridgeCpuMs: cpuMs() - cpu0,
      sandboxCpuMs: (await ask('cpu')) - sb0,
      applyMs: median(applyTimes),
    };
    return phase;
  });
  const applyMs = phases[phases.length - 1]?.applyMs as number;

  // --- the bridge alone: the same deliveries answered from recorded responses, no network ---
  {
    const metadata = await (await fetch(`${baseUrl}/metadata`)).text();
    const replay: typeof fetch = async (input, init) => {
      const url = String(input);
      const answer = url.endsWith('/metadata') ? metadata : responses.get(String(init?.body));
      if (answer === undefined) throw new Error('replay: no recorded response');
      return new Response(answer, { status: 200, headers: { 'content-type': 'application/fhir+json' } });
    };
    await medianRound(async () => {
      clearCapabilityCache();
      const d = deps(new MemoryStore(), new FhirTargetClient('http://replay.invalid/fhir', { fetch: replay }));
      let submitCpu = 0;
      const cpu0 = cpuMs();
      const t0 = performance.now();
      for (const e of episodes) {
        const c = cpuMs();
        const job = await submitEpisode(e, d);
        submitCpu += cpuMs() - c;
        const r = await attemptJob(job.id, d);
        if (r?.job.status !== 'delivered') throw new Error(`replay delivery ended ${r?.job.status}: ${JSON.stringify(r?.job.targets)}`);
      }
      const bridgeCpuMs = cpuMs() - cpu0;
      return { name: 'bridge alone (recorded answers)', wallMs: performance.now() - t0, bridgeCpuMs, sandboxCpuMs: 0, submitCpuMs: submitCpu };
    });
  }
  const alone = phases[phases.length - 1] as Phase;
  const mapMs = median(
    rounds(5, () => {
      const c = cpuMs();
      for (const e of episodes) mapEpisode(e);
      return (cpuMs() - c) / N;
    }),
  );

  await ask('close');
  await worker.terminate();

  // --- report ---
  const f = (x: number, d = 2) => x.toFixed(d);
  console.log(`delivery bench: ${N} synthetic episodes (longEpisode(${SESSIONS}, i), distinct parents), ${entries} entries, ${f(kb, 1)} KiB per bundle`);
  console.log(`baseline: JSON round-trip of one bundle ${f(rtMs, 3)} ms CPU; sandbox apply (direct POST, median) ${f(applyMs)} ms per episode`);
  console.log('');
  const head = ['phase', 'wall s', 'episodes/s', 'bridge CPU ms/ep', '(× rt)', '(÷ apply)', 'sandbox CPU ms/ep'];
  const rows = phases.map((p) => {
    const bridge = p.bridgeCpuMs / N;
    return [
      p.name,
      f(p.wallMs / 1000),
      f((N * 1000) / p.wallMs, 1),
      f(bridge),
      `${f(bridge / rtMs, 1)}×`,
      `${f(bridge / applyMs, 3)}`,
      p.sandboxCpuMs ? f(p.sandboxCpuMs / N) : '-',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of rows) console.log(line(r));
  console.log('');
  const submit = (alone.submitCpuMs ?? 0) / N;
  const attempt = alone.bridgeCpuMs / N - submit;
  console.log(
    `bridge alone, per episode: map ${f(mapMs)} ms (parse + map), submit ${f(submit)} ms (parse, map, 2 × SHA-256, store), ` +
      `attempt ${f(attempt)} ms (store reads, request JSON, answer, ledger)`,
  );
  console.log(
    `ratio bridge CPU ÷ sandbox apply, per episode: ${f(phases[0] ? phases[0].bridgeCpuMs / N / applyMs : Number.NaN, 2)} end to end (concurrency 1), ${f(alone.bridgeCpuMs / N / applyMs, 2)} bridge alone`,
  );
  console.log('');
  console.log('bridge CPU ms/ep: main-thread CPU per episode (parse, map, hash, store, HTTP client, ledger); in the direct-POST row, fetch alone.');
  console.log('(× rt): that CPU as a multiple of the JSON round-trip baseline; (÷ apply): as a fraction of the sandbox apply time per episode.');
  console.log(`total run ${f((performance.now() - started) / 1000, 1)} s`);
}

function rounds(n: number, fn: () => number): number[] {
  fn();
  return Array.from({ length: n }, fn);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}
