/**
 * `--bearer-env NAME` / `--bearer-file PATH`: how command-line tools (`imh-bridge sync`,
 * `npm run test:sandbox`) take a bearer token. A token on the command line would be readable
 * by every user of the machine (`ps`, /proc) and kept in shell history, so `--bearer` is
 * refused. Messages never repeat the token.
 */
import { readFile } from 'node:fs/promises';

export type BearerOption = { ok: true; token?: string } | { ok: false; message: string };

/**
 * The token named by the parsed options `bearer-env` / `bearer-file` (`bearer` only to refuse
 * it); with `prefix` `primary-`, the options `primary-bearer-env` / `primary-bearer-file`.
 */
export async function bearerFromOptions(
  values: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
  prefix: '' | 'primary-' = '',
): Promise<BearerOption> {
  const flag = `--${prefix}bearer`;
  if (values[`${prefix}bearer`] !== undefined) {
    return {
      ok: false,
      message:
        `${flag} is not accepted: a token on the command line is visible to other users (ps) and kept in shell history. ` +
        `Put it in an environment variable and pass ${flag}-env NAME, or in a file readable only by you and pass ${flag}-file PATH`,
    };
  }
  const fromEnv = values[`${prefix}bearer-env`] as string | undefined;
  const fromFile = values[`${prefix}bearer-file`] as string | undefined;
  if (fromEnv !== undefined && fromFile !== undefined) return { ok: false, message: `give ${flag}-env or ${flag}-file, not both` };
  let token: string | undefined;
  let source: string;
  if (fromEnv !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(fromEnv)) return { ok: false, message: `${flag}-env must name an environment variable (letters, digits, _)` };
    source = `the environment variable ${fromEnv}`;
    token = env[fromEnv]?.trim();
  } else if (fromFile !== undefined) {
    source = `the file ${fromFile}`;
    try {
      token = (await readFile(fromFile, 'utf8')).trim();
    } catch (e) {
      return { ok: false, message: `cannot read ${flag}-file ${fromFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}` };
    }
  } else {
    return { ok: true };
  }
  if (!token) return { ok: false, message: `${source} is not set or is empty` };
  if (!/^[\x21-\x7e]+$/.test(token)) return { ok: false, message: `${source} holds spaces or characters not allowed in a bearer token` };
  return { ok: true, token };
}
