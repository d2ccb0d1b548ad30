/**
 * Writes the published description of episode format 1.0 from the zod schemas that validate it
 * (src/domain/episode.ts), so that the description cannot drift from what the bridge accepts:
 * - docs/episode-format-1.0.schema.json: JSON Schema draft 2020-12 (`z.toJSONSchema`, the input
 *   side), with a description on every field;
 * - docs/episode-format.md: the reference page, one table per object (field, type, required,
 *   rules, description), and the rules JSON Schema cannot express.
 * Types, required fields, enums, patterns and bounds come from the zod schemas; the field
 * descriptions below are the prose the schemas lack, and the build fails while a field has none.
 *
 *   node scripts/build-format.ts           write the files
 *   node scripts/build-format.ts --check   exit 1 when a file is stale or missing
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as z from 'zod/mini';
import { EpisodeSchema } from '../src/domain/episode.ts';
import { CANONICAL_BASE } from '../src/fhir/systems.ts';

const root = resolve(import.meta.dirname, '..');
const docs = join(root, 'docs');
const SCHEMA_FILE = 'episode-format-1.0.schema.json';
const PAGE_FILE = 'episode-format.md';
const check = process.argv.includes('--check');

/**
 * Field descriptions by path (`sessions[].clips[].sha256`), else by field name alone for the
 * fields that mean the same wherever they occur (a person's `given`, an organisation's `name`).
 */
const DESCRIPTIONS: Record<string, string> = {
  schemaVersion: 'Version of the episode format, "1.0". Another major version is refused with a clear error.',
  episodeId: "The journal's id for the episode; stable across re-sends (the bridge finds the episode again by it).",
  status: 'Where the episode stands.',
  method: 'The video-guidance method. Only Marte Meo for now.',
  clinic: 'The infant mental health clinic that runs the episode.',
  referral: 'How the family came to the clinic.',
  'referral.receivedOn': 'When the clinic received the referral.',
  'referral.source': 'Who referred the family.',
  'referral.reason': "Free text of the referral. Stays in the clinic's record; never shared.",
  period: 'When the episode ran. Required unless status is planned; `end` required when finished.',
  'period.start': 'First day of the episode.',
  'period.end': 'Last day of the episode.',
  therapist: 'The clinician responsible for the guidance. Required unless status is planned.',
  parent: 'The parent receiving guidance.',
  'parent.relationship': "The parent's relationship to the infant(s).",
  infants: 'The infant(s) of the episode (twins occur). A newborn may lack a national id.',
  primaryTreatment: "The parent's own mental-health treatment (adult psychiatry), where there is one.",
  'primaryTreatment.organization': "The organisation treating the parent; the consent's recipient.",
  'primaryTreatment.contact': "The parent's contact in the primary treatment team.",
  'primaryTreatment.conditions': "The primary team's diagnoses of the parent, as ICD-10 codes. Never sent back to them.",
  'primaryTreatment.conditions[].system': 'The code system; only ICD-10.',
  'primaryTreatment.conditions[].code': 'ICD-10 code such as F33.1.',
  'primaryTreatment.conditions[].display': 'The text of the code, as the journal shows it.',
  consent: "The parent's consent to sharing with the primary treatment team. Absent: nothing is shared outside the clinic.",
  'consent.consentId': "The journal's id for the consent decision.",
  'consent.status': 'Only an active consent lets anything be shared; declined, withdrawn and expired stop all sharing.',
  'consent.decidedOn': 'When the parent decided.',
  'consent.expiresOn': 'Last day before the consent no longer counts (it no longer counts on this day).',
  'consent.recipient': 'Who may receive: the organisation in primaryTreatment.',
  'consent.share': 'Which parts the primary treatment team may see. Session notes and video are never shared, whatever this says.',
  sessions: 'The sessions of the episode, planned and held.',
  'sessions[].sessionId': "The journal's id for the session, unique within the episode.",
  'sessions[].kind': 'What the session is for.',
  'sessions[].status': 'Attendance, kept exactly: planned, attended, cancelled or no-show.',
  'sessions[].setting': 'Where the session takes place.',
  'sessions[].start': 'When the session starts.',
  'sessions[].minutes': 'Length of the session in minutes.',
  'sessions[].clips': 'Filming sessions: the video clips recorded. Only metadata; the video never passes through the bridge.',
  'sessions[].clips[].clipId': "The journal's id for the clip, unique within the episode.",
  'sessions[].clips[].recordedAt': 'When the clip was recorded.',
  'sessions[].clips[].seconds': 'Length of the clip in seconds.',
  'sessions[].clips[].contentType': 'Media type of the video, such as video/mp4.',
  'sessions[].clips[].uri': "Where the clinic's video store keeps the clip (http or https).",
  'sessions[].clips[].sha256': 'SHA-256 digest of the video file, in hexadecimal.',
  'sessions[].reviewsClips': 'Review sessions: the clipIds looked at, from earlier filming sessions of the same episode.',
  'sessions[].focusElements': 'The Marte Meo elements worked on in the session.',
  'sessions[].themes': "The parent's change process as the therapist sees it.",
  'sessions[].cancellationReason': 'Cancelled sessions: why.',
  'sessions[].note': "Free text, clinic-internal: a psychotherapy note of its own on the clinic's server, never shared.",
  assessments: 'Questionnaires and ratings given during the episode.',
  'assessments[].assessmentId': "The journal's id for the assessment, unique within the episode.",
  'assessments[].completedOn': 'When the instrument was completed (a clinician rating may be dated after the episode ends).',
  'assessments[].respondent': 'Who answered: the parent, or a clinician rating.',
  'assessments[].rater': 'The clinician who rated (PDI-RF); may be given by HPR number alone.',
  'assessments[].instrument': 'The instrument, which decides the answers expected.',
  'assessments[].answers':
    'Per item number ("1", "2", …), the answer: for EPDS the position (0–3, top to bottom) of the option ticked on the standard form; for PHQ-9 and GAD-7 the score 0–3; for PRFQ the agreement 1–7 (strongly disagree … strongly agree). Every item is required.',
  'assessments[].score': 'PDI-RF: reflective functioning coded from the Parent Development Interview (−1 … 9; 5 is ordinary RF).',
  goals: 'Goals agreed with the parent.',
  'goals[].goalId': "The journal's id for the goal, unique within the episode.",
  'goals[].description': 'The goal in words.',
  'goals[].startOn': 'When the goal was set.',
  'goals[].status': 'Where the goal stands.',
  'goals[].statusOn': 'When the status was last set.',
  closing: 'How the episode ended. Required when finished; allowed when cancelled.',
  'closing.closedOn': 'When the episode was closed.',
  'closing.reason': 'Why the episode ended.',
  'closing.clinicianGlobalImprovement': 'CGI-I: 1 very much improved … 7 very much worse.',
  'closing.recommendation': 'Free-text recommendation at the end of the episode.',
  // Fields that mean the same wherever they occur.
  reshId: 'RESH id of the unit (Norwegian register of health-service units), digits.',
  name: 'Name of the organisation.',
  given: 'Given names, in order. UTF-8; Norwegian letters (æ, ø, å) are kept unchanged.',
  family: 'Family name.',
  birthDate: 'Date of birth.',
  gender: 'Administrative gender.',
  phone: 'Phone number.',
  hprNumber: 'Number in the Norwegian health personnel register (HPR).',
  profession: "The clinician's profession.",
};

