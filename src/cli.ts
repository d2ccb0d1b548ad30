/**
 * `imh-bridge` command line (Node). Exit codes: 0 success, 1 invalid FHIR (validate),
 * 2 bad input or usage, 3 refused by consent (summary: the gate is closed).
 */
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { parseArgs } from 'node:util';
import type { Resource } from '@medplum/fhirtypes';
import type { JWK } from 'jose';
import { bearerFromOptions } from './bearer-option.ts';
import { loadIdentity, targetUrlProblem } from './config.ts';
import { hasErrors, isOperationOutcomeError, issue, outcome } from './fhir/outcome.ts';
import { mapEpisode } from './mapping/bundle.ts';

const USAGE = `usage:
  imh-bridge map FILE|-                      map an episode (JSON) to a FHIR R4 transaction Bundle
  imh-bridge validate FILE|-                 validate a FHIR resource or Bundle against R4 and the bridge's profiles
  imh-bridge sync FILE|FOLDER|- ... --target URL [--bearer-env NAME | --bearer-file PATH]
                 [--primary URL [--primary-bearer-env NAME | --primary-bearer-file PATH]]
                 [--timeout SECONDS] [--retries N] [--concurrency N]
                                             deliver episodes to a FHIR base URL (https; http only for localhost; retries,
                                             conditional writes, no ledger; master data only created when absent). One
                                             episode (a .json file or -): prints created/updated/unchanged and the JSON
                                             report. Many (several files, .ndjson files with one episode per line, folders
                                             and their .json/.ndjson files, not subfolders): a progress line and a summary
                                             per outcome on standard error, the summary as JSON on standard output; a bad
                                             line is reported by file:line and the rest goes on. --timeout bounds one
                                             episode's delivery, retries included (default 30), --retries the retries after
                                             the first attempt (default 4), --concurrency the episodes in flight (default 4).
                                             The bearer token is read from the environment
                                             variable NAME or from the file PATH, never from the command line. With
                                             --primary, the server of the episode's primary treatment team receives what the
                                             consent allows (or the cancellation of open requests), each disclosure and
                                             consent refusal is audited on --target, and the coordination requests there are
                                             read back and printed
  imh-bridge extract FILE|-                  SDC extraction of a QuestionnaireResponse to a transaction Bundle of scores
                                             (Parameters {return, issues} when a calculated total disagrees with the answers)
  imh-bridge outcomes FILE|- [--format fhir|table]
                                             first, latest, change and reliable change per measure given twice or more: a
                                             FHIR Parameters resource (fhir, the default) or a table for a person (table)
  imh-bridge share FILE|- [--at DATETIME]    what the primary treatment team's server would receive for this send, as the
                                             consent allows at DATETIME (default now), assuming a target is configured for
                                             the episode's primary organisation; the gate's verdict on standard error
  imh-bridge coordination [--target URL] [--primary URL] [--at DATETIME] [--format table|json]
                         [--bearer-env NAME | --bearer-file PATH] [--primary-bearer-env NAME | --primary-bearer-file PATH]
                                             each episode's coordination requests as the servers hold them: the bridge's
                                             requests on the primary treatment team's server (--primary) and the
                                             risk-not-shared requests to the therapist on the clinic's server (--target),
                                             with status, priority, due date, overdue (at DATETIME, default now) and last
                                             change. Tokens as for sync; --primary-bearer-* for the primary server
  imh-bridge summary FILE|- --format fhir|html --lang nb|en [--at DATETIME]
                                             the coordination summary for the primary treatment team as the consent allows at
                                             DATETIME (default now): the FHIR document (signed with the first key of
                                             BRIDGE_PRIVATE_JWKS when set, else unsigned with a note on standard error) or the
                                             page (html). A closed gate, or a consent without summary, prints the
                                             OperationOutcome and exits 3
  imh-bridge sandbox [--port 8103] [--host 127.0.0.1]
                                             run a local sandbox FHIR R4 server at http://HOST:PORT/fhir
  imh-bridge COMMAND --help                  this text for one command
exit codes: 0 ok; 1 invalid FHIR resource (validate), an episode refused by or not delivered to the server (sync) or
  a server that cannot be read (coordination); 2 bad input (for sync of many: only unreadable or invalid episodes
  failed); 3 refused by consent (summary)`;

