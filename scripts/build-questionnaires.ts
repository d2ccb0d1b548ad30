/**
 * Writes profiles/Questionnaire-<id>.json from the instrument definitions
 * (src/instruments/questionnaires.ts): 2-space JSON with a trailing newline.
 *
 *   node scripts/build-questionnaires.ts           write the files
 *   node scripts/build-questionnaires.ts --check   exit 1 when a file is stale or missing
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { QUESTIONNAIRE_IDS, questionnaire } from '../src/instruments/questionnaires.ts';

const profiles = resolve(import.meta.dirname, '..', 'profiles');
const check = process.argv.includes('--check');

/** The file content for one Questionnaire. */
function questionnaireJson(id: string): string {
  const q = questionnaire(id);
  if (!q) throw new Error(`no Questionnaire ${id}`);
  return `${JSON.stringify(q, null, 2)}\n`;
}

let stale = 0;
const wanted = new Set(QUESTIONNAIRE_IDS.map((id) => `Questionnaire-${id}.json`));
for (const id of QUESTIONNAIRE_IDS) {
  const file = join(profiles, `Questionnaire-${id}.json`);
  const text = questionnaireJson(id);
  const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  if (current === text) continue;
  if (check) {
    console.error(`${file} is ${current === undefined ? 'missing' : 'stale'}: run npm run build:questionnaires`);
    stale++;
  } else {
    writeFileSync(file, text);
    console.log(`wrote ${file}`);
  }
}
// A Questionnaire file that no definition produces any more is stale too (never deleted silently).
for (const f of readdirSync(profiles).filter((f) => /^Questionnaire-.*\.json$/.test(f) && !wanted.has(f))) {
  console.error(`${join(profiles, f)} is not produced by src/instruments/questionnaires.ts: remove it`);
  stale++;
}
if (stale) process.exit(1);
