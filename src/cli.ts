/**
 * `imh-bridge` command line (Node). Exit codes: 0 success, 1 invalid FHIR (validate),
 * 2 bad input or usage.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { text } from 'node:stream/consumers';
import type { Resource } from '@medplum/fhirtypes';
import { hasErrors, isOperationOutcomeError, issue, outcome } from './fhir/outcome.ts';
import { mapEpisode } from './mapping/bundle.ts';
import { loadIdentity, targetUrlProblem } from './config.ts';

const USAGE = `usage:
  imh-bridge map FILE|-                      map an episode (JSON) to a FHIR R4 transaction Bundle
  imh-bridge validate FILE|-                 validate a FHIR resource or Bundle against R4 and the bridge's profiles
  imh-bridge sync FILE|- --target URL [--bearer-env NAME | --bearer-file PATH]
                 [--primary URL [--primary-bearer-env NAME | --primary-bearer-file PATH]]
                                             deliver one episode to a FHIR base URL (https; http only for localhost; retries,
                                             conditional writes, no ledger; master data only created when absent); prints
                                             created/updated/unchanged. The bearer token is read from the environment
                                             variable NAME or from the file PATH, never from the command line. With
                                             --primary, the server of the episode's primary treatment team receives what the
                                             consent allows (or the cancellation of open requests), each disclosure and
                                             consent refusal is audited on --target, and the coordination requests there are
                                             read back and printed
  imh-bridge extract FILE|-                  SDC extraction of a QuestionnaireResponse to a transaction Bundle of scores
                                             (Parameters {return, issues} when a calculated total disagrees with the answers)
  imh-bridge outcomes FILE|-                 first, latest, change and reliable change per instrument (FHIR Parameters)
  imh-bridge share FILE|- [--at DATETIME]    what the primary treatment team's server would receive for this send, as the
                                             consent allows at DATETIME (default now), assuming a target is configured for
                                             the episode's primary organisation; the gate's verdict on standard error
  imh-bridge sandbox [--port 8103] [--host 127.0.0.1]
                                             run a local sandbox FHIR R4 server at http://HOST:PORT/fhir
exit codes: 0 ok; 1 invalid FHIR resource (validate) or refused by the server (sync); 2 bad input`;

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
  let values: Record<string, string | undefined>;
  try {
    const parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        target: { type: 'string' },
        // Accepted only to refuse it with a clear message (see bearerToken).
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
      },
    });
    values = parsed.values as Record<string, string | undefined>;
    if (parsed.positionals.length > 1) throw new Error('too many arguments');
    file = parsed.positionals[0];
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (command === 'sandbox') return runSandbox(values);
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
        const bearer = await bearerToken(values);
        if (!bearer.ok) {
          process.stderr.write(`${bearer.message}\n`);
          return 2;
        }
        const primaryProblem = values.primary === undefined ? undefined : targetUrlProblem(values.primary);
        if (primaryProblem) {
          process.stderr.write(`--primary ${primaryProblem}\n`);
          return 2;
        }
        const primaryBearer = await bearerToken(values, 'primary-');
        if (!primaryBearer.ok) {
          process.stderr.write(`${primaryBearer.message}\n`);
          return 2;
        }
        if (values.primary === undefined && primaryBearer.token !== undefined) {
          process.stderr.write('--primary-bearer-env and --primary-bearer-file need --primary\n');
          return 2;
        }
        const { syncOnce } = await import('./sync/sync-once.ts');
        const result = await syncOnce(await readJson(file), {
          baseUrl: values.target,
          bearer: bearer.token,
          ...(values.primary !== undefined ? { primary: { baseUrl: values.primary, bearer: primaryBearer.token } } : {}),
          ...loadIdentity(process.env),
          log: (line) => process.stderr.write(line + '\n'),
        });
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
        const { extract, extractionBody } = await import('./instruments/extract.ts');
        const result = extract(await readJson(file), loadIdentity(process.env));
        // As over HTTP: the Bundle, or Parameters {return, issues} when there are warnings; those also go to stderr.
        for (const w of result.issues) process.stderr.write(`warning: ${w.details?.text ?? w.code}\n`);
        print(extractionBody(result));
        return 0;
      }
      case 'share': {
        const at = values.at ?? new Date().toISOString();
        if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(at) || Number.isNaN(Date.parse(at))) {
          process.stderr.write(`--at must be an ISO 8601 date or date-time with an offset, e.g. 2026-05-10T10:00:00Z\n`);
          return 2;
        }
        const { sharePrimary } = await import('./coordination/share.ts');
        const { gate, bundle } = sharePrimary(await readJson(file), { ...loadIdentity(process.env), at: new Date(Date.parse(at)).toISOString(), hasTarget: () => true });
        process.stderr.write(gate.open ? `gate open: sharing with ${gate.orgNumber}: ${[...gate.share].join(', ') || 'the episode only'}\n` : `gate closed: ${gate.text}\n`);
        print(bundle);
        return 0;
      }
      case 'outcomes': {
        const { parseEpisode } = await import('./domain/parse.ts');
        const { outcomesParameters } = await import('./instruments/outcomes.ts');
        print(outcomesParameters(parseEpisode(await readJson(file), loadIdentity(process.env))));
        return 0;
      }
      case 'validate': {
        const { validateFhir } = await import('./fhir/validate.ts');
        const input = await readJson(file);
        if (!input || typeof input !== 'object' || typeof (input as Resource).resourceType !== 'string') {
          print(outcome([issue('structure', 'input is not a FHIR resource: resourceType is missing', '/resourceType')]));
          return 1;
        }
        const result = validateFhir(input as Resource);
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

/**
 * The target's bearer token, from `--bearer-env NAME` or `--bearer-file PATH` (the primary
 * server's: `--primary-bearer-env`, `--primary-bearer-file`). A token on the
 * command line would be readable by every user of the machine (`ps`, /proc) and kept in shell
 * history, so `--bearer` is refused. Messages never repeat the token.
 */
