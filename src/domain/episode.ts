/**
 * The episode format 1.0 that clinic journals send (shared contract `episode-format.md`),
 * as zod schemas. Every rule of the format lives here; the mapping may assume a parsed
 * episode is complete and consistent.
 *
 * Written with zod/mini (https://zod.dev/packages/mini): the same core and the same verdicts
 * as zod's classic API, but a schema does not carry the classic API's fifty-odd methods, each
 * attached when the schema is built. Every process and every Worker isolate builds these
 * schemas before its first episode, and with the classic API that was about 9 ms of it.
 */
import * as z from 'zod/mini';
import { stringProblem } from '../fhir/strings.ts';
import { checkNationalId, checkOrgNumber } from './identifiers.ts';

/**
 * FHIR R4's string rule (https://hl7.org/fhir/R4/datatypes.html#string, fhir/strings.ts): no
 * control characters but tab, CR and LF, no lone surrogates. Every free-text field has it;
 * the others are held to patterns that already exclude such characters. Refused here, not
 * mapped: the Bundle would break the same rule.
 */
const fhirString = (v: string, ctx: z.core.$RefinementCtx<string>) => {
  const problem = stringProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, abort: true });
};
/** Free text of at most `max` characters that follows the string rule; `min` 1 once trimmed. */
const text = (max: number) => z.string().check(z.superRefine(fhirString), z.trim(), z.minLength(1), z.maxLength(max));

const isCalendarDate = (s: string): boolean => {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const dt = new Date(Date.UTC(y, mo - 1, d));
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === mo - 1 && dt.getUTCDate() === d;
};

/** A calendar date, YYYY-MM-DD. */
export const DateString = z
  .string()
  .check(
    z.regex(/^\d{4}-\d{2}-\d{2}$/, { error: 'must be a date written YYYY-MM-DD', abort: true }),
    z.refine(isCalendarDate, { error: 'is not a real calendar date' }),
  )
  .register(z.globalRegistry, { format: 'date' });

/** An ISO 8601 date-time with seconds optional and an explicit offset (Z or ±hh:mm). */
export const DateTimeString = z
  .string()
  .check(
    z.regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/, {
      error: 'must be an ISO date-time with an offset, for example 2026-01-12T09:00:00+01:00',
      abort: true,
    }),
    z.refine((s: string) => isCalendarDate(s.slice(0, 10)) && !Number.isNaN(Date.parse(s)), {
      error: 'is not a real date-time',
    }),
  )
  // No `format: date-time`: RFC 3339 requires seconds, which this format leaves optional.
  .register(z.globalRegistry, { description: 'ISO 8601 date-time with an explicit offset (Z or ±hh:mm); seconds optional' });

const NationalId = z
  .string()
  .check(
    z.superRefine((v: string, ctx) => {
      const r = checkNationalId(v);
      if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
    }),
  )
  // The pattern is for the published JSON Schema, which cannot express the check digits.
  .register(z.globalRegistry, { description: 'Norwegian fødselsnummer or D-number (11 digits, mod-11 check digits)', pattern: '^\\d{11}$' });

const OrgNumber = z
  .string()
  .check(
    z.superRefine((v: string, ctx) => {
      const r = checkOrgNumber(v);
      if (r) ctx.addIssue({ code: 'custom', message: r });
    }),
  )
  .register(z.globalRegistry, { description: 'Norwegian organisation number (9 digits, mod-11 check digit)', pattern: '^\\d{9}$' });

const Name = z.string().check(z.superRefine(fhirString), z.trim(), z.minLength(1, { error: 'must not be empty' }), z.maxLength(200));
const Phone = z.string().check(z.regex(/^\+?[0-9][0-9 ()-]{3,19}$/, { error: 'must be a phone number such as +47 400 00 000' }));
const HprNumber = z.string().check(z.regex(/^\d{1,9}$/, { error: 'must be an HPR number of 1–9 digits' }));
const Id = z.string().check(z.regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'must be 1–64 characters of A–Z, a–z, 0–9, . _ -' }));

