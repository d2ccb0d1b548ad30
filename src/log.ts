/**
 * The bridge's operational log: one JSON object per line,
 * `{"level":"error","event":"queue.attempt_failed","time":"2026-…Z","jobId":"…","error":"TypeError"}`,
 * so `wrangler tail --format json` and Workers Logs can filter on each field.
 *
 * A line carries only what an operator needs to act and nothing about a patient: the event
 * name, job ids, target names, tenants, statuses, counts, durations, setting names and error
 * kinds (an Error's name, never its message, which may quote input). Fields are allowed by name
 * ({@link LogFields}); any other key is dropped, and every string is capped and passed through
 * {@link redactText} (national ids, phone numbers) in case a caller gets it wrong. Never bodies,
 * names, national ids, tokens or a FHIR server's words: a job's record (GET /v1/jobs/{id})
 * holds the redacted details for its own tenant.
 */
import { redactText } from './sync/redact.ts';

/** Every event the bridge logs, with its level (README "What to watch" describes each). */
export const LOG_EVENTS = {
  /** A setting is bad or missing: the Worker answers 500 naming it. `settings`. */
  'config.invalid': 'error',
  /** A route threw something that is not an OperationOutcome: answered 500 "internal error". `error`. */
  'http.unhandled_error': 'error',
  /** One queued delivery attempt ran. `jobId`, `tenant`, `status`, `attempts`, `targets`, `durationMs`, `retryInSeconds`. */
  'delivery.attempt': 'info',
  /** Delivering to a target failed inside the bridge (not a server's answer). `jobId`, `target`, `error`. */
  'delivery.attempt_failed': 'error',
  /** Writing a disclosure or refusal AuditEvent failed inside the bridge. `jobId`, `error`. */
  'delivery.audit_failed': 'error',
  /** The queue consumer could not run an attempt; the message is retried in 30 s. `jobId`, `error`. */
  'queue.attempt_failed': 'error',
  /** A Node (local) queue attempt threw. `jobId`, `error`. */
  'queue.attempt_crashed': 'error',
  /** The dead-letter queue delivered a job; `status` says whether it was marked dead or had finished. `jobId`. */
  'dlq.job_received': 'warn',
  /** The dead-letter consumer could not mark a job dead; retried in 60 s. `jobId`, `error`. */
  'dlq.mark_dead_failed': 'error',
  /** The scheduled recovery and retention run. `counts`: requeued, markedDead, bundlesPurged, episodesPurged; `durationMs`. */
  'sweep.done': 'info',
  /** The scheduled read-back of open coordination requests. `counts`: refreshed, failed, skipped; `durationMs`. */
  'coordination.readback': 'info',
  /** The SMART summary could not write its AuditEvent (the page is refused). `error`, `httpStatus`. */
  'smart.audit_not_written': 'error',
} as const satisfies Record<string, LogLevel>;

export type LogLevel = 'info' | 'warn' | 'error';
export type LogEvent = keyof typeof LOG_EVENTS;

/** What a log line may carry besides level, event and time. */
export interface LogFields {
  jobId?: string;
  /** A target's name: `clinic` or `primary.<org number>`. */
  target?: string;
  tenant?: string;
  status?: string;
  httpStatus?: number;
  attempts?: number;
  durationMs?: number;
  retryInSeconds?: number;
  /** Setting names, e.g. `FHIR_TARGETS.clinic.baseUrl` (never their values). */
  settings?: string[];
  /** An error's kind (its name), never its message. */
  error?: string;
  /** Each target's status, by target name. */
  targets?: Record<string, string>;
  /** Counts, by what was counted. */
  counts?: Record<string, number>;
}

const MAX_STRING = 200;
const STRING_FIELDS = new Set(['jobId', 'target', 'tenant', 'status', 'error']);
const NUMBER_FIELDS = new Set(['httpStatus', 'attempts', 'durationMs', 'retryInSeconds']);

const safe = (s: string): string => redactText(s.length > MAX_STRING ? `${s.slice(0, MAX_STRING)}…` : s);
const finite = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n);

/** The fields as logged: only those allowed, with their expected types, strings capped and redacted. */
function clean(fields: LogFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (STRING_FIELDS.has(key) && typeof value === 'string') out[key] = safe(value);
    else if (NUMBER_FIELDS.has(key) && finite(value)) out[key] = value;
    else if (key === 'settings' && Array.isArray(value)) out[key] = value.filter((v) => typeof v === 'string').map(safe);
    else if ((key === 'targets' || key === 'counts') && value && typeof value === 'object') {
      const entries = Object.entries(value).filter(([, v]) => (key === 'counts' ? finite(v) : typeof v === 'string'));
      out[key] = Object.fromEntries(entries.map(([k, v]) => [safe(k), typeof v === 'string' ? safe(v) : v]));
    }
  }
  return out;
}

/** The kind of a thrown value for the `error` field: an Error's name, never its message. */
export function errorKind(e: unknown): string {
  return e instanceof Error
    ? e.name
    : e !== null && typeof e === 'object' && typeof (e as { name?: unknown }).name === 'string'
      ? String((e as { name: string }).name)
      : typeof e;
}

/**
 * Writes one log line: `event` at its level ({@link LOG_EVENTS}) with the allowed `fields`.
 * Through console (error → console.error, warn → console.warn, info → console.log), which is
 * what Workers Logs and `wrangler tail` collect, with the same level.
 */
export function log(event: LogEvent, fields: LogFields = {}, now: () => number = Date.now): void {
  const level = LOG_EVENTS[event];
  const line = JSON.stringify({ level, event, time: new Date(now()).toISOString(), ...clean(fields) });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}