async function bearerToken(values: Record<string, string | undefined>, prefix = ''): Promise<{ ok: true; token?: string } | { ok: false; message: string }> {
  if (values[`${prefix}bearer`] !== undefined) {
    return {
      ok: false,
      message:
        `--${prefix}bearer is not accepted: a token on the command line is visible to other users (ps) and kept in shell history. ` +
        `Put it in an environment variable and pass --${prefix}bearer-env NAME, or in a file readable only by you and pass --${prefix}bearer-file PATH`,
    };
  }
  const fromEnv = values[`${prefix}bearer-env`];
  const fromFile = values[`${prefix}bearer-file`];
  if (fromEnv !== undefined && fromFile !== undefined) return { ok: false, message: `give --${prefix}bearer-env or --${prefix}bearer-file, not both` };
  let token: string | undefined;
  let source: string;
  if (fromEnv !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(fromEnv)) return { ok: false, message: `--${prefix}bearer-env must name an environment variable (letters, digits, _)` };
    source = `the environment variable ${fromEnv}`;
    token = process.env[fromEnv]?.trim();
  } else if (fromFile !== undefined) {
    source = `the file ${fromFile}`;
    try {
      token = (await readFile(fromFile, 'utf8')).trim();
    } catch (e) {
      return { ok: false, message: `cannot read --${prefix}bearer-file ${fromFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}` };
    }
  } else {
    return { ok: true };
  }
  if (!token) return { ok: false, message: `${source} is not set or is empty` };
  if (!/^[\x21-\x7e]+$/.test(token)) return { ok: false, message: `${source} holds spaces or characters not allowed in a bearer token` };
  return { ok: true, token };
}

/** Runs the sandbox FHIR server until interrupted. */
async function runSandbox(values: Record<string, string | undefined>): Promise<number> {
  const port = Number(values.port ?? 8103);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write('--port must be a port number\n');
    return 2;
  }
  const { startSandbox } = await import('./sandbox/server.ts');
  const sandbox = await startSandbox({ port, host: values.host ?? '127.0.0.1' });
  process.stdout.write(`sandbox FHIR R4 server at ${sandbox.baseUrl} (CapabilityStatement: ${sandbox.baseUrl}/metadata)\n`);
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
  await sandbox.close();
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
