// Which build of the CLI to run: the esbuild bundle in dist/cli/ (scripts/build-cli.ts) while
// every file it was built from has the size and modification time recorded in
// dist/cli/inputs.json, else the TypeScript sources. So an edited source is never shadowed by
// an older bundle; it runs, only slower, until `npm run build:cli`.
import { readFileSync, statSync } from 'node:fs';

/**
 * The URL of the bundle's entry under `root` (a directory URL ending in /), or undefined when
 * the sources must run: no bundle, an input changed or gone, or IMH_BRIDGE_FROM_SOURCE=1.
 * @param {URL} root
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {string | undefined}
 */
export function freshBundle(root, env = process.env) {
  if (env.IMH_BRIDGE_FROM_SOURCE === '1') return undefined;
  let inputs;
  try {
    inputs = JSON.parse(readFileSync(new URL('dist/cli/inputs.json', root), 'utf8')).inputs;
  } catch {
    return undefined;
  }
  if (!inputs || typeof inputs !== 'object' || Object.keys(inputs).length === 0) return undefined;
  for (const [file, recorded] of Object.entries(inputs)) {
    const s = statSync(new URL(file, root), { throwIfNoEntry: false });
    if (!s || !Array.isArray(recorded) || s.size !== recorded[0] || s.mtimeMs !== recorded[1]) return undefined;
  }
  return new URL('dist/cli/cli.mjs', root).href;
}
