/**
 * `npm start`: the whole bridge on this machine with its embedded defaults.
 * 1. the sandbox FHIR R4 server of the clinic on 127.0.0.1:8103 (SANDBOX_PORT);
 * 2. a second sandbox as the primary treatment team's server, on 127.0.0.1:8104 (PRIMARY_SANDBOX_PORT, default
 *    SANDBOX_PORT + 1), configured as the target of the examples' primary organisation (993778125);
 * 3. the Worker in workerd (`wrangler dev --env local`: [env.local] opens the API) with fresh local D1, Queue and Durable Objects;
 * 4. every example episode sent through the real delivery path (PUT → queue → sandboxes, as the consents allow);
 * then it prints where to look, how to list the coordination requests and a link that opens the mother's
 * coordination summary as her psychiatrist would from the EHR (the primary sandbox also plays the EHR's
 * SMART authorisation server, with a synthetic psychiatrist signed in), and runs until Ctrl-C.
 *
 * Each start knows its own processes: every port is checked free before anything starts (a port in
 * use ends it with one sentence naming the variable to change), and the Worker that answers on
 * PORT must echo this start's random SMART client id before anything is sent to it, so examples
 * never go to another instance's Worker. Ctrl-C, SIGTERM or a failure stop wrangler (and workerd
 * under it) and the sandboxes, and remove the temporary folder of the local D1/Queue state.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { type Sandbox, startSandbox } from '../sandbox/server.ts';

const root = resolve(import.meta.dirname, '..');
/** The primary treatment organisation of the examples (the mother's DPS). */
const PRIMARY_ORG = '993778125';
const examplesDir = resolve(root, process.env.EXAMPLES_DIR ?? 'examples');
const wrangler = join(root, 'node_modules/.bin/wrangler');
const started = Date.now();
const elapsed = () => `${Math.round((Date.now() - started) / 1000)} s`;

/** Ends the start with one sentence on standard error (no stack trace), after cleaning up. */
class StartError extends Error {}

/** A port variable's value, or the sentence saying what is wrong with it. */
function portFrom(name: string, fallback: number): number {
  const raw = process.env[name];
  const port = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new StartError(`${name} must be a port number from 1 to 65535 (it is "${raw}")`);
  return port;
}

/** The sentence for a port that is taken. */
const portInUse = (port: number, variable: string) =>
  `port ${port} is already in use (${variable}): stop what listens there (another npm start?) or choose a free port, e.g. ${variable}=${port + 10000 <= 65535 ? port + 10000 : port - 1000} npm start`;

/** Whether 127.0.0.1:port can be listened on (by binding it for a moment): free, in use, or not allowed (EACCES). */
function portState(port: number): Promise<'free' | 'in-use' | 'forbidden'> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? ok('in-use') : e.code === 'EACCES' ? ok('forbidden') : fail(e)));
    srv.listen(port, '127.0.0.1', () => srv.close(() => ok('free')));
  });
}

/** Everything this start started, stopped in reverse order; safe to call more than once. */
const cleanup: (() => Promise<void> | void)[] = [];
let stopping: Promise<never> | undefined;
function stop(code: number, message?: string): Promise<never> {
  stopping ??= (async () => {
    if (message) console.error(message);
    for (const step of cleanup.reverse()) {
      try {
        await step();
      } catch {
        // Stopping goes on: one part that will not stop must not keep the others running.
      }
    }
    process.exit(code);
  })();
  return stopping;
}
process.once('SIGINT', () => void stop(130));
process.once('SIGTERM', () => void stop(143));
process.on('uncaughtException', (e) => void stop(1, e instanceof StartError ? e.message : `npm start failed: ${(e as Error)?.stack ?? e}`));
process.on('unhandledRejection', (e) => void stop(1, e instanceof StartError ? e.message : `npm start failed: ${(e as Error)?.stack ?? e}`));

