/**
 * Conformance pass against a live FHIR R4 server: does it do what delivery relies on?
 *
 *   npm run test:sandbox -- --base-url URL [--bearer-env NAME | --bearer-file PATH] [--timeout-ms MS]
 *
 * Writes one synthetic episode (national ids month + 80, ids tagged per run so runs on a
 * shared sandbox never collide) the way the bridge does (a transaction where the server
 * offers one, else ordered conditional writes), checks it by identifier search, sends it
 * again, changes it, drops a session (retracting its Encounter and Procedure), tries a
 * conditional create (how master data is written), a stale If-Match and a JSON Patch that
 * adds (how existing master data is supplemented), and deletes what it wrote. Prints one
 * row per capability.
 *
 * Exit 0 when every required row passes, 1 otherwise, 2 on usage errors. The bearer token is
 * read from an environment variable or a file, as `imh-bridge sync` reads it (never from the
 * command line, where `ps` and shell history would show it); it goes only into the
 * Authorization header and is never printed.
 */
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { deepEquals } from '@medplum/core';
import type { Bundle, BundleEntry, CapabilityStatement, Resource } from '@medplum/fhirtypes';
import { bearerFromOptions } from '../src/bearer-option.ts';
import { mapEpisode } from '../src/index.ts';
import {
  applyOrdered,
  applyTransaction,
  capabilities,
  clearCapabilityCache,
  dependencyOrder,
  entryKey,
  retract,
  type WrittenResource,
} from '../src/sync/apply.ts';
import { FhirTargetClient, TargetError } from '../src/sync/client.ts';
import completedExample from '../test/fixtures/conformance-episode.json' with { type: 'json' };
import { syntheticNationalId } from '../test/fixtures/generate.ts';

export type Result = 'PASS' | 'FAIL' | 'SKIP';

export interface Row {
  capability: string;
  result: Result;
  detail: string;
  ms: number;
  /** A FAIL here makes the run fail; optional rows only inform. */
  required: boolean;
}