/** What JSON Schema cannot say about the format; the bridge checks all of it (src/domain/episode.ts). */
const NOT_IN_JSON_SCHEMA = `## What the JSON Schema does not check

The JSON Schema describes the shape of an episode: fields, types, required fields, enumerations,
patterns and bounds, and that unknown fields are refused. The bridge checks more. An episode that
passes the JSON Schema can still be refused, with an OperationOutcome naming each problem, for:

- **Check digits.** A national id (fødselsnummer or D-number) has two mod-11 check digits and a
  real day of the month; an organisation number one mod-11 check digit. The schema only says
  "11 digits" and "9 digits".
- **Synthetic national ids.** Test identities (month + 40 or + 80) are accepted only where the
  deployment allows them (\`ALLOW_SYNTHETIC_IDS\`, not in production). A setting of the deployment,
  not of the format.
- **Real dates and times.** \`2026-02-30\` matches the date pattern but is not a date; a date-time
  must be a real instant. (The schema marks dates \`format: date\`, which validators treat as an
  annotation unless told to assert formats.)
- **Text.** Free-text fields follow FHIR R4's string rule (no control characters but tab, CR and
  LF, no lone surrogates), and names and texts must not be empty once trimmed: \`" "\` is refused.
  Clip addresses must be http or https URLs.
- **Rules across fields.** JSON Schema cannot compare two values (dates, ids across a list, a
  reference from one list into another); the status-dependent requirements could be written with
  \`if\`/\`then\`, but are kept in one place, the bridge's cross-field rules:
  - \`period\` and \`therapist\` are required unless \`status\` is planned; \`period.end\` and
    \`closing\` are required when it is finished; \`closing\` is allowed only when finished or
    cancelled;
  - \`period.end\` is not before \`period.start\`; \`closing.closedOn\` not before \`period.start\`;
    \`consent.expiresOn\` not before \`consent.decidedOn\`; a goal's \`statusOn\` not before its
    \`startOn\`;
  - the same national id is not used for two people of the episode;
  - \`sessionId\`, \`assessmentId\`, \`goalId\` and \`clipId\` are unique within the episode, and a
    share class is not listed twice;
  - clips belong to attended filming sessions; \`reviewsClips\` only to review sessions, naming
    clips of filming sessions that started earlier; \`cancellationReason\` only to cancelled
    sessions;
  - a consent (its recipient is the primary treatment team) needs \`primaryTreatment\`.
`;