export const Gender = z.enum(['female', 'male', 'other', 'unknown']);
export const Relationship = z.enum(['mother', 'father', 'co-mother', 'foster-parent', 'other']);
export const Profession = z.enum(['psychologist', 'psychiatrist', 'clinical-social-worker', 'nurse', 'physiotherapist', 'other']);

export const Organization = z.strictObject({
  orgNumber: OrgNumber,
  reshId: z.optional(z.string().check(z.regex(/^\d{1,12}$/, { error: 'must be a RESH id (digits)' }))),
  name: Name,
});

const personFields = {
  nationalId: NationalId,
  given: z.array(Name).check(z.minLength(1, { error: 'needs at least one given name' })),
  family: Name,
  birthDate: DateString,
  gender: Gender,
};

export const Parent = z.strictObject({
  ...personFields,
  relationship: Relationship,
  phone: z.optional(Phone),
});

export const Infant = z.strictObject({ ...personFields, nationalId: z.optional(NationalId) });

export const Clinician = z.strictObject({
  hprNumber: HprNumber,
  given: z.array(Name).check(z.minLength(1, { error: 'needs at least one given name' })),
  family: Name,
  profession: Profession,
  phone: z.optional(Phone),
});

/** A rater may be given by HPR number alone, or in full. */
export const Rater = z.strictObject({
  hprNumber: HprNumber,
  given: z.optional(z.array(Name).check(z.minLength(1))),
  family: z.optional(Name),
  profession: z.optional(Profession),
  phone: z.optional(Phone),
});

export const ReferralSource = z.enum(['health-visitor', 'general-practitioner', 'maternity-ward', 'child-welfare', 'adult-psychiatry', 'self', 'other']);

export const Referral = z.strictObject({
  receivedOn: DateString,
  source: ReferralSource,
  reason: z.optional(text(4000)),
});

export const Period = z.strictObject({ start: DateString, end: z.optional(DateString) });

export const Condition = z.strictObject({
  system: z.literal('icd-10', { error: 'only "icd-10" is supported' }),
  code: z.string().check(z.regex(/^[A-Z]\d{2}(\.\d{1,2})?$/, { error: 'must be an ICD-10 code such as F33.1' })),
  display: z.optional(text(500)),
});

export const PrimaryTreatment = z.strictObject({
  organization: Organization,
  contact: z.optional(Clinician),
  conditions: z.optional(z.array(Condition)),
});

export const ShareClass = z.enum(['attendance', 'focus-areas', 'scores', 'themes', 'risk-flags', 'summary']);
export const ConsentStatus = z.enum(['active', 'declined', 'withdrawn', 'expired']);

export const Consent = z.strictObject({
  consentId: Id,
  status: ConsentStatus,
  decidedOn: DateString,
  expiresOn: z.optional(DateString),
  recipient: z.literal('primary-treatment'),
  share: z.optional(z.array(ShareClass)),
});

export const SessionKind = z.enum(['assessment', 'filming', 'review', 'follow-up']);
export const SessionStatus = z.enum(['planned', 'attended', 'cancelled', 'no-show']);
export const Setting = z.enum(['clinic', 'home', 'video-call']);
export const FocusElement = z.enum([
  'attuning-atmosphere',
  'following-initiative',
  'confirming',
  'naming',
  'waiting-turn-taking',
  'sharing-joy',
  'marking-start-end',
  'introducing-world',
  'positive-leading',
  'friendly-face-tone',
]);
export const Theme = z.enum([
  'feeling-inadequate-or-disconnected',
  'discovering-infant-as-intentional',
  'becoming-agentic-and-interconnected',
  'challenged-by-own-mental-health',
]);
export const CancellationReason = z.enum(['parent-ill', 'infant-ill', 'clinic', 'other']);