/** The usage of one command (its lines of USAGE), or all of it for a command that does not exist. */
function usageOf(command: string): string {
  const lines = USAGE.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`  imh-bridge ${command} `) || l === `  imh-bridge ${command}`);
  if (start < 0) return USAGE;
  let end = start + 1;
  // Continuation lines are indented deeper than a command line.
  while (end < lines.length && /^ {3,}/.test(lines[end] as string)) end++;
  return ['usage:', ...lines.slice(start, end)].join('\n');
}

const print = (value: unknown) => process.stdout.write(JSON.stringify(value, null, 2) + '\n');

async function readJson(file: string): Promise<unknown> {
  let raw: string;
  try {
    raw = file === '-' ? await text(process.stdin) : await readFile(file, 'utf8');
  } catch (e) {
    throw new CliInputError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    return JSON.parse(raw);
  } catch (e) {
    throw new CliInputError(`${file === '-' ? 'standard input' : file} is not valid JSON: ${(e as Error).message}`);
  }
}

class CliInputError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === '--help' || command === '-h') {
    process.stdout.write(USAGE + '\n');
    return command ? 0 : 2;
  }
  let file: string | undefined;
  let files: string[] = [];
  let values: Record<string, string | undefined>;
  try {
    const parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        target: { type: 'string' },
        // Accepted only to refuse it with a clear message (see bearerFromOptions).
        bearer: { type: 'string' },
        'bearer-env': { type: 'string' },
        'bearer-file': { type: 'string' },
        primary: { type: 'string' },
        'primary-bearer': { type: 'string' },
        'primary-bearer-env': { type: 'string' },
        'primary-bearer-file': { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        at: { type: 'string' },
        format: { type: 'string' },
        lang: { type: 'string' },
        concurrency: { type: 'string' },
        timeout: { type: 'string' },
        retries: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (parsed.values.help) {
      const known = usageOf(command) !== USAGE;
      (known ? process.stdout : process.stderr).write(`${known ? '' : `unknown command "${command}"\n`}${usageOf(command)}\n`);
      return known ? 0 : 2;
    }
    values = parsed.values as Record<string, string | undefined>;
    // sync takes many files and folders; every other command one input.
    if (parsed.positionals.length > 1 && command !== 'sync') throw new Error('too many arguments');
    files = parsed.positionals;
    file = files[0];
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (command === 'sandbox') return runSandbox(values);
  if (command === 'coordination') {
    if (file) {
      process.stderr.write(`coordination takes no file\n${USAGE}\n`);
      return 2;
    }
    return runCoordination(values);
  }
  if (!file) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  try {
    switch (command) {
      case 'sync': {
        if (!values.target) {
          process.stderr.write(`sync needs --target with the FHIR base URL\n${USAGE}\n`);
          return 2;
        }
        const targetProblem = targetUrlProblem(values.target);
        if (targetProblem) {
          process.stderr.write(`--target ${targetProblem}\n`);
          return 2;
        }
        const bearer = await bearerFromOptions(values);
        if (!bearer.ok) {
          process.stderr.write(`${bearer.message}\n`);
          return 2;
        }
        const primaryProblem = values.primary === undefined ? undefined : targetUrlProblem(values.primary);
        if (primaryProblem) {
          process.stderr.write(`--primary ${primaryProblem}\n`);
          return 2;
        }
        const primaryBearer = await bearerFromOptions(values, process.env, 'primary-');
        if (!primaryBearer.ok) {
          process.stderr.write(`${primaryBearer.message}\n`);
          return 2;
        }
        if (values.primary === undefined && primaryBearer.token !== undefined) {
          process.stderr.write('--primary-bearer-env and --primary-bearer-file need --primary\n');
          return 2;
        }
        const limits = deliveryLimits(values);
        if (typeof limits === 'string') {
          process.stderr.write(`${limits}\n${usageOf('sync')}\n`);
          return 2;
        }
        const { syncOnce } = await import('./sync/sync-once.ts');
        const { DEFAULT_RETRY_POLICY } = await import('./sync/retry.ts');
        const syncOptions = {
          baseUrl: values.target,
          bearer: bearer.token,
          ...(values.primary !== undefined ? { primary: { baseUrl: values.primary, bearer: primaryBearer.token } } : {}),
          ...loadIdentity(process.env),
          policy: { ...DEFAULT_RETRY_POLICY, maxAttempts: limits.retries + 1 },
          timeoutMs: limits.timeoutSeconds * 1000,
        };
        const { isBatch, resolveSources, syncFiles, SourceError } = await import('./cli/sync-files.ts');
        if (await isBatch(files)) {
          let sources: Awaited<ReturnType<typeof resolveSources>>;
          try {
            sources = await resolveSources(files);
          } catch (e) {
            if (!(e instanceof SourceError)) throw e;
            process.stderr.write(`${e.message}\n`);
            return 2;
          }
          const { summary, exitCode } = await syncFiles({
            sources,
            concurrency: limits.concurrency,
            // Retries are summarised per episode; the per-attempt lines would drown the progress line.
            deliver: (input) => syncOnce(input, syncOptions),
            stderr: { write: (t) => process.stderr.write(t), isTTY: process.stderr.isTTY },
          });
          print(summary);
          return exitCode;
        }
        const result = await syncOnce(await readJson(file), { ...syncOptions, log: (line) => process.stderr.write(line + '\n') });
        if (result.report.gaveUp) process.stderr.write(`${result.report.gaveUp}\n`);
        // One line per target for a person; the JSON report on stdout carries the same.
        for (const [name, t] of Object.entries(result.report.targets)) {
          const c = t.result.counts;
          const prefix = name === 'clinic' ? '' : `${name}: `;
          if (c) process.stderr.write(`${prefix}created ${c.created}, updated ${c.updated}, unchanged ${c.unchanged}\n`);
          else process.stderr.write(`${prefix}${t.result.status}${t.result.error ? `: ${t.result.error}` : ''}\n`);
          for (const q of t.result.requests ?? []) {
            process.stderr.write(`${prefix}request ${q.occasion} ${q.status}${q.priority ? ` (${q.priority})` : ''}${q.due ? `, due ${q.due}` : ''}\n`);
          }
        }
        for (const a of result.report.audits) process.stderr.write(`audit ${a.kind} ${a.target}: ${a.outcome ?? '-'} (${a.status})\n`);
        print(result.report);
        return result.delivered ? 0 : 1;
      }
      case 'map': {
        print(mapEpisode(await readJson(file), loadIdentity(process.env)));
        return 0;
      }
      case 'extract': {
        const { extract, extractionBody } = await import('./instruments/sdc-extract.ts');
        const result = extract(await readJson(file), loadIdentity(process.env));
        // As over HTTP: the Bundle, or Parameters {return, issues} when there are warnings; those also go to stderr.
        for (const w of result.issues) process.stderr.write(`warning: ${w.details?.text ?? w.code}\n`);
        print(extractionBody(result));
        return 0;
      }
      case 'share': {
        const at = values.at ?? new Date().toISOString();
        if (!isInstantOrDate(at)) {
          process.stderr.write(`--at must be an ISO 8601 date or date-time with an offset, e.g. 2026-05-10T10:00:00Z\n`);
          return 2;
        }
        const { sharePrimary } = await import('./coordination/share.ts');
        const { gate, bundle } = sharePrimary(await readJson(file), {
          ...loadIdentity(process.env),
          at: new Date(Date.parse(at)).toISOString(),
          hasTarget: () => true,
        });
        process.stderr.write(
          gate.open ? `gate open: sharing with ${gate.orgNumber}: ${[...gate.share].join(', ') || 'the episode only'}\n` : `gate closed: ${gate.text}\n`,
        );
        print(bundle);
        return 0;
      }
      case 'summary':
        return await runSummary(file, values);
      case 'outcomes': {
        const format = values.format ?? 'fhir';
        if (format !== 'fhir' && format !== 'table') {
          process.stderr.write(`--format must be fhir or table\n${usageOf('outcomes')}\n`);
          return 2;
        }
        const { parseEpisode } = await import('./domain/parse.ts');
        const { episodeOutcomes, formatOutcomesTable, outcomesParameters } = await import('./instruments/outcomes.ts');
        const episode = parseEpisode(await readJson(file), loadIdentity(process.env));
        if (format === 'table') process.stdout.write(formatOutcomesTable(episodeOutcomes(episode)));
        else print(outcomesParameters(episode));
        return 0;
      }
      case 'validate': {
        const { validateFast } = await import('./fhir/validate-fast.ts');
        const input = await readJson(file);
        if (!input || typeof input !== 'object' || typeof (input as Resource).resourceType !== 'string') {
          print(outcome([issue('structure', 'input is not a FHIR resource: resourceType is missing', '/resourceType')]));
          return 1;
        }
        const result = await validateFast(input as Resource);
        print(result);
        return hasErrors(result) ? 1 : 0;
      }
      default:
        process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
        return 2;
    }
  } catch (e) {
    if (isOperationOutcomeError(e)) {
      print(e.outcome);
      return 2;
    }
    if (e instanceof CliInputError) {
      print(outcome([issue('invalid', e.message)]));
      return 2;
    }
    throw e;
  }
}

/** Defaults of `sync`: bounded so that a dead server ends the command in seconds, not minutes. */
const SYNC_DEFAULTS = { timeoutSeconds: 30, retries: 4, concurrency: 4 } as const;

/** `--timeout`, `--retries` and `--concurrency` of sync, or the sentence saying what is wrong. */
function deliveryLimits(values: Record<string, string | undefined>): { timeoutSeconds: number; retries: number; concurrency: number } | string {
  const timeoutSeconds = Number(values.timeout ?? SYNC_DEFAULTS.timeoutSeconds);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > 86_400)
    return '--timeout must be a number of seconds above 0 (at most 86400)';
  const retries = Number(values.retries ?? SYNC_DEFAULTS.retries);
  if (!Number.isInteger(retries) || retries < 0 || retries > 20) return '--retries must be a whole number from 0 to 20';
  const concurrency = Number(values.concurrency ?? SYNC_DEFAULTS.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32) return '--concurrency must be a whole number from 1 to 32';
  return { timeoutSeconds, retries, concurrency };
}