type Schema = {
  type?: string;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  oneOf?: Schema[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  description?: string;
  additionalProperties?: boolean;
  [k: string]: unknown;
};

const missing: string[] = [];
const described = (path: string, name: string, own?: string): string => {
  // The zod schema's own description (a national id's check digits, a date-time's offset) follows ours.
  const ours = DESCRIPTIONS[path] ?? DESCRIPTIONS[name];
  const d = ours && own && !ours.includes(own) ? `${ours} ${own}.` : (ours ?? own);
  if (!d) missing.push(path);
  return d ?? '';
};

/** The JSON Schema, with every property described. */
function jsonSchema(): Schema {
  const schema = z.toJSONSchema(EpisodeSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Schema;
  const describe = (s: Schema, path: string) => {
    for (const [name, p] of Object.entries(s.properties ?? {})) {
      const at = path ? `${path}.${name}` : name;
      // Answers are keyed by item number: one description for the object, none per item.
      if (!/^\d+$/.test(name)) p.description = described(at, name, p.description);
      if (p.properties) describe(p, at);
      if (p.items?.properties) describe(p.items, `${at}[]`);
      for (const v of p.items?.oneOf ?? []) describe(v, `${at}[]`);
    }
  };
  describe(schema, '');
  return {
    $schema: schema.$schema,
    $id: `${CANONICAL_BASE}/schema/${SCHEMA_FILE}`,
    title: 'Episode format 1.0',
    description:
      'A Marte Meo video-guidance episode as a clinic journal sends it to imh-bridge. Generated from the zod schemas of src/domain/episode.ts (npm run build:format); docs/episode-format.md lists the rules this schema cannot express.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}

// ---- the reference page -------------------------------------------------------------------

const code = (s: unknown) => `\`${String(s).replaceAll('|', '\\|')}\``;
const anchor = (path: string) =>
  path
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
const isAnswers = (s: Schema) => !!s.properties && Object.keys(s.properties).length > 0 && Object.keys(s.properties).every((k) => /^\d+$/.test(k));

interface Section {
  path: string;
  schema: Schema;
}

function typeOf(s: Schema, path: string, sections: Section[]): string {
  if (s.const !== undefined) return code(JSON.stringify(s.const));
  if (s.enum) return 'string (code)';
  if (s.type === 'array' && s.items) return `array of ${typeOf(s.items, `${path}[]`, sections)}`;
  if (s.oneOf) {
    sections.push({ path, schema: s });
    return `[object](#${anchor(path)}) (by instrument)`;
  }
  if (s.type === 'object' && isAnswers(s)) return 'object (item → number)';
  if (s.type === 'object') {
    sections.push({ path, schema: s });
    return `[object](#${anchor(path)})`;
  }
  return s.type ?? 'any';
}

function rulesOf(s: Schema): string[] {
  const r: string[] = [];
  if (s.type === 'array') {
    if (s.minItems !== undefined) r.push(`at least ${s.minItems}`);
    if (s.items) r.push(...rulesOf(s.items).map((x) => `each: ${x}`));
    return r;
  }
  if (s.enum) r.push(`one of ${s.enum.map(code).join(', ')}`);
  if (s.pattern) r.push(`pattern ${code(s.pattern)}`);
  if (s.format) r.push(`format ${code(s.format)}`);
  if (s.minLength !== undefined || s.maxLength !== undefined) r.push(`${s.minLength ?? 0}–${s.maxLength ?? '∞'} characters`);
  const low = s.minimum ?? (s.exclusiveMinimum !== undefined ? `more than ${s.exclusiveMinimum}` : undefined);
  if (low !== undefined || s.maximum !== undefined)
    r.push(s.exclusiveMinimum !== undefined ? `${low}, at most ${s.maximum}` : `${low ?? '−∞'} … ${s.maximum ?? '∞'}`);
  if (isAnswers(s)) {
    const keys = Object.keys(s.properties ?? {});
    const first = s.properties?.[keys[0] as string] as Schema;
    r.push(`items ${code(keys[0])}–${code(keys[keys.length - 1])}, each ${first.type} ${first.minimum}–${first.maximum}; all required, no others`);
  }
  return r;
}

function table(section: Section, sections: Section[]): string {
  const { path, schema } = section;
  // An assessment is one of several objects, told apart by `instrument`: one table, per-field notes.
  const variants = schema.oneOf ?? [schema];
  const label = (v: Schema) => String(v.properties?.instrument?.const ?? '');
  const names = [...new Set(variants.flatMap((v) => Object.keys(v.properties ?? {})))];
  const rows = names.map((name) => {
    const having = variants.filter((v) => v.properties?.[name]);
    const at = path ? `${path}.${name}` : name;
    const first = having[0]?.properties?.[name] as Schema;
    const requiredIn = having.filter((v) => v.required?.includes(name));
    const required =
      variants.length === 1
        ? requiredIn.length
          ? 'yes'
          : 'no'
        : requiredIn.length === variants.length
          ? 'yes'
          : requiredIn.length
            ? `for ${requiredIn.map(label).join(', ')}`
            : having.length === variants.length
              ? 'no'
              : `no; ${having.map(label).join(', ')} only`;
    let rules: string[];
    const distinct = new Set(having.map((v) => JSON.stringify(v.properties?.[name])));
    if (distinct.size > 1 && name !== 'instrument') {
      // Variants that agree on the field share one entry ("EPDS, PHQ-9: …").
      const groups = new Map<string, string[]>();
      for (const v of having) {
        const f = v.properties?.[name] as Schema;
        const text = rulesOf(f).join('; ') || typeOf(f, at, []);
        groups.set(text, [...(groups.get(text) ?? []), label(v)]);
      }
      rules = [...groups].map(([text, labels]) => `${labels.join(', ')}: ${text}`);
    } else if (name === 'instrument') {
      rules = [`one of ${having.map((v) => code(label(v))).join(', ')}`];
    } else {
      rules = rulesOf(first);
    }
    const type = name === 'instrument' && variants.length > 1 ? 'string (code)' : typeOf(first, at, sections);
    return `| ${code(name)} | ${type} | ${required} | ${rules.join('; ').replaceAll('\n', ' ')} | ${(first.description ?? '').replaceAll('|', '\\|')} |`;
  });
  const title = path ? code(path) : 'The episode (top level)';
  return [
    `### ${title}`,
    path ? `<a id="${anchor(path)}"></a>\n` : '',
    '| field | type | required | rules | description |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

function page(schema: Schema): string {
  const sections: Section[] = [{ path: '', schema }];
  const out: string[] = [];
  for (let i = 0; i < sections.length; i++) out.push(table(sections[i] as Section, sections));
  return `<!-- Generated by scripts/build-format.ts from src/domain/episode.ts (npm run build:format). Do not edit. -->
# Episode format 1.0

A video-guidance episode is one course of Marte Meo video guidance for one parent and their
infant(s). The clinic's journal sends the whole episode as one JSON document every time it
changes (\`PUT /v1/episodes/{episodeId}\`, \`POST /v1/episodes/$map\`, one per line of \`$import\`,
or \`imh-bridge map FILE\`); the bridge validates it and maps it to FHIR R4.

- JSON Schema (draft 2020-12): [\`${SCHEMA_FILE}\`](${SCHEMA_FILE}), generated from the same zod
  schemas that validate episodes, so an editor or a journal's test can check an episode before
  sending it. It checks the shape only: see [What the JSON Schema does not check](#what-the-json-schema-does-not-check).
- Examples, all synthetic: [\`examples/\`](../examples/) (\`completed-mother.episode.json\`,
  \`active-father-no-consent.episode.json\`, \`planned-minimal.episode.json\`; all three in
  \`episodes.ndjson\`).
- Dates are \`YYYY-MM-DD\`; date-times ISO 8601 with an offset (\`2026-01-12T09:00:00+01:00\`).
- Unknown fields are refused, not ignored: a journal that sends something the bridge does not
  understand hears so.

## Fields

${out.join('\n')}
${NOT_IN_JSON_SCHEMA}`;
}

const schema = jsonSchema();
const files = new Map<string, string>([
  [SCHEMA_FILE, `${JSON.stringify(schema, null, 2)}\n`],
  [PAGE_FILE, page(schema)],
]);
if (missing.length) {
  console.error(`no description for ${missing.join(', ')}: add one to DESCRIPTIONS in scripts/build-format.ts`);
  process.exit(1);
}
let stale = 0;
mkdirSync(docs, { recursive: true });
for (const [name, text] of files) {
  const file = join(docs, name);
  const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  if (current === text) continue;
  if (check) {
    console.error(`${file} is ${current === undefined ? 'missing' : 'stale'}: run npm run build:format`);
    stale++;
  } else {
    writeFileSync(file, text);
    console.log(`wrote ${file}`);
  }
}
if (stale) process.exit(1);
