/**
 * `imh-bridge sync` over many episodes: `.json` files (one episode each), `.ndjson` files (one
 * episode per line, blank lines skipped) and folders (their `.json` and `.ndjson` files, sorted
 * by name, not descending into subfolders), as an initial load of a clinic's history needs.
 *
 * Episodes are read as they are delivered (a few in flight, `concurrency`), never all at once;
 * the total is counted first by scanning the NDJSON files for non-blank lines. A line that is not
 * JSON, or not a valid episode, is a failure named by `file:line`; the rest goes on. Progress and
 * failures go to standard error (src/cli/progress.ts), a summary per outcome at the end, and the
 * same summary as JSON on standard output.
 *
 * Nothing printed carries patient data: episodes are named by file and line, and by their
 * episodeId only when it looks like no person's number (episode-format.md lets the journal choose
 * it; src/sync/redact.ts's patterns decide). Server and validation messages are redacted the same way.
 */
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { isOperationOutcomeError } from '../fhir/outcome.ts';
import { redactText } from '../sync/redact.ts';
import type { SyncResult } from '../sync/sync-once.ts';
import { formatDuration, formatRate, Progress } from './progress.ts';

/** A file to read episodes from. */
export interface Source {
  path: string;
  kind: 'json' | 'ndjson';
}

/** A path that cannot be used (missing, not a file or folder, a folder without episodes). */
export class SourceError extends Error {}

/** Whether a path names many episodes (a folder or an NDJSON file) rather than one. */
export async function isBatch(paths: readonly string[]): Promise<boolean> {
  if (paths.length !== 1) return true;
  const [path] = paths as [string];
  if (path === '-') return false;
  if (/\.ndjson$/i.test(path)) return true;
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

const kindOf = (name: string): Source['kind'] | undefined => (/\.ndjson$/i.test(name) ? 'ndjson' : /\.json$/i.test(name) ? 'json' : undefined);

/** The files to read, in order: each path as given, a folder's `.json`/`.ndjson` files sorted by name. */
export async function resolveSources(paths: readonly string[]): Promise<Source[]> {
  const out: Source[] = [];
  for (const path of paths) {
    if (path === '-') throw new SourceError('standard input (-) takes one episode: sync - alone');
    const s = await stat(path).catch((e: NodeJS.ErrnoException) => {
      throw new SourceError(`cannot read ${path}: ${e.code ?? 'error'}`);
    });
    if (s.isDirectory()) {
      const names = (await readdir(path, { withFileTypes: true }))
        .filter((d) => d.isFile() && kindOf(d.name))
        .map((d) => d.name)
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      if (!names.length) throw new SourceError(`${path} holds no .json or .ndjson files`);
      for (const name of names) out.push({ path: join(path, name), kind: kindOf(name) as Source['kind'] });
    } else if (s.isFile()) out.push({ path, kind: kindOf(path) === 'ndjson' ? 'ndjson' : 'json' });
    else throw new SourceError(`${path} is neither a file nor a folder`);
  }
  return out;
}

/** Non-blank lines of a file, counted from its bytes without keeping them. */
export async function countNonBlankLines(path: string): Promise<number> {
  let count = 0;
  let content = false;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (const byte of chunk) {
      if (byte === 0x0a) {
        if (content) count++;
        content = false;
      } else if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) content = true;
    }
  }
  return content ? count + 1 : count;
}

/** How many episodes the sources hold: one per JSON file, one per non-blank NDJSON line. */
export async function countEpisodes(sources: readonly Source[]): Promise<number> {
  let total = 0;
  for (const s of sources) total += s.kind === 'json' ? 1 : await countNonBlankLines(s.path);
  return total;
}

/** One episode as read: where it is, and its JSON or why it could not be read. */
export interface Item {
  where: string;
  input?: unknown;
  unreadable?: string;
}

/** A JSON.parse failure without the text it quotes (that text may be patient data). */
function jsonProblem(e: unknown): string {
  const at = /position (\d+)/.exec((e as Error).message ?? '');
  return at ? `not valid JSON (at character ${Number(at[1]) + 1})` : 'not valid JSON';
}