export const Clip = z.strictObject({
  clipId: Id,
  recordedAt: DateTimeString,
  seconds: z.number().check(z.int(), z.positive(), z.lte(86_400)),
  contentType: z.string().check(z.regex(/^video\/[a-z0-9.+-]+$/, { error: 'must be a video content type such as video/mp4' })),
  uri: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).check(z.superRefine(fhirString)),
  sha256: z.string().check(z.regex(/^[0-9a-fA-F]{64}$/, { error: 'must be a SHA-256 digest: 64 hexadecimal characters' })),
});

export const Session = z.strictObject({
  sessionId: Id,
  kind: SessionKind,
  status: SessionStatus,
  setting: Setting,
  start: DateTimeString,
  minutes: z.number().check(z.int(), z.positive(), z.lte(1440)),
  clips: z.optional(z.array(Clip)),
  reviewsClips: z.optional(z.array(Id)),
  focusElements: z.optional(z.array(FocusElement)),
  themes: z.optional(z.array(Theme)),
  cancellationReason: z.optional(CancellationReason),
  note: z.optional(z.string().check(z.superRefine(fhirString), z.maxLength(20_000))),
});

const answer = (min: number, max: number) =>
  z
    .number({ error: 'must be a number' })
    .check(
      z.int({ error: 'must be a whole number' }),
      z.gte(min, { error: `must be between ${min} and ${max}` }),
      z.lte(max, { error: `must be between ${min} and ${max}` }),
    );

/**
 * Answers keyed "1".."n"; every item required, no other item allowed. The items share one
 * schema: zod schemas are immutable, and building one per item cost 44 schemas (176 with their
 * checks) at every cold start.
 */
function answers(items: number, min: number, max: number) {
  const item = answer(min, max);
  const shape: Record<string, typeof item> = {};
  for (let i = 1; i <= items; i++) shape[String(i)] = item;
  return z.strictObject(shape);
}

const assessmentBase = {
  assessmentId: Id,
  completedOn: DateString,
  respondent: z.enum(['parent', 'clinician']),
  rater: z.optional(Rater),
};

export const Assessment = z.discriminatedUnion(
  'instrument',
  [
    z.strictObject({ ...assessmentBase, instrument: z.literal('EPDS'), answers: answers(10, 0, 3) }),
    z.strictObject({ ...assessmentBase, instrument: z.literal('PHQ-9'), answers: answers(9, 0, 3) }),
    z.strictObject({ ...assessmentBase, instrument: z.literal('GAD-7'), answers: answers(7, 0, 3) }),
    z.strictObject({ ...assessmentBase, instrument: z.literal('PRFQ'), answers: answers(18, 1, 7) }),
    z.strictObject({
      ...assessmentBase,
      instrument: z.literal('PDI-RF'),
      respondent: z.literal('clinician', { error: 'PDI-RF is rated by a clinician' }),
      rater: Rater,
      score: answer(-1, 9),
    }),
  ],
  { error: 'instrument must be one of EPDS, PHQ-9, GAD-7, PRFQ, PDI-RF' },
);

export const GoalStatus = z.enum(['proposed', 'in-progress', 'achieved', 'not-achieved', 'cancelled']);
export const Goal = z.strictObject({
  goalId: Id,
  description: text(2000),
  startOn: DateString,
  status: GoalStatus,
  statusOn: DateString,
});

export const ClosingReason = z.enum(['completed', 'dropped-out', 'moved', 'referred-on']);
export const Closing = z.strictObject({
  closedOn: DateString,
  reason: ClosingReason,
  clinicianGlobalImprovement: z.optional(z.number().check(z.int(), z.gte(1), z.lte(7))),
  recommendation: z.optional(text(4000)),
});

export const EpisodeStatus = z.enum(['planned', 'active', 'finished', 'cancelled']);

export interface EpisodeSchemaOptions {
  /** Accept synthetic national ids (month + 80). Default true; production deployments set false. */
  allowSyntheticIds?: boolean;
}