/** ISO 8601 date or date-time with an offset, as `--at` takes it. */
const isInstantOrDate = (at: string): boolean =>
  /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(at) && !Number.isNaN(Date.parse(at));

/** This machine's local time with its offset, so that "today" is the local calendar day. */
function localNow(d = new Date()): string {
  const offset = -d.getTimezoneOffset();
  const pad = (n: number) => String(Math.floor(Math.abs(n))).padStart(2, '0');
  const local = new Date(d.getTime() + offset * 60_000).toISOString().slice(0, 23);
  return `${local}${offset < 0 ? '-' : '+'}${pad(offset / 60)}:${pad(offset % 60)}`;
}

/**
 * `imh-bridge coordination`: reads the coordination requests from the primary team's server and
 * the clinic's, and prints them by episode. A server that cannot be read ends it with one line
 * naming the server and the cause (exit 1); nothing half-read is printed.
 */
async function runCoordination(values: Record<string, string | undefined>): Promise<number> {
  const usage = (message: string) => {
    process.stderr.write(`${message}\n${USAGE}\n`);
    return 2;
  };
  if (!values.target && !values.primary) return usage("coordination needs --primary (the primary team's FHIR base URL), --target (the clinic's), or both");
  const format = values.format ?? 'table';
  if (format !== 'table' && format !== 'json') return usage('--format must be table or json');
  const at = values.at ?? localNow();
  if (!isInstantOrDate(at)) return usage('--at must be an ISO 8601 date or date-time with an offset, e.g. 2026-05-10T10:00:00Z');
  const { FhirTargetClient, TargetError } = await import('./sync/client.ts');
  const { requestQuery, searchTasks, summariseRequests, formatRequestsTable, parseRequestIdentifier } = await import('./coordination/requests.ts');
  const sources: { name: string; url: string; prefix: '' | 'primary-'; query: string }[] = [];
  if (values.primary)
    sources.push({
      name: 'the primary server',
      url: values.primary,
      prefix: 'primary-',
      query: requestQuery(['guidance-started', 'risk-follow-up', 'guidance-ended']),
    });
  if (values.target) sources.push({ name: 'the clinic server', url: values.target, prefix: '', query: requestQuery(['risk-not-shared']) });
  const clients = [];
  for (const source of sources) {
    const problem = targetUrlProblem(source.url);
    if (problem) return usage(`--${source.prefix ? 'primary' : 'target'} ${problem}`);
    const bearer = await bearerFromOptions(values, process.env, source.prefix);
    if (!bearer.ok) {
      process.stderr.write(`${bearer.message}\n`);
      return 2;
    }
    // The client's message carries the cause (ECONNREFUSED host:port, a DNS failure, a certificate).
    const client = new FhirTargetClient(source.url, {
      fetch: (...a: Parameters<typeof fetch>) => fetch(...a),
      authorization: async () => (bearer.token ? `Bearer ${bearer.token}` : undefined),
    });
    clients.push({ source, client });
  }
  const tasks = [];
  for (const { source, client } of clients) {
    try {
      const found = await searchTasks(client, source.query);
      if (found.missing) process.stderr.write(`warning: ${source.name} holds ${found.missing} more requests than it returned (it gave no next page)\n`);
      tasks.push(...found.tasks);
    } catch (e) {
      const why = e instanceof TargetError ? e.message.replace(/^GET [^:]*: /, '') : (e as Error).message;
      process.stderr.write(`cannot read the coordination requests from ${source.name} at ${client.baseUrl}: ${why}\n`);
      return 1;
    }
  }
  const unknown = tasks.filter((t) => !parseRequestIdentifier(t)).length;
  if (unknown) process.stderr.write(`note: ${unknown} Task(s) with a coordination-request code but without the bridge's identifier are not listed\n`);
  const episodes = summariseRequests(tasks, at);
  if (format === 'json') print({ at, episodes });
  else process.stdout.write(formatRequestsTable(episodes));
  return 0;
}