export interface ConformanceOptions {
  /** FHIR base URL, e.g. `https://sandbox.example.no/fhir`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …`; never logged or printed. */
  bearer?: string;
  fetch?: typeof fetch;
  /** Progress, one line per finished row. */
  log?: (line: string) => void;
  /** Per-request timeout; 15 s unless told. */
  timeoutMs?: number;
  /** Run tag (hex); random unless told. */
  tag?: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

class StepFailed extends Error {}
class StepSkipped extends Error {}

function fail(message: string): never {
  throw new StepFailed(message);
}

/** The completed contract example under fresh, synthetic, per-run ids. */
export function conformanceEpisode(tag: string): Json {
  // A copy of the contract's completed example (synthetic), so the pass runs without ../shared.
  const e = structuredClone(completedExample) as Json;
  const n = Number.parseInt(tag.slice(0, 8), 16) >>> 0;
  e.episodeId = `CONF-${tag}`;
  e.consent.consentId = `CN-CONF-${tag}`;
  // Parent: a birth date in 1980–1999 and an individual number, both from the tag.
  const birth = new Date(Date.UTC(1980, 0, 1) + (n % 7300) * 86_400_000).toISOString().slice(0, 10);
  e.parent.birthDate = birth;
  e.parent.nationalId = syntheticNationalId(birth, Math.floor(n / 7300) % 500);
  e.infants[0].nationalId = syntheticNationalId(e.infants[0].birthDate, (n >>> 7) % 500);
  return e;
}

/** The business identifier value a bundle entry is written under (its condition's value). */
function identifierValue(entry: BundleEntry): string | undefined {
  const url = entryKey(entry);
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const v = new URLSearchParams(url.slice(q + 1)).get('identifier') ?? '';
  return v.slice(v.indexOf('|') + 1);
}

const entryType = (e: BundleEntry): string => (e.resource as Resource).resourceType;
const isConditional = (e: BundleEntry): boolean => entryKey(e).includes('?');
const ref = (type: string, id: string) => `${type}/${id}`;

function findEntry(bundle: Bundle, type: string, value: string): BundleEntry {
  const e = (bundle.entry ?? []).find((x) => entryType(x) === type && identifierValue(x) === value);
  return e ?? fail(`the mapped bundle has no ${type} for ${value}`);
}

/** A failure in words: status, the server's first issue, never a stack, headers or bodies we sent. */
function describeError(e: unknown): string {
  if (e instanceof TargetError) {
    const issue = e.outcome?.issue?.[0];
    const text = issue?.details?.text ?? issue?.diagnostics;
    return text ? `${e.message}: ${oneLine(text, 160)}` : e.message;
  }
  if (e instanceof Error) return oneLine(e.message, 200);
  return 'unexpected error';
}

const oneLine = (s: string, max: number) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

/** Long version ids (UUIDs) shortened for the table. */
const short = (v: string) => (v.length > 12 ? `${v.slice(0, 8)}…` : v);

const statusOf = (e: unknown): number | undefined => (e instanceof TargetError ? e.status : undefined);

/**
 * Runs the conformance pass. Never throws for what the server does; every outcome is a row.
 * `ok` is true when no required row failed.
 */
export async function runConformance(opts: ConformanceOptions): Promise<{ rows: Row[]; ok: boolean; tag: string }> {
  const tag = opts.tag ?? randomBytes(4).toString('hex');
  const client = new FhirTargetClient(opts.baseUrl, {
    fetch: opts.fetch ?? globalThis.fetch,
    ...(opts.bearer ? { authorization: async () => `Bearer ${opts.bearer}` } : {}),
    timeoutMs: opts.timeoutMs ?? 15_000,
  });
  const redact = (s: string) => (opts.bearer ? s.split(opts.bearer).join('***') : s);
  const rows: Row[] = [];

  async function step(capability: string, required: boolean, fn: () => Promise<{ result?: Result; detail: string }>): Promise<boolean> {
    const t0 = performance.now();
    let result: Result;
    let detail: string;
    try {
      const r = await fn();
      result = r.result ?? 'PASS';
      detail = r.detail;
    } catch (e) {
      if (e instanceof StepSkipped) {
        result = 'SKIP';
        detail = e.message;
      } else {
        result = 'FAIL';
        detail = describeError(e);
      }
    }
    const row: Row = { capability, result, detail: redact(detail), ms: Math.round(performance.now() - t0), required };
    rows.push(row);
    opts.log?.(`${row.result.padEnd(4)} ${row.capability} (${row.ms} ms)`);
    return result === 'PASS';
  }
  const needs = (ok: boolean, what: string) => {
    if (!ok) throw new StepSkipped(`skipped: needs ${what}`);
  };

  /** Matches of an entry's condition on the server (resources of the entry's type only). */
  async function search(entry: BundleEntry): Promise<Resource[]> {
    const url = entryKey(entry);
    const sep = url.includes('?') ? '&' : '?';
    const { body } = await client.request<Bundle>('GET', `${url}${sep}_count=10`);
    if (body?.resourceType !== 'Bundle') fail(`search ${entryType(entry)}?identifier=… did not answer a Bundle`);
    return (body.entry ?? [])
      .filter((x) => (x.search?.mode ?? 'match') === 'match' && x.resource?.resourceType === entryType(entry))
      .map((x) => x.resource as Resource);
  }

  async function read(type: string, id: string): Promise<Json> {
    return (await client.request<Json>('GET', `${type}/${id}`)).body;
  }

  /** Every entry of `bundle` found exactly once, under the id it was written with. */
  async function checkExactlyOnce(bundle: Bundle, written: Map<string, WrittenResource>): Promise<{ found: Record<string, number>; problems: string[] }> {
    const found: Record<string, number> = {};
    const problems: string[] = [];
    for (const e of bundle.entry ?? []) {
      const type = entryType(e);
      const w = written.get(entryKey(e));
      let ids: string[];
      if (isConditional(e)) ids = (await search(e)).map((r) => r.id as string);
      else {
        const id = entryKey(e).split('/')[1] as string;
        ids = [(await read(type, id))?.id as string];
      }
      if (ids.length !== 1) problems.push(`${type}: ${ids.length} matches for one identifier`);
      else if (w && ids[0] !== w.id) problems.push(`${type}: found under another id than the write answered`);
      found[type] = (found[type] ?? 0) + ids.length;
    }
    return { found, problems };
  }

  // What this run wrote, by `Type/id`, and which of those were on the server before it.
  const touched = new Map<string, { type: string; id: string }>();
  const preexisting = new Set<string>();
  const note = (ws: WrittenResource[]) => {
    for (const w of ws) touched.set(ref(w.type, w.id), { type: w.type, id: w.id });
  };
  let transaction = false;
  let metadata: CapabilityStatement | undefined;

  const episode = conformanceEpisode(tag);
  const bundle1 = mapEpisode(episode);
  let lastWritten = new Map<string, WrittenResource>();
  let firstWritten = new Map<string, WrittenResource>();
  let writeAttempted = false;

  const apply = async (bundle: Bundle): Promise<WrittenResource[]> => {
    writeAttempted = true;
    const ws = transaction ? await applyTransaction(client, bundle) : await applyOrdered(client, bundle);
    if (ws.length !== (bundle.entry ?? []).length) fail(`${ws.length} results for ${(bundle.entry ?? []).length} entries`);
    note(ws);
    lastWritten = new Map(ws.map((w) => [w.key, w]));
    return ws;
  };

  // 1. metadata
  await step('metadata (CapabilityStatement, FHIR 4.0.x)', true, async () => {
    const { body } = await client.request<CapabilityStatement>('GET', 'metadata');
    if (body?.resourceType !== 'CapabilityStatement') fail('GET metadata did not answer a CapabilityStatement');
    metadata = body;
    if (!/^4\.0\./.test(body.fhirVersion ?? '')) fail(`fhirVersion is ${body.fhirVersion ?? 'missing'}, not 4.0.x`);
    const software = body.software?.name ? `; ${oneLine(body.software.name, 80)}${body.software.version ? ` ${body.software.version}` : ''}` : '';
    return { detail: `FHIR ${body.fhirVersion}${software}` };
  });

  await step('transactions', false, async () => {
    clearCapabilityCache();
    // The same decision delivery makes (apply.ts), so the rest of the run writes as the bridge would.
    transaction = (await capabilities(client, Date.now())).transaction;
    if (!metadata) return { result: 'SKIP', detail: 'no CapabilityStatement; will try a transaction (as delivery does)' };
    return transaction
      ? { detail: 'declared; episodes go as one transaction Bundle' }
      : { result: 'SKIP', detail: 'not declared; episodes go as ordered conditional writes' };
  });

  // 2. create
  const created = await step('create (deliver a mapped episode)', true, async () => {
    // Which of these already exist (shared clinic, clinician and device resources on a busy sandbox)?
    for (const e of bundle1.entry ?? []) {
      if (!isConditional(e)) continue;
      for (const r of await search(e)) preexisting.add(ref(r.resourceType, r.id as string));
    }
    const ws = await apply(bundle1);
    firstWritten = new Map(ws.map((w) => [w.key, w]));
    const shared = ws.filter((w) => preexisting.has(ref(w.type, w.id))).length;
    return {
      detail: `${ws.length} entries as ${transaction ? 'one transaction' : 'ordered conditional writes'}${shared ? ` (${shared} already on the server)` : ''}`,
    };
  });

  // 3. verify
  await step('verify (identifier search, counts by type)', true, async () => {
    needs(created, 'create');
    const { found, problems } = await checkExactlyOnce(bundle1, firstWritten);
    const expected: Record<string, number> = {};
    for (const e of bundle1.entry ?? []) expected[entryType(e)] = (expected[entryType(e)] ?? 0) + 1;
    for (const [type, n] of Object.entries(expected)) if (found[type] !== n) problems.push(`${type}: ${found[type] ?? 0} on the server, ${n} in the bundle`);
    if (problems.length) fail([...new Set(problems)].slice(0, 3).join('; '));
    return { detail: `${(bundle1.entry ?? []).length} entries found, ${Object.keys(expected).length} types, counts match` };
  });

  // 4. re-send
  await step('re-send (idempotent)', true, async () => {
    needs(created, 'create');
    await apply(bundle1);
    const { problems } = await checkExactlyOnce(bundle1, firstWritten);
    if (problems.length) fail([...new Set(problems)].slice(0, 3).join('; '));
    return { detail: 'still exactly one of each, same ids' };
  });

  // 5. change: a goal's status and a session's length
  const changed = structuredClone(episode);
  const goal = changed.goals.find((g: Json) => g.status !== 'achieved') as Json;
  goal.status = 'achieved';
  const session = changed.sessions[changed.sessions.length - 1] as Json;
  session.minutes += 15;
  const bundle2 = mapEpisode(changed);
  const changedOk = await step('change (goal status, session)', true, async () => {
    needs(created, 'create');
    await apply(bundle2);
    const goalEntry = findEntry(bundle2, 'Goal', `${changed.episodeId}/${goal.goalId}`);
    const encEntry = findEntry(bundle2, 'Encounter', `${changed.episodeId}/${session.sessionId}`);
    const g = lastWritten.get(entryKey(goalEntry)) ?? fail('no write result for the goal');
    const enc = lastWritten.get(entryKey(encEntry)) ?? fail('no write result for the session');
    const want = goalEntry.resource as Json;
    const serverGoal = await read('Goal', g.id);
    const serverEnc = await read('Encounter', enc.id);
    const problems: string[] = [];
    if (serverGoal.lifecycleStatus !== want.lifecycleStatus)
      problems.push(`Goal.lifecycleStatus is ${serverGoal.lifecycleStatus}, sent ${want.lifecycleStatus}`);
    const code = (x: Json) => x?.achievementStatus?.coding?.[0]?.code;
    if (code(serverGoal) !== code(want)) problems.push(`Goal.achievementStatus is ${code(serverGoal)}, sent ${code(want)}`);
    if (serverEnc.length?.value !== session.minutes) problems.push(`Encounter.length is ${serverEnc.length?.value}, sent ${session.minutes}`);
    if (g.id !== firstWritten.get(entryKey(goalEntry))?.id) problems.push('the goal was written under a new id');
    if (problems.length) fail(problems.join('; '));
    return { detail: `Goal → ${want.lifecycleStatus}/${code(want)}, Encounter.length → ${session.minutes} min` };
  });

  // 6. remove: drop the last session; its Encounter and Procedure are retracted, not deleted
  const removed = structuredClone(changed);
  const dropped = removed.sessions.pop() as Json;
  const bundle3 = mapEpisode(removed);
  await step('remove (retract Encounter, Procedure)', true, async () => {
    needs(changedOk, 'change');
    const before = lastWritten;
    await apply(bundle3);
    const gone = [...before.values()].filter((w) => !lastWritten.has(w.key));
    const types = gone.map((w) => w.type).sort();
    if (types.join() !== 'Encounter,Procedure') fail(`dropping a session left ${types.join(', ') || 'nothing'} out, expected Encounter and Procedure`);
    const results: string[] = [];
    for (const w of gone) {
      await retract(client, w.type, w.id);
      const now = await read(w.type, w.id);
      if (now.status !== 'entered-in-error') fail(`${w.type}.status is ${now.status} after retract`);
      results.push(w.type);
    }
    return { detail: `session ${dropped.sessionId} dropped: ${results.join(', ')} → entered-in-error` };
  });

  // 7. conditional create (If-None-Exist): how the bridge writes master data (people, clinicians, organisations)
  await step('conditional create (If-None-Exist)', true, async () => {
    needs(created, 'create');
    const goalKeyEntry = findEntry(bundle1, 'Goal', `${episode.episodeId}/${episode.goals[0].goalId}`);
    const w = firstWritten.get(entryKey(goalKeyEntry)) ?? fail('no write result for the goal');
    const current = await read('Goal', w.id);
    const { id: _id, meta: _meta, ...copy } = current;
    const query = entryKey(goalKeyEntry).split('?')[1] as string;
    const res = await client.request<Json>('POST', 'Goal', copy, { 'if-none-exist': query });
    if (res.status === 201) {
      const loc = res.body?.id ?? /Goal\/([^/]+)/.exec(res.headers.get('location') ?? '')?.[1];
      if (loc) touched.set(ref('Goal', loc), { type: 'Goal', id: loc });
      fail('201: the server created a duplicate instead of matching the existing resource');
    }
    const n = (await search(goalKeyEntry)).length;
    if (n !== 1) fail(`${n} goals with the identifier after a conditional create`);
    return { detail: `HTTP ${res.status}, matched the existing resource` };
  });

  // 8. If-Match: a stale version must be refused
  await step('If-Match (stale version → 412)', true, async () => {
    needs(changedOk, 'change');
    const goal2Entry = findEntry(bundle1, 'Goal', `${episode.episodeId}/${goal.goalId}`);
    const w = firstWritten.get(entryKey(goal2Entry)) ?? fail('no write result for the goal');
    const current = await read('Goal', w.id);
    const version = current.meta?.versionId;
    if (!version) fail('the server does not version resources (no meta.versionId)');
    const stale = w.versionId && w.versionId !== version ? w.versionId : undefined;
    if (!stale) fail('no older version: the change was not recorded as a new version');
    try {
      await client.request('PUT', `Goal/${w.id}`, { ...current, lifecycleStatus: 'cancelled' }, { 'if-match': `W/"${stale}"` });
    } catch (e) {
      if (statusOf(e) !== 412) throw e;
      const after = await read('Goal', w.id);
      if (after.meta?.versionId !== version || after.lifecycleStatus !== current.lifecycleStatus) fail('412, but the resource changed anyway');
      return { detail: `412 for version ${short(stale)} (current ${short(version)}); resource unchanged` };
    }
    return fail('the write with a stale If-Match was accepted');
  });

  // 9. JSON Patch under If-Match: how the bridge adds what existing master data lacks. Tried
  // on a goal this run created (never on data the server had), so it only informs.
  await step('patch (JSON Patch add, If-Match)', false, async () => {
    needs(created, 'create');
    const goalEntry = findEntry(bundle1, 'Goal', `${episode.episodeId}/${episode.goals[0].goalId}`);
    const w = firstWritten.get(entryKey(goalEntry)) ?? fail('no write result for the goal');
    const before = await read('Goal', w.id);
    const version = before.meta?.versionId;
    if (!version) fail('the server does not version resources (no meta.versionId)');
    const note = { text: `conformance run ${tag}` };
    const op = Array.isArray(before.note) ? { op: 'add', path: '/note/-', value: note } : { op: 'add', path: '/note', value: [note] };
    const patch = (v: string) => client.request('PATCH', `Goal/${w.id}`, [op], { 'content-type': 'application/json-patch+json', 'if-match': `W/"${v}"` });
    try {
      await patch(version);
    } catch (e) {
      const s = statusOf(e);
      if (s === 405 || s === 415 || s === 501) return { result: 'SKIP', detail: `PATCH unsupported (HTTP ${s}); existing master data is left as it is` };
      throw e;
    }
    const after = await read('Goal', w.id);
    if (!deepEquals(after.note?.at(-1), note)) fail('the added note is not there');
    const { note: _a, meta: _b, ...restAfter } = after;
    const { note: _c, meta: _d, ...restBefore } = before;
    if (!deepEquals(restAfter, restBefore)) fail('the patch changed more than it added');
    try {
      await patch(version);
    } catch (e) {
      if (statusOf(e) !== 412) throw e;
      return { detail: 'add applied, nothing else changed; stale If-Match → 412' };
    }
    return fail('a patch with a stale If-Match was accepted');
  });

  // 10. clean up: delete what this run created, referrers first, then check it is gone
  await step('clean up (DELETE, then gone)', true, async () => {
    if (!writeAttempted) return { result: 'SKIP', detail: 'nothing was written' };
    // Writes may have failed half-way (ordered writes): find by identifier what the run may have left.
    for (const b of [bundle1, bundle2, bundle3]) {
      for (const e of b.entry ?? []) {
        if (!isConditional(e)) continue;
        try {
          for (const r of await search(e)) touched.set(ref(r.resourceType, r.id as string), { type: r.resourceType, id: r.id as string });
        } catch {
          // best effort; what was tracked is still deleted
        }
      }
    }
    const declaresDelete = metadata?.rest
      ?.filter((r) => r.mode === 'server')
      .flatMap((r) => r.resource ?? [])
      .some((r) => r.interaction?.some((i) => i.code === 'delete'));
    if (metadata && declaresDelete === false) throw new StepSkipped('DELETE is not declared in the CapabilityStatement; run data left on the server');

    // Order: the entries' dependency order reversed (referrers first), anything else before.
    const order = new Map<string, number>();
    const all = [bundle1, bundle2, bundle3].flatMap((b) => b.entry ?? []);
    const byUrl = new Map<string, BundleEntry>();
    for (const e of all) byUrl.set(e.fullUrl as string, e);
    dependencyOrder([...byUrl.values()]).forEach((e, i) => {
      for (const m of [firstWritten, lastWritten]) {
        const w = m.get(entryKey(e));
        if (w) order.set(ref(w.type, w.id), i);
      }
    });
    let todo = [...touched.entries()]
      .filter(([k]) => !preexisting.has(k))
      .sort(([a], [b]) => (order.get(b) ?? Number.MAX_SAFE_INTEGER) - (order.get(a) ?? Number.MAX_SAFE_INTEGER))
      .map(([, v]) => v);
    if (!todo.length) return { result: 'SKIP', detail: 'nothing this run created is left to delete' };
    const total = todo.length;
    let lastError: unknown;
    for (let pass = 0; pass < 3 && todo.length; pass++) {
      const again: typeof todo = [];
      for (const r of todo) {
        try {
          await client.request('DELETE', `${r.type}/${r.id}`);
        } catch (e) {
          const s = statusOf(e);
          if (s === 404 || s === 410) continue;
          if (s === 405 || s === 501) throw new StepSkipped(`DELETE unsupported (HTTP ${s}); run data left on the server`);
          lastError = e;
          again.push(r);
        }
      }
      todo = again;
    }
    if (todo.length) fail(`${todo.length} of ${total} could not be deleted (${describeError(lastError)})`);
    const still: string[] = [];
    for (const [k, r] of touched) {
      if (preexisting.has(k)) continue;
      try {
        await read(r.type, r.id);
        still.push(r.type);
      } catch (e) {
        const s = statusOf(e);
        if (s !== 404 && s !== 410) throw e;
      }
    }
    if (still.length) fail(`${still.length} still readable after DELETE (${[...new Set(still)].join(', ')})`);
    const kept = [...touched.keys()].filter((k) => preexisting.has(k)).length;
    return { detail: `${total} deleted, all gone (404/410)${kept ? `; ${kept} shared resources that existed before left in place` : ''}` };
  });

  return { rows, ok: rows.every((r) => !r.required || r.result !== 'FAIL'), tag };
}

/** The rows as a plain-text table. */
export function formatTable(rows: Row[]): string {
  const head = ['capability', 'result', 'detail', 'ms'];
  const body = rows.map((r) => [`${r.capability}${r.required ? '' : ' (optional)'}`, r.result, r.detail, String(r.ms)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join(' | ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

const USAGE = `usage: npm run test:sandbox -- --base-url URL [--bearer-env NAME | --bearer-file PATH] [--timeout-ms MS]

  --base-url URL      FHIR R4 base of the server to check (http or https)
  --bearer-env NAME   send "Authorization: Bearer <token>" with the token in the environment variable NAME
  --bearer-file PATH  ... with the token in the file PATH (readable only by you)
  --timeout-ms MS     per-request timeout, default 15000

The token is never taken from the command line, where ps and shell history would show it.

Writes one synthetic episode, checks it, and deletes it again.
Exit 0: every required capability passed; 1: one failed; 2: usage error.`;

async function main(argv: string[]): Promise<number> {
  let values: { 'base-url'?: string; bearer?: string; 'bearer-env'?: string; 'bearer-file'?: string; 'timeout-ms'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'base-url': { type: 'string' },
        // Accepted only to refuse it with a clear message (see bearerFromOptions).
        bearer: { type: 'string' },
        'bearer-env': { type: 'string' },
        'bearer-file': { type: 'string' },
        'timeout-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    // A stray positional may be a token pasted in the wrong place: do not echo it.
    const message =
      (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' ? 'unexpected argument (only options are accepted)' : (e as Error).message;
    process.stderr.write(`${message}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const option = await bearerFromOptions(values);
  if (!option.ok) {
    process.stderr.write(`${option.message}\n\n${USAGE}\n`);
    return 2;
  }
  const baseUrl = values['base-url'];
  if (!baseUrl) {
    process.stderr.write(`--base-url is required\n\n${USAGE}\n`);
    return 2;
  }
  let parsed: URL;
  try {
    parsed = new URL(baseUrl);
  } catch {
    process.stderr.write(`--base-url is not a URL\n\n${USAGE}\n`);
    return 2;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    process.stderr.write(`--base-url must be http or https\n\n${USAGE}\n`);
    return 2;
  }
  const timeoutMs = values['timeout-ms'] === undefined ? 15_000 : Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    process.stderr.write(`--timeout-ms must be a positive whole number\n\n${USAGE}\n`);
    return 2;
  }
  const bearer = option.token;
  // Printed without credentials or query.
  const shown = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  process.stdout.write(`FHIR conformance: ${shown}${bearer ? ' (bearer token)' : ''}\n`);
  const { rows, ok, tag } = await runConformance({ baseUrl, bearer, timeoutMs, log: (l) => process.stderr.write(`${l}\n`) });
  const count = (r: Result) => rows.filter((x) => x.result === r).length;
  process.stdout.write(`run tag ${tag}\n\n${formatTable(rows)}\n\n`);
  process.stdout.write(`${count('PASS')} passed, ${count('FAIL')} failed, ${count('SKIP')} skipped: ${ok ? 'OK' : 'NOT OK (a required capability failed)'}\n`);
  return ok ? 0 : 1;
}

const invokedPath = process.argv[1];
const isMain = (() => {
  try {
    return !!invokedPath && pathToFileURL(realpathSync(invokedPath)).href === import.meta.url;
  } catch {
    return false;
  }
})();

if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`conformance run stopped: ${e instanceof Error ? oneLine(e.message, 200) : 'unexpected error'}\n`);
      process.exitCode = 1;
    },
  );
}