const episodeShape = {
  schemaVersion: z
    .string()
    .check(
      z.refine((v: string) => /^1\.\d+$/.test(v), {
        error: (iss) => `schemaVersion ${JSON.stringify(iss.input)} is not supported: this bridge understands episode format 1.x`,
      }),
    )
    .register(z.globalRegistry, { pattern: '^1\\.\\d+$' }),
  episodeId: Id,
  status: EpisodeStatus,
  method: z.literal('marte-meo', { error: 'method must be "marte-meo"' }),
  clinic: Organization,
  referral: Referral,
  period: z.optional(Period),
  therapist: z.optional(Clinician),
  parent: Parent,
  infants: z.array(Infant).check(z.minLength(1, { error: 'an episode needs at least one infant' })),
  primaryTreatment: z.optional(PrimaryTreatment),
  consent: z.optional(Consent),
  sessions: z.optional(z.array(Session)),
  assessments: z.optional(z.array(Assessment)),
  goals: z.optional(z.array(Goal)),
  closing: z.optional(Closing),
};

const BaseEpisode = z.strictObject(episodeShape);
export type Episode = z.infer<typeof BaseEpisode>;
export type Session = z.infer<typeof Session>;
export type Assessment = z.infer<typeof Assessment>;
export type Clinician = z.infer<typeof Clinician>;
export type Rater = z.infer<typeof Rater>;
export type Person = z.infer<typeof Infant>;
export type ParentPerson = z.infer<typeof Parent>;
export type OrganizationInput = z.infer<typeof Organization>;

/** Where cross-field rules report: a zod refinement context, or a plain collector. */
export interface IssueSink {
  addIssue(issue: { code: 'custom'; path: (string | number)[]; message: string }): void;
}
type Ctx = IssueSink;
const add = (ctx: Ctx, path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });

/**
 * Checks that need more than one field. Works on a partial episode too (fields that did not
 * pass their own schema left out), so that one answer can list structural and cross-field
 * problems together.
 */
