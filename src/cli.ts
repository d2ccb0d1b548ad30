/**
 * `imh-bridge` command line (Node). Exit codes: 0 success, 1 invalid FHIR (validate),
 * 2 bad input or usage.
 */
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import type { Resource } from '@medplum/fhirtypes';
import { hasErrors, isOperationOutcomeError, issue, outcome } from './fhir/outcome.ts';
import { mapEpisode } from './mapping/bundle.ts';

const USAGE = `usage:
  imh-bridge map FILE|-        map an episode (JSON) to a FHIR R4 transaction Bundle
  imh-bridge validate FILE|-   validate a FHIR resource or Bundle against R4 and the bridge's profiles
exit codes: 0 ok, 1 invalid FHIR resource (validate), 2 bad input`;

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
  const [command, file, ...rest] = argv;
  if (!command || command === '--help' || command === '-h') {
    process.stdout.write(USAGE + '\n');
    return command ? 0 : 2;
  }
  if (!file || rest.length) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  try {
    switch (command) {
      case 'map': {
        print(mapEpisode(await readJson(file), { allowSyntheticIds: process.env.ALLOW_SYNTHETIC_IDS !== 'false' }));
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

process.exitCode = await main(process.argv.slice(2));
