/**
 * `--bearer-env NAME` / `--bearer-file PATH`: how command-line tools (`imh-bridge sync`,
 * `npm run test:sandbox`) take a bearer token. A token on the command line would be readable
 * by every user of the machine (`ps`, /proc) and kept in shell history, so `--bearer` is
 * refused. Messages never repeat the token.
 */
import { readFile } from 'node:fs/promises';

export type BearerOption = { ok: true; token?: string } | { ok: false; message: string };

/** The token named by the parsed options `bearer-env` / `bearer-file` (`bearer` only to refuse it). */
export async function bearerFromOptions(values: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Promise<BearerOption> {
  if (values.bearer !== undefined) {
    return {
      ok: false,
      message:
        '--bearer is not accepted: a token on the command line is visible to other users (ps) and kept in shell history. ' +
        'Put it in an environment variable and pass --bearer-env NAME, or in a file readable only by you and pass --bearer-file PATH',
    };
  }
  const fromEnv = values['bearer-env'] as string | undefined;
  const fromFile = values['bearer-file'] as string | undefined;
  if (fromEnv !== undefined && fromFile !== undefined) return { ok: false, message: 'give --bearer-env or --bearer-file, not both' };
  let token: string | undefined;
  let source: string;
  if (fromEnv !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(fromEnv)) return { ok: false, message: '--bearer-env must name an environment variable (letters, digits, _)' };
    source = `the environment variable ${fromEnv}`;
    token = env[fromEnv]?.trim();
  } else if (fromFile !== undefined) {
    source = `the file ${fromFile}`;
    try {
      token = (await readFile(fromFile, 'utf8')).trim();
    } catch (e) {
      return { ok: false, message: `cannot read --bearer-file ${fromFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}` };
    }
  } else {
    return { ok: true };
  }
  if (!token) return { ok: false, message: `${source} is not set or is empty` };
  if (!/^[\x21-\x7e]+$/.test(token)) return { ok: false, message: `${source} holds spaces or characters not allowed in a bearer token` };
  return { ok: true, token };
}