export function crossFieldRules(e: Partial<Episode>, ctx: Ctx, opts: Required<EpisodeSchemaOptions>): void {
  if (e.status && e.status !== 'planned') {
    if (!e.period) add(ctx, ['period'], `period is required when status is ${e.status}`);
    if (!e.therapist) add(ctx, ['therapist'], `therapist is required when status is ${e.status}`);
  }
  if (e.status === 'finished') {
    if (e.period && !e.period.end) add(ctx, ['period', 'end'], 'period.end is required when status is finished');
    if (!e.closing) add(ctx, ['closing'], 'closing is required when status is finished');
  } else if (e.status && e.closing && e.status !== 'cancelled') {
    add(ctx, ['closing'], `closing is only allowed when status is finished or cancelled, not ${e.status}`);
  }
  if (e.period?.end && e.period.end < e.period.start) add(ctx, ['period', 'end'], 'period.end is before period.start');

  // National ids: synthetic ones only where the deployment allows them; no person twice.
  const people: [string | undefined, (string | number)[]][] = [
    ...(e.parent ? [[e.parent.nationalId, ['parent', 'nationalId']] as [string, (string | number)[]]] : []),
    ...(e.infants ?? []).map((p, i): [string | undefined, (string | number)[]] => [p.nationalId, ['infants', i, 'nationalId']]),
  ];
  const seenIds = new Map<string, string>();
  for (const [id, path] of people) {
    if (!id) continue;
    const info = checkNationalId(id);
    if (typeof info !== 'string' && info.synthetic && !opts.allowSyntheticIds) {
      add(ctx, path, 'synthetic national ids are not accepted by this deployment');
    }
    const prev = seenIds.get(id);
    if (prev) add(ctx, path, `the same national id is already used at ${prev}`);
    else seenIds.set(id, '/' + path.join('/'));
  }

  // Unique ids within the episode.
  const unique = <T>(items: T[] | undefined, key: (t: T) => string, path: string, field: string) => {
    const seen = new Set<string>();
    items?.forEach((it, i) => {
      const k = key(it);
      if (seen.has(k)) add(ctx, [path, i, field], `${field} "${k}" is used more than once in this episode`);
      seen.add(k);
    });
  };
  unique(e.sessions, (s) => s.sessionId, 'sessions', 'sessionId');
  unique(e.assessments, (a) => a.assessmentId, 'assessments', 'assessmentId');
  unique(e.goals, (g) => g.goalId, 'goals', 'goalId');

  // Sessions: clips only on filming sessions, reviews point at earlier clips.
  const clipStart = new Map<string, number>();
  (e.sessions ?? []).forEach((s, i) => {
    const start = Date.parse(s.start);
    if (s.clips?.length && s.kind !== 'filming') add(ctx, ['sessions', i, 'clips'], `clips belong to filming sessions, not ${s.kind}`);
    if (s.clips?.length && s.status !== 'attended') add(ctx, ['sessions', i, 'clips'], `a ${s.status} session cannot have clips`);
    s.clips?.forEach((c, j) => {
      if (clipStart.has(c.clipId)) add(ctx, ['sessions', i, 'clips', j, 'clipId'], `clipId "${c.clipId}" is used more than once in this episode`);
      else clipStart.set(c.clipId, start);
    });
    if (s.reviewsClips?.length && s.kind !== 'review') add(ctx, ['sessions', i, 'reviewsClips'], `reviewsClips belong to review sessions, not ${s.kind}`);
    if (s.cancellationReason && s.status !== 'cancelled')
      add(ctx, ['sessions', i, 'cancellationReason'], `cancellationReason is only allowed on cancelled sessions, not ${s.status}`);
  });
  (e.sessions ?? []).forEach((s, i) => {
    const start = Date.parse(s.start);
    s.reviewsClips?.forEach((clipId, j) => {
      const recorded = clipStart.get(clipId);
      if (recorded === undefined) add(ctx, ['sessions', i, 'reviewsClips', j], `no clip "${clipId}" in this episode's filming sessions`);
      else if (recorded >= start)
        add(ctx, ['sessions', i, 'reviewsClips', j], `clip "${clipId}" is from a filming session that is not earlier than this review`);
    });
  });

  if (e.consent) {
    if (!e.primaryTreatment) add(ctx, ['consent', 'recipient'], 'consent names primary-treatment as recipient, but primaryTreatment is missing');
    if (e.consent.expiresOn && e.consent.expiresOn < e.consent.decidedOn) add(ctx, ['consent', 'expiresOn'], 'expiresOn is before decidedOn');
    const seen = new Set<string>();
    e.consent.share?.forEach((c, i) => {
      if (seen.has(c)) add(ctx, ['consent', 'share', i], `"${c}" is listed more than once`);
      seen.add(c);
    });
  }

  e.goals?.forEach((g, i) => {
    if (g.statusOn < g.startOn) add(ctx, ['goals', i, 'statusOn'], 'statusOn is before startOn');
  });
  if (e.closing?.closedOn && e.period && e.closing.closedOn < e.period.start) add(ctx, ['closing', 'closedOn'], 'closedOn is before period.start');
}

/** The episode schema; `allowSyntheticIds` decides whether test identities are accepted. */
export function episodeSchema(options: EpisodeSchemaOptions = {}) {
  const opts = { allowSyntheticIds: options.allowSyntheticIds ?? true };
  return BaseEpisode.check(z.superRefine((e: Episode, ctx) => crossFieldRules(e, ctx, opts)));
}

/**
 * The fields of a raw episode that pass their own schema, for running the cross-field rules
 * when the episode as a whole does not.
 */
export function validFields(raw: unknown): Partial<Episode> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return {};
  const view: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(episodeShape)) {
    const value = (raw as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const r = (schema as z.ZodMiniType).safeParse(value, { jitless: true });
    if (r.success) view[key] = r.data;
  }
  return view as Partial<Episode>;
}

/** The schema as published (OpenAPI): the structural part; cross-field rules are described in prose. */
export const EpisodeSchema = BaseEpisode;
