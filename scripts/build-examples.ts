/**
 * Writes the derived examples in examples/ from the example episodes there (which are copies of
 * the episode format's own examples and are never generated):
 * - `<questionnaire id>.response.json`: one QuestionnaireResponse per published Questionnaire,
 *   shaped as a form renderer exports it (LHC-Forms' `getFormFHIRData`: `questionnaire` as
 *   url|version, item texts, no identifier, no author) plus the one addition `$extract` needs, a
 *   `subject` by the parent's (synthetic) national id. The answers are those of an assessment in
 *   the example episodes, so extraction gives the scores the episode path gives;
 * - `episodes.ndjson`: every example episode, one per line, for `$import`.
 *
 *   node scripts/build-examples.ts           write the files
 *   node scripts/build-examples.ts --check   exit 1 when a file is stale or missing
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Bundle, QuestionnaireItem, QuestionnaireResponse, QuestionnaireResponseItem } from '@medplum/fhirtypes';
import { NO } from '../src/fhir/systems.ts';
import { QUESTIONNAIRE_IDS, questionnaire } from '../src/instruments/questionnaires.ts';
import { mapEpisode } from '../src/mapping/bundle.ts';

const dir = resolve(import.meta.dirname, '..', 'examples');
const check = process.argv.includes('--check');

interface ExampleEpisode {
  episodeId: string;
  parent: { nationalId: string };
  assessments?: { assessmentId: string; instrument: string; completedOn: string }[];
  sessions?: { sessionId: string; kind: string; status: string; start: string; reviewsClips?: string[]; focusElements?: string[]; themes?: string[] }[];
}

const episodeFiles = readdirSync(dir)
  .filter((f) => f.endsWith('.episode.json'))
  .sort();
const episodes = new Map(episodeFiles.map((f) => [f, JSON.parse(readFileSync(join(dir, f), 'utf8')) as ExampleEpisode]));
const episode = (file: string): ExampleEpisode => {
  const e = episodes.get(file);
  if (!e) throw new Error(`examples/${file} is missing`);
  return e;
};

/**
 * Which administration each response carries. EPDS is the father's first, whose item 10
 * (self-harm) is positive, so one example raises a Flag; the others are the mother's first.
 */
const SOURCES: Record<string, { file: string; assessmentId: string }> = {
  epds: { file: 'active-father-no-consent.episode.json', assessmentId: 'A1' },
  'phq-9': { file: 'completed-mother.episode.json', assessmentId: 'A2' },
  'gad-7': { file: 'completed-mother.episode.json', assessmentId: 'A3' },
  prfq: { file: 'completed-mother.episode.json', assessmentId: 'A4' },
  'pdi-rf': { file: 'completed-mother.episode.json', assessmentId: 'A5' },
};
/** The session review response: the mother's first attended review session. */
const REVIEW = { file: 'completed-mother.episode.json', sessionId: 'S3' };

/** A renderer writes the time the form was saved; the examples use 10:00 local time on the day. */
const authoredOn = (date: string) => `${date}T10:00:00+01:00`;

function texts(items: QuestionnaireItem[] | undefined, into = new Map<string, string>()): Map<string, string> {
  for (const i of items ?? []) {
    if (i.linkId && i.text) into.set(i.linkId, i.text);
    texts(i.item, into);
  }
  return into;
}

/** The renderer's envelope around the items: no id, identifier, author or meta of the bridge. */
function rendererResponse(id: string, nationalId: string, authored: string, item: QuestionnaireResponseItem[]): QuestionnaireResponse {
  const q = questionnaire(id);
  if (!q) throw new Error(`no Questionnaire ${id}`);
  const text = texts(q.item);
  return {
    resourceType: 'QuestionnaireResponse',
    status: 'completed',
    questionnaire: `${q.url}|${q.version}`,
    subject: { identifier: { system: NO.fnr, value: nationalId } },
    authored,
    item: item.map((i) => ({ linkId: i.linkId, ...(text.has(i.linkId) ? { text: text.get(i.linkId) } : {}), answer: i.answer })),
  };
}

function instrumentResponse(id: string): QuestionnaireResponse {
  const source = SOURCES[id];
  if (!source) throw new Error(`no example assessment chosen for ${id}`);
  const e = episode(source.file);
  const a = e.assessments?.find((x) => x.assessmentId === source.assessmentId);
  if (!a) throw new Error(`${source.file} has no assessment ${source.assessmentId}`);
  // The answers as the episode path writes them (Codings as the Questionnaire states them, computed totals).
  const bundle: Bundle = mapEpisode(e);
  const mapped = (bundle.entry ?? [])
    .map((x) => x.resource)
    .find((r): r is QuestionnaireResponse => r?.resourceType === 'QuestionnaireResponse' && r.identifier?.value === `${e.episodeId}/${a.assessmentId}`);
  if (!mapped) throw new Error(`the mapping of ${source.file} has no response for ${a.assessmentId}`);
  return rendererResponse(id, e.parent.nationalId, authoredOn(a.completedOn), mapped.item ?? []);
}

function reviewResponse(): QuestionnaireResponse {
  const id = 'marte-meo-session-review';
  const q = questionnaire(id);
  const e = episode(REVIEW.file);
  const s = e.sessions?.find((x) => x.sessionId === REVIEW.sessionId);
  if (!q || !s) throw new Error(`no Questionnaire ${id} or no session ${REVIEW.sessionId}`);
  const option = (linkId: string, code: string) => {
    const c = q.item?.find((i) => i.linkId === linkId)?.answerOption?.find((o) => o.valueCoding?.code === code)?.valueCoding;
    if (!c) throw new Error(`${id} item ${linkId} has no option ${code}`);
    return { valueCoding: c };
  };
  const item: QuestionnaireResponseItem[] = [
    { linkId: 'session-date', answer: [{ valueDate: s.start.slice(0, 10) }] },
    { linkId: 'clips-reviewed', answer: (s.reviewsClips ?? []).map((c) => ({ valueString: c })) },
    { linkId: 'focus-elements', answer: (s.focusElements ?? []).map((c) => option('focus-elements', c)) },
    { linkId: 'themes', answer: (s.themes ?? []).map((c) => option('themes', c)) },
  ].filter((i) => i.answer.length);
  return rendererResponse(id, e.parent.nationalId, s.start, item);
}

const files = new Map<string, string>();
for (const id of QUESTIONNAIRE_IDS) {
  const qr = id === 'marte-meo-session-review' ? reviewResponse() : instrumentResponse(id);
  files.set(`${id}.response.json`, `${JSON.stringify(qr, null, 2)}\n`);
}
// One compact line per episode, in file order.
files.set('episodes.ndjson', episodeFiles.map((f) => JSON.stringify(episode(f))).join('\n') + '\n');

let stale = 0;
for (const [name, text] of files) {
  const file = join(dir, name);
  const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  if (current === text) continue;
  if (check) {
    console.error(`${file} is ${current === undefined ? 'missing' : 'stale'}: run npm run build:examples`);
    stale++;
  } else {
    writeFileSync(file, text);
    console.log(`wrote ${file}`);
  }
}
// A derived file that nothing produces any more is stale too (never deleted silently).
for (const f of readdirSync(dir).filter((f) => (f.endsWith('.response.json') || f.endsWith('.ndjson')) && !files.has(f))) {
  console.error(`${join(dir, f)} is not produced by scripts/build-examples.ts: remove it`);
  stale++;
}
if (stale) process.exit(1);