/** The episodes of the sources, one at a time, in order. */
export async function* readEpisodes(sources: readonly Source[]): AsyncGenerator<Item> {
  for (const s of sources) {
    if (s.kind === 'json') {
      let text: string;
      try {
        text = await readFile(s.path, 'utf8');
      } catch (e) {
        yield { where: s.path, unreadable: `cannot read: ${(e as NodeJS.ErrnoException).code ?? 'error'}` };
        continue;
      }
      try {
        yield { where: s.path, input: JSON.parse(text) };
      } catch (e) {
        yield { where: s.path, unreadable: jsonProblem(e) };
      }
      continue;
    }
    const lines = createInterface({ input: createReadStream(s.path, 'utf8'), crlfDelay: Infinity });
    let n = 0;
    for await (const line of lines) {
      n++;
      if (!line.trim()) continue;
      try {
        yield { where: `${s.path}:${n}`, input: JSON.parse(line) };
      } catch (e) {
        yield { where: `${s.path}:${n}`, unreadable: jsonProblem(e) };
      }
    }
  }
}

/** The outcomes of one episode, in the order the summary lists them. */
export const OUTCOMES = {
  delivered: 'delivered',
  unchanged: 'unchanged (the server already held it)',
  unreadable: 'not readable (not JSON)',
  invalid: 'refused by validation (not a valid episode)',
  refused: 'refused by the server',
  failed: 'failed at the server (gave up retrying)',
  skipped: 'not attempted (the server kept failing)',
} as const;
export type Outcome = keyof typeof OUTCOMES;
const FAILURES: ReadonlySet<Outcome> = new Set(['unreadable', 'invalid', 'refused', 'failed', 'skipped']);

/** The episodeId when it can be shown: the contract's pattern, and nothing redact.ts would take for a national id or phone number. */
export function safeEpisodeId(input: unknown): string | undefined {
  const id = (input as { episodeId?: unknown } | null)?.episodeId;
  if (typeof id !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(id)) return undefined;
  return redactText(id) === id && !/\d{8}/.test(id) ? id : undefined;
}

export interface FileSyncSummary {
  total: number;
  seconds: number;
  outcomes: Record<Outcome, number>;
  /** Resources written over all targets. */
  resources: { created: number; updated: number; unchanged: number };
  failures: { where: string; episode?: string; outcome: Outcome; reason: string }[];
  /** Why the run stopped early, if it did. */
  stopped?: string;
}

export interface FileSyncOptions {
  sources: readonly Source[];
  /** Delivers one episode (syncOnce with the command's options); throws OperationOutcomeError for a bad episode. */
  deliver: (input: unknown) => Promise<SyncResult>;
  /** Episodes in flight at once. */
  concurrency: number;
  /** Standard error: where progress, failures and the summary go. */
  stderr: { write: (text: string) => void; isTTY?: boolean };
  now?: () => number;
  /** Consecutive episodes given up on at the server after which no new one is started (default 5). */
  stopAfterFailures?: number;
  /** Seconds between progress lines when standard error is not a terminal (default 10). */
  progressIntervalMs?: number;
}

