/**
 * LHC-Forms for the browser test, from the npm registry only: `npm pack lforms@VERSION` into
 * node_modules/.cache, integrity checked against the pinned digest, and only the tarball's
 * `package/dist/lforms/` used (the web component and the FHIR support scripts). Installing the
 * package would pull Angular and its peers, which a page that loads the built files does not need.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const LFORMS_VERSION = '40.1.3';
/** `npm view lforms@40.1.3 dist.integrity` */
const LFORMS_INTEGRITY = 'sha512-WLruTm+BcVnafC0rSAQ3/cNqhxvclBUxyBG68aub/uha2NaK9H8ZZcEXTTuORuGzzCt0wa7fvhuieZtcDIdPzQ==';

const cacheDir = resolve(import.meta.dirname, '../../node_modules/.cache', `lforms-${LFORMS_VERSION}`);

/** The directory holding `webcomponent/` and `fhir/` of LHC-Forms, fetched once per checkout. */
export function lformsDist(): string {
  const dist = join(cacheDir, 'package', 'dist', 'lforms');
  if (existsSync(join(dist, 'fhir', 'R4', 'lformsFHIR.min.js'))) return dist;

  const work = `${cacheDir}.tmp-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  execFileSync('npm', ['pack', `lforms@${LFORMS_VERSION}`, '--pack-destination', work, '--silent'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 300_000,
  });
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack lforms@${LFORMS_VERSION} wrote no tarball`);
  const digest = `sha512-${createHash('sha512')
    .update(readFileSync(join(work, tarball)))
    .digest('base64')}`;
  if (digest !== LFORMS_INTEGRITY) throw new Error(`lforms@${LFORMS_VERSION} tarball integrity ${digest} is not the pinned ${LFORMS_INTEGRITY}`);
  execFileSync('tar', ['xzf', tarball, 'package/dist/lforms'], { cwd: work });
  rmSync(join(work, tarball));
  rmSync(cacheDir, { recursive: true, force: true });
  renameSync(work, cacheDir);
  return dist;
}