/** Stops a child and everything it runs (wrangler forwards SIGTERM to workerd), SIGKILL after 5 s. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(kill);
      done();
    });
    child.kill('SIGTERM');
  });
}

/** Runs wrangler with what it needs offline (see the env below); output comes line by line to `onLine`. */
function runWrangler(args: string[], onLine: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, [wrangler, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      // Miniflare fetches the Request.cf object from workers.cloudflare.com on every start and, with
      // no network, prints a warning with a stack trace for each of the Worker's two runtimes. Locally
      // the placeholder it falls back to is all the bridge needs. A value the user set is kept.
      CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? 'false',
      // No usage metrics from a local start (another request that cannot succeed offline).
      WRANGLER_SEND_METRICS: process.env.WRANGLER_SEND_METRICS ?? 'false',
    },
  });
  for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
  return child;
}

const SANDBOX_PORT = portFrom('SANDBOX_PORT', 8103);
const PRIMARY_SANDBOX_PORT = portFrom('PRIMARY_SANDBOX_PORT', SANDBOX_PORT + 1);
const WORKER_PORT = portFrom('PORT', 8787);
const ports: [number, string][] = [
  [SANDBOX_PORT, 'SANDBOX_PORT'],
  [PRIMARY_SANDBOX_PORT, 'PRIMARY_SANDBOX_PORT'],
  [WORKER_PORT, 'PORT'],
];
for (const [i, [port, name]] of ports.entries()) {
  const same = ports.find(([p], j) => j < i && p === port);
  if (same) await stop(1, `${same[1]} and ${name} are both ${port}: give each its own port`);
  const state = await portState(port);
  if (state === 'in-use') await stop(1, portInUse(port, name));
  if (state === 'forbidden')
    await stop(1, `port ${port} may not be used by this user (${name}): choose one above 1023, e.g. ${name}=${port + 18000} npm start`);
}

/** A sandbox on its port; a port taken since the check above ends the start with the same sentence. */
async function sandboxOn(port: number, variable: string, options: Parameters<typeof startSandbox>[0] = {}): Promise<Sandbox> {
  try {
    const s = await startSandbox({ ...options, port });
    cleanup.push(() => s.close());
    return s;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') return stop(1, portInUse(port, variable));
    throw e;
  }
}

const sandbox = await sandboxOn(SANDBOX_PORT, 'SANDBOX_PORT');
console.log(`clinic FHIR server (sandbox)          ${sandbox.baseUrl}`);
const bridge = `http://127.0.0.1:${WORKER_PORT}`;
// The bridge registered with the primary team's EHR as a confidential SMART app; a fresh id and secret
// each start. The id is also how this start recognises its own Worker (see below).
const SMART_CLIENT_ID = `imh-bridge-local-${randomBytes(6).toString('hex')}`;
const smartClientSecret = randomBytes(32).toString('base64url');
const primary = await sandboxOn(PRIMARY_SANDBOX_PORT, 'PRIMARY_SANDBOX_PORT', {
  smart: {
    clients: [{ clientId: SMART_CLIENT_ID, clientSecret: smartClientSecret, redirectUri: `${bridge}/smart/callback`, launchUrl: `${bridge}/smart/launch` }],
  },
});
console.log(`primary team's FHIR server (sandbox)  ${primary.baseUrl}   (organisation ${PRIMARY_ORG})`);
const targets = {
  clinic: { baseUrl: sandbox.baseUrl, auth: { type: 'none' } },
  primary: { [PRIMARY_ORG]: { baseUrl: primary.baseUrl, auth: { type: 'none' } } },
};

// A fresh local state each start: the sandbox is in memory, so the ledger must be too. Removed on exit.
const state = mkdtempSync(join(tmpdir(), 'imh-bridge-dev-'));
cleanup.push(() => rmSync(state, { recursive: true, force: true }));

