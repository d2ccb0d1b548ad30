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
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startSandbox } from '../sandbox/server.ts';

const root = resolve(import.meta.dirname, '..');
const SANDBOX_PORT = Number(process.env.SANDBOX_PORT ?? 8103);
const PRIMARY_SANDBOX_PORT = Number(process.env.PRIMARY_SANDBOX_PORT ?? SANDBOX_PORT + 1);
const WORKER_PORT = Number(process.env.PORT ?? 8787);
/** The primary treatment organisation of the examples (the mother's DPS). */
const PRIMARY_ORG = '993778125';
const examplesDir = resolve(root, process.env.EXAMPLES_DIR ?? 'examples');
const wrangler = join(root, 'node_modules/.bin/wrangler');

const sandbox = await startSandbox({ port: SANDBOX_PORT });
console.log(`clinic FHIR server (sandbox)          ${sandbox.baseUrl}`);
const bridge = `http://127.0.0.1:${WORKER_PORT}`;
// The bridge registered with the primary team's EHR as a confidential SMART app; a fresh secret each start.
const SMART_CLIENT_ID = 'imh-bridge-local';
const smartClientSecret = randomBytes(32).toString('base64url');
const primary = await startSandbox({
  port: PRIMARY_SANDBOX_PORT,
  smart: { clients: [{ clientId: SMART_CLIENT_ID, clientSecret: smartClientSecret, redirectUri: `${bridge}/smart/callback`, launchUrl: `${bridge}/smart/launch` }] },
});
console.log(`primary team's FHIR server (sandbox)  ${primary.baseUrl}   (organisation ${PRIMARY_ORG})`);
const closeSandboxes = () => Promise.all([sandbox.close(), primary.close()]);
const targets = {
  clinic: { baseUrl: sandbox.baseUrl, auth: { type: 'none' } },
  primary: { [PRIMARY_ORG]: { baseUrl: primary.baseUrl, auth: { type: 'none' } } },
};

// A fresh local state each start: the sandbox is in memory, so the ledger must be too.
const state = mkdtempSync(join(tmpdir(), 'imh-bridge-dev-'));
const migrate = spawnSync(process.execPath, [wrangler, 'd1', 'migrations', 'apply', 'imh-bridge', '--env', 'local', '--local', '--persist-to', state], {
  cwd: root,
  encoding: 'utf8',
  env: { ...process.env, CI: 'true' },
});
if (migrate.status !== 0) {
  console.error(migrate.stdout, migrate.stderr);
  process.exit(1);
}

const worker = spawn(
  process.execPath,
  // [env.local] in wrangler.toml: local development, the one configuration with an open API.
  [wrangler, 'dev', '--env', 'local', '--port', String(WORKER_PORT), '--ip', '127.0.0.1', '--persist-to', state, '--show-interactive-dev-session=false', '--log-level', 'warn',
    '--var', `FHIR_TARGETS:${JSON.stringify(targets)}`,
    '--var', `SMART_ISSUERS:${JSON.stringify([{ iss: primary.baseUrl, orgNumber: PRIMARY_ORG, clientId: SMART_CLIENT_ID, clientSecretSecret: 'SMART_CLIENT_SECRET' }])}`,
    '--var', `SMART_CLIENT_SECRET:${smartClientSecret}`],
  { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] },
);
const stop = async (code = 0) => {
  worker.kill('SIGTERM');
  await closeSandboxes();
  process.exit(code);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
worker.once('exit', (code) => {
  console.error(`wrangler dev exited (${code})`);
  void closeSandboxes().then(() => process.exit(code ?? 1));
});

for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${bridge}/healthz`)).ok) break;
  } catch {
    // not up yet
  }
  if (i > 240) {
    console.error('the Worker did not start within two minutes');
    await stop(1);
  }
  await new Promise((r) => setTimeout(r, 500));
}
console.log(`bridge (workerd)                      ${bridge}   API docs: ${bridge}/docs`);

if (!existsSync(examplesDir)) {
  console.log(`no example episodes at ${examplesDir}; send your own with PUT ${bridge}/v1/episodes/{episodeId}`);
} else {
  const rows: string[] = [];
  for (const file of readdirSync(examplesDir).filter((f) => f.endsWith('.episode.json')).sort()) {
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
  const summary = (s: typeof sandbox) => Object.entries(s.repo.countByType()).map(([t, n]) => `${n} ${t}`).join(', ') || 'nothing yet';
  console.log(`\non the clinic's server now:        ${summary(sandbox)}`);
  console.log(`on the primary team's server now:  ${summary(primary)}`);
  console.log('\nlook:');
  console.log(`  the clinic's record        ${sandbox.baseUrl}/EpisodeOfCare   ${sandbox.baseUrl}/Encounter?_count=5   ${sandbox.baseUrl}/Task`);
  console.log(`  what the primary team got  ${primary.baseUrl}/EpisodeOfCare   ${primary.baseUrl}/Task   ${primary.baseUrl}/Consent`);
  console.log(`  the bridge's jobs          ${bridge}/v1/jobs`);

  // The mother as her primary team's EHR knows her: the Patient the bridge shared there.
  const motherFile = join(examplesDir, 'completed-mother.episode.json');
  const nationalId = existsSync(motherFile) ? (JSON.parse(readFileSync(motherFile, 'utf8')) as { parent: { nationalId: string } }).parent.nationalId : undefined;
  const patient = primary.repo
    .allResources()
    .find((r) => r.resourceType === 'Patient' && (r as { identifier?: { value?: string }[] }).identifier?.some((i) => i.value === nationalId));
  if (patient?.id && primary.smart) {
    console.log('\nthe mother\'s coordination summary, opened from her psychiatrist\'s EHR (SMART EHR launch, no account needed):');
    console.log(`  ${primary.smart.launchLink(patient.id)}`);
  }
}
console.log('\ncoordination requests by episode (status, due date, overdue):');
console.log(`  npx imh-bridge coordination --target ${sandbox.baseUrl} --primary ${primary.baseUrl}`);
console.log('\nrunning; Ctrl-C stops all three.');