/** Sends every episode of the sources; returns the summary and the exit code (see {@link exitCode}). */
export async function syncFiles(opts: FileSyncOptions): Promise<{ summary: FileSyncSummary; exitCode: number }> {
  const now = opts.now ?? Date.now;
  const started = now();
  const total = await countEpisodes(opts.sources);
  const progress = new Progress(total, { write: opts.stderr.write, tty: !!opts.stderr.isTTY, now, lineIntervalMs: opts.progressIntervalMs });
  const outcomes = Object.fromEntries(Object.keys(OUTCOMES).map((k) => [k, 0])) as Record<Outcome, number>;
  const resources = { created: 0, updated: 0, unchanged: 0 };
  const failures: FileSyncSummary['failures'] = [];
  const stopAfter = opts.stopAfterFailures ?? 5;
  let streak = 0;
  let stopped: string | undefined;
  let handled = 0;

  const record = (item: Item, episode: string | undefined, outcome: Outcome, reason?: string) => {
    outcomes[outcome]++;
    handled++;
    if (reason !== undefined) failures.push({ where: item.where, ...(episode ? { episode } : {}), outcome, reason });
    progress.tick(
      FAILURES.has(outcome),
      reason === undefined ? undefined : `${item.where}${episode ? ` (episode ${episode})` : ''}: ${OUTCOMES[outcome]}: ${reason}`,
    );
  };

  const handle = async (item: Item) => {
    if (item.unreadable !== undefined) return record(item, undefined, 'unreadable', item.unreadable);
    const episode = safeEpisodeId(item.input);
    let r: SyncResult;
    try {
      r = await opts.deliver(item.input);
    } catch (e) {
      if (isOperationOutcomeError(e)) {
        const issues = e.outcome.issue ?? [];
        const first = issues[0];
        const text = redactText(first?.details?.text ?? first?.diagnostics ?? first?.code ?? 'invalid').slice(0, 300);
        return record(item, episode, 'invalid', `${text}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''}`);
      }
      // Not the episode's fault and not the server's answer: counted, named by its kind only.
      return record(
        item,
        episode,
        'failed',
        `internal error (${(e as Error)?.name ?? 'error'}): ${redactText(String((e as Error)?.message ?? e)).slice(0, 200)}`,
      );
    }
    const targets = Object.entries(r.report.targets);
    for (const [, t] of targets) {
      const c = t.result.counts;
      if (c) for (const k of ['created', 'updated', 'unchanged'] as const) resources[k] += c[k];
    }
    if (r.report.status === 'delivered') {
      streak = 0;
      const changed = targets.some(([, t]) => (t.result.counts ? t.result.counts.created + t.result.counts.updated > 0 : true));
      return record(item, episode, changed ? 'delivered' : 'unchanged');
    }
    const why = targets
      .filter(([, t]) => t.result.status !== 'delivered')
      .map(([name, t]) => `${name}: ${redactText(t.result.error ?? t.result.status)}`)
      .join('; ');
    const outcome: Outcome = r.report.status === 'failed' ? 'refused' : 'failed';
    streak = outcome === 'failed' ? streak + 1 : 0;
    if (streak >= stopAfter && !stopped) stopped = `${streak} episodes in a row failed at the server; the rest were not attempted`;
    return record(item, episode, outcome, r.report.gaveUp ? redactText(r.report.gaveUp) : why || r.report.status);
  };

  const items = readEpisodes(opts.sources);
  const worker = async () => {
    // Concurrent next() calls on one async generator are queued by the runtime: each item goes to one worker.
    while (!stopped) {
      const next = await items.next();
      if (next.done) return;
      await handle(next.value);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, worker));
  if (stopped) {
    await items.return(undefined);
    outcomes.skipped = Math.max(0, total - handled);
    if (outcomes.skipped) progress.note(stopped);
  }
  progress.finish();
  const summary: FileSyncSummary = { total, seconds: Math.round((now() - started) / 100) / 10, outcomes, resources, failures, ...(stopped ? { stopped } : {}) };
  opts.stderr.write(formatSummary(summary));
  return { summary, exitCode: exitCode(summary) };
}

/**
 * 0 when every episode was delivered or already held; 1 when any was refused by a server, failed
 * there or was not attempted; 2 when the only failures were episodes that could not be read or
 * were not valid (the input needs fixing, the servers are fine).
 */
export function exitCode(s: Pick<FileSyncSummary, 'outcomes'>): number {
  const o = s.outcomes;
  if (o.refused || o.failed || o.skipped) return 1;
  if (o.unreadable || o.invalid) return 2;
  return 0;
}

/** The closing summary: one line per outcome that occurred, with counts. */
export function formatSummary(s: FileSyncSummary): string {
  const done = Object.entries(s.outcomes).reduce((n, [k, v]) => n + (k === 'skipped' ? 0 : v), 0);
  const rate = s.seconds > 0 ? `, ${formatRate(done / s.seconds)}/s` : '';
  const lines = [`sync: ${done} of ${s.total} episodes in ${formatDuration(s.seconds * 1000)}${rate}`];
  const width = Math.max(...Object.values(OUTCOMES).map((l) => l.length));
  for (const [k, label] of Object.entries(OUTCOMES) as [Outcome, string][]) {
    if (!s.outcomes[k] && k !== 'delivered') continue;
    lines.push(`  ${label.padEnd(width)}  ${String(s.outcomes[k]).padStart(6)}`);
  }
  const r = s.resources;
  lines.push(`  resources: created ${r.created}, updated ${r.updated}, unchanged ${r.unchanged}`);
  return lines.join('\n') + '\n';
}