console.log(`applying the D1 migrations to a fresh local database…  (${elapsed()})`);
{
  const output: string[] = [];
  const migrate = runWrangler(['d1', 'migrations', 'apply', 'imh-bridge', '--env', 'local', '--local', '--persist-to', state], (l) => output.push(l));
  cleanup.push(() => stopChild(migrate));
  const code = await new Promise<number | null>((ok) => migrate.once('exit', ok));
  if (code !== 0) await stop(1, `applying the D1 migrations failed (wrangler exited ${code}):\n${output.join('\n')}`);
}

console.log(`starting the Worker (wrangler dev, workerd)…  (${elapsed()})`);
let workerPortTaken = false;
let inCronNotice = false;
const secretsFile = join(state, 'worker-secrets.env');
writeFileSync(secretsFile, `SMART_CLIENT_SECRET=${smartClientSecret}\n`, { mode: 0o600 });
const worker = runWrangler(
  // [env.local] in wrangler.toml: local development, the one configuration with an open API.
  [
    'dev',
    '--env',
    'local',
    '--port',
    String(WORKER_PORT),
    '--ip',
    '127.0.0.1',
    '--persist-to',
    state,
    '--show-interactive-dev-session=false',
    '--log-level',
    'warn',
    '--var',
    `FHIR_TARGETS:${JSON.stringify(targets)}`,
    '--var',
    `SMART_ISSUERS:${JSON.stringify([{ iss: primary.baseUrl, orgNumber: PRIMARY_ORG, clientId: SMART_CLIENT_ID, clientSecretSecret: 'SMART_CLIENT_SECRET' }])}`,
    // The secret from a file only this user can read, never on the command line (process lists).
    '--env-file',
    secretsFile,
  ],
  (line) => {
    // Taken since the check above: said once, as for the other ports, instead of wrangler's words.
    if (/Address already in use/.test(line)) workerPortTaken = true;
    if (workerPortTaken || /Logs were written to/.test(line)) return;
    // wrangler's box saying the Cron Trigger does not fire locally: said once, plainly, under "look:".
    if (/Scheduled Workers are not automatically triggered/.test(line)) inCronNotice = true;
    if (inCronNotice) {
      if (/For more details/.test(line)) inCronNotice = false;
      return;
    }
    if (line.trim() === '') return;
    // The Worker's own warnings and errors (--log-level warn) pass through.
    console.error(line);
  },
);
cleanup.push(() => stopChild(worker));
worker.once('exit', (code) => void stop(1, workerPortTaken ? portInUse(WORKER_PORT, 'PORT') : `wrangler dev exited (${code}); see its messages above`));

/**
 * Whether the Worker answering on PORT is the one this start launched: its SMART launch sends the
 * browser to this start's primary sandbox with this start's random client id, which no other
 * instance knows.
 */
async function isOurWorker(): Promise<boolean> {
  const res = await fetch(`${bridge}/smart/launch?iss=${encodeURIComponent(primary.baseUrl)}&launch=npm-start-check`, { redirect: 'manual' });
  await res.body?.cancel();
  const location = res.headers.get('location');
  return res.status === 302 && !!location && new URL(location).searchParams.get('client_id') === SMART_CLIENT_ID;
}

let waitingSaid = Date.now();
for (let i = 0; ; i++) {
  let up = false;
  try {
    up = (await fetch(`${bridge}/healthz`)).ok;
  } catch {
    // not up yet
  }
  if (up) {
    if (await isOurWorker()) break;
    await stop(
      1,
      `port ${WORKER_PORT} answers, but not as the Worker this start launched (another npm start?): choose a free port, e.g. PORT=${WORKER_PORT + 10000 <= 65535 ? WORKER_PORT + 10000 : WORKER_PORT - 1000} npm start`,
    );
  }
  if (i > 240) await stop(1, 'the Worker did not start within two minutes');
  if (Date.now() - waitingSaid >= 5_000) {
    waitingSaid = Date.now();
    console.log(`waiting for the Worker to answer on ${bridge}…  (${elapsed()})`);
  }
  await new Promise((r) => setTimeout(r, 500));
}
console.log(`bridge (workerd)                      ${bridge}   API docs: ${bridge}/docs   (ready after ${elapsed()})`);