/**
 * `summary`: the coordination summary document (fhir) or page (html). The time is `--at` as
 * given when it is an instant with seconds (so the same --at gives the same bytes), else
 * normalised to UTC. Exit 3 with the OperationOutcome when the consent refuses the summary.
 */
async function runSummary(file: string, values: Record<string, string | undefined>): Promise<number> {
  const { format, lang } = values;
  if (format !== 'fhir' && format !== 'html') {
    process.stderr.write(`summary needs --format fhir or --format html\n${USAGE}\n`);
    return 2;
  }
  if (lang !== 'nb' && lang !== 'en') {
    process.stderr.write(`summary needs --lang nb or --lang en\n${USAGE}\n`);
    return 2;
  }
  let at = values.at ?? new Date().toISOString();
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(at) || Number.isNaN(Date.parse(at))) {
    process.stderr.write(`--at must be an ISO 8601 date or date-time with an offset, e.g. 2026-05-10T10:00:00Z\n`);
    return 2;
  }
  if (!/T\d{2}:\d{2}:\d{2}/.test(at)) at = new Date(Date.parse(at)).toISOString().replace('.000Z', 'Z');
  let keys: { keys: JWK[] } | undefined;
  const jwksText = process.env.BRIDGE_PRIVATE_JWKS?.trim();
  if (format === 'fhir' && jwksText) {
    // Only the shape is checked here; messages never repeat the value (it is a secret).
    let parsed: unknown;
    try {
      parsed = JSON.parse(jwksText);
    } catch {
      parsed = undefined;
    }
    const set = parsed as { keys?: unknown } | undefined;
    if (!set || !Array.isArray(set.keys) || !set.keys.length || !set.keys.every((k) => k && typeof k === 'object' && typeof (k as JWK).d === 'string')) {
      process.stderr.write('BRIDGE_PRIVATE_JWKS must be a JSON Web Key Set of private keys: {"keys": [<private JWK>, ...]}\n');
      return 2;
    }
    keys = { keys: set.keys as JWK[] };
  }
  const { parseEpisode } = await import('./domain/parse.ts');
  const { allowSyntheticIds, identity } = loadIdentity(process.env);
  const episode = parseEpisode(await readJson(file), { allowSyntheticIds });
  try {
    if (format === 'html') {
      const { renderSummaryPage } = await import('./coordination/summary-page.ts');
      process.stdout.write(renderSummaryPage(episode, { at, lang, identity }));
      return 0;
    }
    const { buildSummary, signSummary } = await import('./coordination/summary.ts');
    const document = buildSummary(episode, { at, lang, identity });
    if (!keys) process.stderr.write('note: BRIDGE_PRIVATE_JWKS is not set: the document is not signed\n');
    print(keys ? await signSummary(document, keys) : document);
    return 0;
  } catch (e) {
    if (isOperationOutcomeError(e) && e.status === 403) {
      print(e.outcome);
      return 3;
    }
    throw e;
  }
}

/** Runs the sandbox FHIR server until interrupted. */
async function runSandbox(values: Record<string, string | undefined>): Promise<number> {
  const port = Number(values.port ?? 8103);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write('--port must be a port number\n');
    return 2;
  }
  const { startSandbox } = await import('../sandbox/server.ts');
  const sandbox = await startSandbox({ port, host: values.host ?? '127.0.0.1' });
  process.stdout.write(`sandbox FHIR R4 server at ${sandbox.baseUrl} (CapabilityStatement: ${sandbox.baseUrl}/metadata)\n`);
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
  await sandbox.close();
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