if (!existsSync(examplesDir)) {
  console.log(`no example episodes at ${examplesDir}; send your own with PUT ${bridge}/v1/episodes/{episodeId}`);
} else {
  console.log(`sending the example episodes through the delivery path (PUT, queue, sandboxes)…  (${elapsed()})`);
  const rows: string[] = [];
  for (const file of readdirSync(examplesDir)
    .filter((f) => f.endsWith('.episode.json'))
    .sort()) {
    const episode = JSON.parse(readFileSync(join(examplesDir, file), 'utf8')) as { episodeId: string };
    const res = await fetch(`${bridge}/v1/episodes/${encodeURIComponent(episode.episodeId)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(episode),
    });
    const location = res.headers.get('location');
    if (res.status !== 202 || !location) {
      rows.push(`${file.padEnd(42)} rejected (${res.status}): ${await res.text()}`);
      continue;
    }
    let job: { status: string; targets: Record<string, { written?: number; error?: string } | undefined> } | undefined;
    for (let i = 0; i < 120; i++) {
      job = (await (await fetch(`${bridge}${location}`)).json()) as typeof job;
      if (job && !['queued', 'retrying'].includes(job.status)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // Per target: the clinic's server, and the primary team's where the delivery engine sends there.
    const written = Object.entries(job?.targets ?? {})
      .map(([name, t]) => `${name} ${t?.written ?? 0}${t?.error ? ` (${t.error})` : ''}`)
      .join(', ');
    rows.push(`${file.padEnd(42)} ${job?.status ?? '?'}  written: ${written || 'nothing'}  ${bridge}${location}`);
  }
  console.log('\nexample episodes sent through the delivery path:');
  for (const r of rows) console.log(`  ${r}`);
  const summary = (s: typeof sandbox) =>
    Object.entries(s.repo.countByType())
      .map(([t, n]) => `${n} ${t}`)
      .join(', ') || 'nothing yet';
  console.log(`\non the clinic's server now:        ${summary(sandbox)}`);
  console.log(`on the primary team's server now:  ${summary(primary)}`);
  console.log('\nlook:');
  console.log(`  the clinic's record        ${sandbox.baseUrl}/EpisodeOfCare   ${sandbox.baseUrl}/Encounter?_count=5   ${sandbox.baseUrl}/Task`);
  console.log(`  what the primary team got  ${primary.baseUrl}/EpisodeOfCare   ${primary.baseUrl}/Task   ${primary.baseUrl}/Consent`);
  console.log(`  the bridge's jobs          ${bridge}/v1/jobs`);

  // The mother as her primary team's EHR knows her: the Patient the bridge shared there.
  const motherFile = join(examplesDir, 'completed-mother.episode.json');
  const nationalId = existsSync(motherFile)
    ? (JSON.parse(readFileSync(motherFile, 'utf8')) as { parent: { nationalId: string } }).parent.nationalId
    : undefined;
  const patient = primary.repo
    .allResources()
    .find((r) => r.resourceType === 'Patient' && (r as { identifier?: { value?: string }[] }).identifier?.some((i) => i.value === nationalId));
  if (patient?.id && primary.smart) {
    console.log("\nthe mother's coordination summary, opened from her psychiatrist's EHR (SMART EHR launch, no account needed):");
    console.log(`  ${primary.smart.launchLink(patient.id)}`);
  }
}
console.log('\ncoordination requests by episode (status, due date, overdue):');
console.log(`  npx imh-bridge coordination --target ${sandbox.baseUrl} --primary ${primary.baseUrl}`);
// Locally the Cron Trigger (sweep, retention, refreshing coordination requests) fires only when asked.
console.log('\nthe scheduled run (every 5 minutes when deployed) runs here when asked:');
console.log(`  curl ${bridge}/cdn-cgi/local/scheduled`);
console.log('\nrunning; Ctrl-C stops all three and removes the local state.');
