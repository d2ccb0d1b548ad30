/**
 * The coordination summary: what the parent's primary treatment team needs to know about a
 * course of video guidance, as a FHIR R4 document (https://hl7.org/fhir/R4/documents.html) and
 * the model the readable page is drawn from (summary-page.ts). Shared contract `sharing.md`:
 *
 * - There is a summary only when the gate is open and the consent shares `summary` (the
 *   contract's "summary" category is the document itself); otherwise an OperationOutcomeError
 *   (403, `forbidden`) says why, and no document, not even an empty one, exists.
 * - The document has one section per other part the consent shares (attendance, focus areas,
 *   themes, scores, risk flags), a section of goals, closing and recommendation (`summary`), and
 *   the therapist's contact, always. Each section has a generated narrative in bokmål or English
 *   and cites its resources, which are entries of the document: the same resources the send to
 *   the primary team's server carries (`primaryContent` in share.ts), so both say the same.
 * - What never crosses is never read here: session notes, clips, item answers, the referral, the
 *   infants' ids and birth dates (only first name and age in months), the parent's phone, the
 *   primary team's conditions.
 *
 * Pure and deterministic: the same episode, time, language and request statuses give the same
 * bytes. `signSummary` / `verifySummary` add and check the bridge's signature (`Bundle.signature`).
 */
import type { Bundle, BundleEntry, Composition, CompositionSection, Reference, Resource, Signature, Task } from '@medplum/fhirtypes';
import canonicalize from 'canonicalize';
import { base64url, CompactSign, compactVerify, createLocalJWKSet, importJWK, type JWK } from 'jose';
import type { Episode } from '../domain/episode.ts';
import { keyedUuid } from '../fhir/bundle-scope.ts';
import { DEV_IDENTITY, type IdentityOptions } from '../fhir/identity.ts';
import { FHIR_JSON } from '../fhir/json.ts';
import { badRequest, issue, OperationOutcomeError, outcome } from '../fhir/outcome.ts';
import { LOINC, SECURITY } from '../fhir/systems.ts';
import { coding } from '../fhir/terminology.ts';
import { bindingProblem } from '../fhir/validate-bindings.ts';
import { INSTRUMENTS, type InstrumentId } from '../instruments/definitions.ts';
import { episodeOutcomes, type InstrumentOutcome } from '../instruments/outcomes.ts';
import { score } from '../instruments/scoring.ts';
import { selfHarmAssessments, selfHarmResolvedOn } from '../mapping/assessments.ts';
import { MappingContext } from '../mapping/context.ts';
import { mapClinicianGlobalImprovement, mapGoals } from '../mapping/goals.ts';
import { base64Utf8 } from '../mapping/sessions.ts';
import { evaluateGate, type ShareClass } from './gate.ts';
import { nextDay, primaryContent, requestIdentifier } from './primary-content.ts';
import { ageInMonths, esc, formatDate, formatNumber, label, type SummaryLang, t } from './summary-text.ts';

export type { SummaryLang } from './summary-text.ts';

export interface SummaryOptions {
  /** The moment the summary is made (ISO 8601 instant with offset): the gate is evaluated then; it is the document's date. */
  at: string;
  /** Language of the narratives and the page: Norwegian bokmål or English. */
  lang: SummaryLang;
  /** The deployment's identifier namespace and pseudonym secret. */
  identity?: IdentityOptions;
  /**
   * The coordination requests as read back from the primary team's server: a Task whose
   * identifier is one of the bridge's requests lends its status (and statusReason,
   * lastModified) to the request in the document. Without it the requests show as `requested`.
   */
  requests?: readonly Task[];
  /**
   * Whether a primary target is configured for an organisation number (the gate's last
   * condition). Default: yes — a summary is viewed, not delivered, so it needs no target;
   * callers that deliver it pass their configuration.
   */
  hasTarget?: (orgNumber: string) => boolean;
}

/** One row of the course of guidance (consent part `attendance`). */
export interface AttendanceRow {
  date: string;
  time: string;
  kind: string;
  setting: string;
  minutes: number;
  status: string;
  cancellationReason?: string;
}

/** One held session with what was worked on (`focus-areas`) or the themes seen (`themes`). */
export interface SessionCodes {
  date: string;
  codes: string[];
}

export interface SeriesPoint {
  date: string;
  value: number;
  band?: string;
}

/** One measure over time (`scores`): totals with bands, PRFQ subscale means, PDI-RF. */
export interface ScoreSeries {
  instrument: InstrumentId;
  measure: string;
  points: SeriesPoint[];
  /** Lowest and highest possible value. */
  range: [number, number];
  /** Band edges (lowest value of each band), for totals that have bands. */
  bands?: { from: number; band: string }[];
  /** First, latest, change and reliable change, where the measure was given twice or more. */
  outcome?: InstrumentOutcome;
}

/** A positive self-harm item and its follow-up request (`risk-flags`). */
export interface RiskRow {
  instrument: InstrumentId;
  item: string;
  date: string;
  /** When the flag stopped being current, if it has. */
  resolvedOn?: string;
  due: string;
  requestStatus: Task['status'];
  requestStatusReason?: string;
  requestLastModified?: string;
}

/** Everything the summary says, built from the consented parts only (absent: not consented). */
export interface SummaryModel {
  lang: SummaryLang;
  at: string;
  title: string;
  parent: { name: string; birthDate: string };
  clinic: { name: string };
  primary: { name: string };
  therapist?: { name: string; profession: string; phone?: string };
  episode: { status: Episode['status']; start?: string; end?: string };
  infants: { given: string; months: number }[];
  attendance?: AttendanceRow[];
  focus?: SessionCodes[];
  themes?: SessionCodes[];
  scores?: ScoreSeries[];
  risks?: RiskRow[];
  closing: {
    goals: { description: string; status: string; statusOn: string; startOn: string }[];
    closedOn?: string;
    reason?: string;
    cgiI?: number;
    recommendation?: string;
  };
}

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** The OperationOutcomeError of a refused summary. */
function refused(text: string): OperationOutcomeError {
  return new OperationOutcomeError(outcome([issue('forbidden', `No coordination summary: ${text}.`)]), 403);
}

/** The parts of the consent the summary may show; throws when there is no summary at all. */
function consentedParts(e: Episode, opts: SummaryOptions): ReadonlySet<ShareClass> {
  if (!INSTANT.test(opts.at) || Number.isNaN(Date.parse(opts.at)))
    throw badRequest('at must be an ISO 8601 date-time with seconds and an offset, e.g. 2026-05-10T10:00:00Z');
  if (opts.lang !== 'nb' && opts.lang !== 'en') throw badRequest('lang must be "nb" or "en"');
  const gate = evaluateGate(e, opts.at, opts.hasTarget ?? (() => true));
  if (!gate.open) throw refused(gate.text);
  if (!gate.share.has('summary')) throw refused('the consent does not include the coordination summary');
  return gate.share;
}

const byStart = <T extends { start: string; sessionId: string }>(a: T, b: T) =>
  Date.parse(a.start) - Date.parse(b.start) || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0);

const fullName = (given: readonly string[], family: string) => [...given, family].join(' ');

/** Every score series of the episode, in instrument order, each with its outcome where there is one. */
function scoreSeries(e: Episode): ScoreSeries[] {
  const outcomes = episodeOutcomes(e);
  const series = new Map<string, ScoreSeries>();
  const ordered = [...(e.assessments ?? [])].sort((a, b) =>
    a.completedOn < b.completedOn ? -1 : a.completedOn > b.completedOn ? 1 : a.assessmentId < b.assessmentId ? -1 : 1,
  );
  const push = (instrument: InstrumentId, measure: string, range: [number, number], p: SeriesPoint, bands?: ScoreSeries['bands']) => {
    const key = `${instrument}|${measure}`;
    let s = series.get(key);
    if (!s) series.set(key, (s = { instrument, measure, points: [], range, ...(bands ? { bands } : {}) }));
    s.points.push(p);
  };
  for (const a of ordered) {
    const def = INSTRUMENTS[a.instrument];
    const r = score(a.instrument, 'answers' in a ? a.answers : undefined, 'score' in a ? a.score : undefined);
    if (r.total && def.total) {
      const n = def.items.length;
      push(
        a.instrument,
        'total',
        [n * 0, n * (def.max - def.min)],
        { date: a.completedOn, value: r.total.value, band: r.total.band },
        def.total.bands.map((b) => ({ ...b })),
      );
    }
    for (const sub of r.subscales ?? []) push(a.instrument, sub.code, [def.min, def.max], { date: a.completedOn, value: sub.value });
    if (r.rating && def.rating) push(a.instrument, r.rating.code, [def.rating.min, def.rating.max], { date: a.completedOn, value: r.rating.value });
  }
  const order = Object.keys(INSTRUMENTS);
  return [...series.values()]
    .sort((x, y) => order.indexOf(x.instrument) - order.indexOf(y.instrument))
    .map((s) => {
      const o = outcomes.find((x) => x.instrument === s.instrument && x.measure === s.measure);
      return o ? { ...s, outcome: o } : s;
    });
}

/** A Task status R4 knows (its required ValueSet's expansion, the one the validator checks against). */
const isTaskStatus = (status: unknown): boolean =>
  typeof status === 'string' && bindingProblem('http://hl7.org/fhir/ValueSet/task-status', 'code', status) === undefined;

/** The request as read back from the primary team's server, matched by identifier. */
function readBack(requests: readonly Task[] | undefined, identifier: { system?: string; value?: string }): Task | undefined {
  return requests?.find((t) => isTaskStatus(t.status) && (t.identifier ?? []).some((i) => i.system === identifier.system && i.value === identifier.value));
}

/** What the summary says (see {@link SummaryModel}); throws the OperationOutcomeError of a refused summary. */
export function summaryModel(e: Episode, opts: SummaryOptions): SummaryModel {
  const share = consentedParts(e, opts);
  const lang = opts.lang;
  const identity = opts.identity ?? DEV_IDENTITY;
  const today = opts.at.slice(0, 10);
  const primary = (e.primaryTreatment as NonNullable<Episode['primaryTreatment']>).organization;
  const sessions = [...(e.sessions ?? [])].sort(byStart);
  const attended = sessions.filter((s) => s.status === 'attended');
  const model: SummaryModel = {
    lang,
    at: opts.at,
    title: t('title', lang),
    parent: { name: fullName(e.parent.given, e.parent.family), birthDate: e.parent.birthDate },
    clinic: { name: e.clinic.name },
    primary: { name: primary.name },
    ...(e.therapist
      ? {
          therapist: {
            name: fullName(e.therapist.given, e.therapist.family),
            profession: e.therapist.profession,
            ...(e.therapist.phone ? { phone: e.therapist.phone } : {}),
          },
        }
      : {}),
    episode: { status: e.status, ...(e.period ? { start: e.period.start, ...(e.period.end ? { end: e.period.end } : {}) } : {}) },
    // Infants by first name and age in months only (sharing contract).
    infants: e.infants.map((i) => ({ given: i.given[0] as string, months: ageInMonths(i.birthDate, today) })),
    closing: {
      goals: (e.goals ?? []).map((g) => ({ description: g.description, status: g.status, statusOn: g.statusOn, startOn: g.startOn })),
      ...(e.closing
        ? {
            closedOn: e.closing.closedOn,
            reason: e.closing.reason,
            ...(e.closing.clinicianGlobalImprovement !== undefined ? { cgiI: e.closing.clinicianGlobalImprovement } : {}),
            ...(e.closing.recommendation ? { recommendation: e.closing.recommendation } : {}),
          }
        : {}),
    },
  };
  if (share.has('attendance')) {
    model.attendance = sessions.map((s) => ({
      date: s.start.slice(0, 10),
      time: s.start.slice(11, 16),
      kind: s.kind,
      setting: s.setting,
      minutes: s.minutes,
      status: s.status,
      ...(s.cancellationReason ? { cancellationReason: s.cancellationReason } : {}),
    }));
  }
  if (share.has('focus-areas'))
    model.focus = attended.filter((s) => s.focusElements?.length).map((s) => ({ date: s.start.slice(0, 10), codes: [...(s.focusElements ?? [])] }));
  if (share.has('themes')) model.themes = attended.filter((s) => s.themes?.length).map((s) => ({ date: s.start.slice(0, 10), codes: [...(s.themes ?? [])] }));
  if (share.has('scores')) model.scores = scoreSeries(e);
  if (share.has('risk-flags')) {
    const scope = new MappingContext(e, identity);
    model.risks = selfHarmAssessments(e).map((a) => {
      const back = readBack(opts.requests, requestIdentifier(scope, 'risk-follow-up', a.assessmentId));
      const resolvedOn = selfHarmResolvedOn(e, a);
      return {
        instrument: a.instrument,
        item: INSTRUMENTS[a.instrument].selfHarmItem as string,
        date: a.completedOn,
        ...(resolvedOn ? { resolvedOn } : {}),
        due: nextDay(a.completedOn),
        requestStatus: back?.status ?? 'requested',
        ...(back?.statusReason?.text ? { requestStatusReason: back.statusReason.text } : {}),
        ...(back?.lastModified ? { requestLastModified: back.lastModified } : {}),
      };
    });
  }
  return model;
}

// ---------------------------------------------------------------------------------------------
// Narratives (XHTML, https://hl7.org/fhir/R4/narrative.html: basic HTML only, every text escaped)

const XHTML = 'http://www.w3.org/1999/xhtml';
const div = (inner: string) => `<div xmlns="${XHTML}">${inner}</div>`;
const p = (text: string) => `<p>${text}</p>`;
function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** Name of a measure: `EPDS`, `PRFQ – Interest and curiosity`. */
export function measureName(s: { instrument: string; measure: string }, lang: SummaryLang): string {
  return s.measure === 'total'
    ? s.instrument
    : s.instrument === 'PDI-RF'
      ? label('measure', s.measure, lang)
      : `${s.instrument} – ${label('measure', s.measure, lang)}`;
}

/** The sentence about one measure's change: first → latest, change, RCI, classification. */
export function changeSentence(o: InstrumentOutcome, lang: SummaryLang): string {
  const n = (x: number) => formatNumber(x, lang);
  const rci = o.rci !== undefined ? (lang === 'nb' ? `, RCI ${n(o.rci)}` : `, RCI ${n(o.rci)}`) : '';
  return lang === 'nb'
    ? `${n(o.first.value)} (${formatDate(o.first.date, lang)}) → ${n(o.latest.value)} (${formatDate(o.latest.date, lang)}), endring ${n(o.change)}${rci}: ${label('classification', o.classification, lang)}.`
    : `${n(o.first.value)} (${formatDate(o.first.date, lang)}) → ${n(o.latest.value)} (${formatDate(o.latest.date, lang)}), change ${n(o.change)}${rci}: ${label('classification', o.classification, lang)}.`;
}

export function attendanceCounts(rows: readonly AttendanceRow[]): Record<string, number> {
  const counts: Record<string, number> = { attended: 0, cancelled: 0, 'no-show': 0, planned: 0 };
  for (const r of rows) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

/** The one-line count of sessions by attendance, in the summary's language (narrative and page share it). */
export function attendanceLead(lang: SummaryModel['lang'], rows: readonly AttendanceRow[]): string {
  const c = attendanceCounts(rows);
  return lang === 'nb'
    ? `${rows.length} timer: ${c.attended} møtt, ${c.cancelled} avlyst, ${c['no-show']} ikke møtt, ${c.planned} planlagt.`
    : `${rows.length} sessions: ${c.attended} attended, ${c.cancelled} cancelled, ${c['no-show']} did not attend, ${c.planned} planned.`;
}

function attendanceNarrative(m: SummaryModel, rows: AttendanceRow[]): string {
  const { lang } = m;
  const lead = attendanceLead(lang, rows);
  return div(
    p(esc(lead)) +
      table(
        [t('date', lang), t('kind', lang), t('place', lang), t('minutes', lang), t('status', lang)],
        rows.map((r) => [
          `${formatDate(r.date, lang)} ${r.time}`,
          label('kind', r.kind, lang),
          label('setting', r.setting, lang),
          String(r.minutes),
          label('attendance', r.status, lang) + (r.cancellationReason ? ` (${label('cancellation', r.cancellationReason, lang)})` : ''),
        ]),
      ),
  );
}

function codesNarrative(m: SummaryModel, rows: SessionCodes[], group: 'focus' | 'theme', none: string, head: string): string {
  const { lang } = m;
  if (!rows.length) return div(p(esc(none)));
  return div(
    table(
      [t('date', lang), head],
      rows.map((r) => [formatDate(r.date, lang), r.codes.map((c) => label(group, c, lang)).join('; ')]),
    ),
  );
}

function scoresNarrative(m: SummaryModel, series: ScoreSeries[]): string {
  const { lang } = m;
  if (!series.length) return div(p(esc(lang === 'nb' ? 'Ingen skåringer er registrert.' : 'No scores are recorded.')));
  const parts: string[] = [];
  for (const s of series) {
    parts.push(p(`<b>${esc(measureName(s, lang))}</b>`));
    parts.push(
      table(
        s.bands ? [t('date', lang), t('score', lang), t('band', lang)] : [t('date', lang), t('score', lang)],
        s.points.map((pt) => [formatDate(pt.date, lang), formatNumber(pt.value, lang), ...(s.bands ? [label('band', pt.band ?? '', lang)] : [])]),
      ),
    );
    if (s.outcome) parts.push(p(esc(`${t('change', lang)}: ${changeSentence(s.outcome, lang)}`)));
  }
  return div(parts.join(''));
}

function riskNarrative(m: SummaryModel, risks: RiskRow[]): string {
  const { lang } = m;
  if (!risks.length) return div(p(esc(lang === 'nb' ? 'Ingen selvskadeledd er besvart over null.' : 'No self-harm item was answered above zero.')));
  const items = risks.map((r) => {
    const flag =
      lang === 'nb'
        ? `${r.instrument} ${formatDate(r.date, lang)}: selvskadeleddet (ledd ${r.item}) er besvart over null. Flagget er ${r.resolvedOn ? `ikke lenger aktivt (fra ${formatDate(r.resolvedOn, lang)})` : 'aktivt'}.`
        : `${r.instrument} of ${formatDate(r.date, lang)}: the self-harm item (item ${r.item}) was answered above zero. The flag is ${r.resolvedOn ? `no longer active (since ${formatDate(r.resolvedOn, lang)})` : 'active'}.`;
    const req =
      lang === 'nb'
        ? ` Hastende forespørsel om oppfølging til ${m.primary.name}, frist ${formatDate(r.due, lang)}: ${label('taskStatus', r.requestStatus, lang)}${r.requestLastModified ? ` (${formatDate(r.requestLastModified, lang)})` : ''}${r.requestStatusReason ? ` – ${r.requestStatusReason}` : ''}.`
        : ` Urgent request to ${m.primary.name} to follow it up, due ${formatDate(r.due, lang)}: ${label('taskStatus', r.requestStatus, lang)}${r.requestLastModified ? ` (${formatDate(r.requestLastModified, lang)})` : ''}${r.requestStatusReason ? ` – ${r.requestStatusReason}` : ''}.`;
    return `<li>${esc(flag + req)}</li>`;
  });
  return div(`<ul>${items.join('')}</ul>`);
}

/** The closing sentence: date, reason, CGI-I. */
export function closingSentence(m: SummaryModel): string | undefined {
  const { lang } = m;
  const c = m.closing;
  if (!c.closedOn) return undefined;
  const cgi =
    c.cgiI !== undefined
      ? lang === 'nb'
        ? ` Klinisk helhetsinntrykk av endring (CGI-I): ${c.cgiI}, ${label('cgi', String(c.cgiI), lang)}.`
        : ` Clinical Global Impression – Improvement (CGI-I): ${c.cgiI}, ${label('cgi', String(c.cgiI), lang)}.`
      : '';
  return lang === 'nb'
    ? `Veiledningen ble avsluttet ${formatDate(c.closedOn, lang)} (${label('closingReason', c.reason ?? '', lang)}).${cgi}`
    : `Guidance ended on ${formatDate(c.closedOn, lang)} (${label('closingReason', c.reason ?? '', lang)}).${cgi}`;
}

function summaryNarrative(m: SummaryModel): string {
  const { lang } = m;
  const c = m.closing;
  const parts: string[] = [];
  if (c.goals.length) {
    parts.push(
      table(
        [t('goal', lang), t('status', lang)],
        c.goals.map((g) => [g.description, `${label('goalStatus', g.status, lang)} (${formatDate(g.statusOn, lang)})`]),
      ),
    );
  } else {
    parts.push(p(esc(lang === 'nb' ? 'Ingen mål er registrert.' : 'No goals are recorded.')));
  }
  const closing = closingSentence(m);
  parts.push(p(esc(closing ?? (lang === 'nb' ? 'Veiledningen er ikke avsluttet.' : 'Guidance has not ended.'))));
  if (c.recommendation) parts.push(p(`<b>${esc(lang === 'nb' ? 'Anbefaling' : 'Recommendation')}:</b> ${esc(c.recommendation)}`));
  return div(parts.join(''));
}

/** The sentence about the guidance itself: where, when, how it stands, the infants. */
export function courseSentence(m: SummaryModel): string {
  const { lang } = m;
  const period = m.episode.start
    ? m.episode.end
      ? lang === 'nb'
        ? ` fra ${formatDate(m.episode.start, lang)} til ${formatDate(m.episode.end, lang)}`
        : ` from ${formatDate(m.episode.start, lang)} to ${formatDate(m.episode.end, lang)}`
      : lang === 'nb'
        ? ` fra ${formatDate(m.episode.start, lang)}`
        : ` from ${formatDate(m.episode.start, lang)}`
    : '';
  const infants = m.infants
    .map((i) => (lang === 'nb' ? `${i.given} (${i.months} måneder)` : `${i.given} (${i.months} months)`))
    .join(lang === 'nb' ? ' og ' : ' and ');
  return lang === 'nb'
    ? `Videoveiledning (Marte Meo) for ${m.parent.name} og ${infants} ved ${m.clinic.name}${period}; status: ${label('episodeStatus', m.episode.status, lang)}.`
    : `Video guidance (Marte Meo) for ${m.parent.name} and ${infants} at ${m.clinic.name}${period}; status: ${label('episodeStatus', m.episode.status, lang)}.`;
}

/** The sentence saying whom to call. */
export function contactSentence(m: SummaryModel): string {
  const { lang } = m;
  if (!m.therapist) return lang === 'nb' ? `Kontakt ${m.clinic.name}.` : `Contact ${m.clinic.name}.`;
  const th = m.therapist;
  const phone = th.phone ? (lang === 'nb' ? `, telefon ${th.phone}` : `, phone ${th.phone}`) : '';
  return lang === 'nb'
    ? `Kontakt: ${th.name}, ${label('profession', th.profession, lang)}, ${m.clinic.name}${phone}.`
    : `Contact: ${th.name}, ${label('profession', th.profession, lang)}, ${m.clinic.name}${phone}.`;
}

function contactNarrative(m: SummaryModel): string {
  return div(p(esc(courseSentence(m))) + p(esc(contactSentence(m))));
}

// ---------------------------------------------------------------------------------------------
// The document

const SUMMARY_TYPE = { system: LOINC, code: '34133-9', display: 'Summary of episode note' };
const ref = (fullUrl: string | undefined): Reference => ({ reference: fullUrl as string });
const hasExtension = (r: Resource, id: string) => ((r as { extension?: { url: string }[] }).extension ?? []).some((x) => x.url.endsWith(`/${id}`));

/**
 * Builds the coordination summary of a parsed episode as a FHIR R4 `document` Bundle: the
 * Composition (LOINC 34133-9 "Summary of episode note", status final, confidentiality R) first,
 * then every resource its sections cite, and those the cited ones refer to. Throws the
 * OperationOutcomeError (403) of a refused summary, or (400) of bad options.
 */
export function buildSummary(e: Episode, opts: SummaryOptions): Bundle {
  const m = summaryModel(e, opts);
  const share = consentedParts(e, opts);
  const identity = opts.identity ?? DEV_IDENTITY;
  const { ctx, parent, clinic, therapist, episodeOfCare } = primaryContent(e, share, identity);
  const riskRequest = (tk: Task) => tk.code?.coding?.[0]?.code === 'risk-follow-up';
  const cited = ctx.list().filter((x) => {
    const r = x.resource as Resource;
    // The document cites the risk follow-up requests; the Consent and the other requests belong to the send.
    return r.resourceType !== 'Consent' && (r.resourceType !== 'Task' || riskRequest(r as Task));
  });
  const of = (pred: (r: Resource) => boolean) => cited.filter((x) => pred(x.resource as Resource)).map((x) => ref(x.fullUrl));

  const sections: CompositionSection[] = [];
  const section = (id: string, title: string, text: string, entry: Reference[], code?: ShareClass) =>
    sections.push({
      id,
      title,
      ...(code ? { code: { coding: [coding('consent-share-class', code)] } } : {}),
      text: { status: 'generated', div: text },
      ...(entry.length ? { entry } : {}),
    });
  if (m.attendance)
    section(
      'attendance',
      t('attendance', m.lang),
      attendanceNarrative(m, m.attendance),
      of((r) => r.resourceType === 'Encounter'),
      'attendance',
    );
  if (m.focus) {
    const none = m.lang === 'nb' ? 'Ingen Marte Meo-elementer er registrert.' : 'No Marte Meo elements are recorded.';
    section(
      'focus-areas',
      t('focus', m.lang),
      codesNarrative(m, m.focus, 'focus', none, t('elements', m.lang)),
      of((r) => r.resourceType === 'Procedure' && hasExtension(r, 'imh-focus-element')),
      'focus-areas',
    );
  }
  if (m.themes) {
    const none = m.lang === 'nb' ? 'Ingen temaer er registrert.' : 'No themes are recorded.';
    section(
      'themes',
      t('themes', m.lang),
      codesNarrative(m, m.themes, 'theme', none, t('theme', m.lang)),
      of((r) => r.resourceType === 'Procedure' && hasExtension(r, 'imh-change-theme')),
      'themes',
    );
  }
  if (m.scores)
    section(
      'scores',
      t('scores', m.lang),
      scoresNarrative(m, m.scores),
      of((r) => r.resourceType === 'Observation'),
      'scores',
    );
  if (m.risks)
    section(
      'risk-flags',
      t('risk', m.lang),
      riskNarrative(m, m.risks),
      of((r) => r.resourceType === 'Flag' || r.resourceType === 'Task'),
      'risk-flags',
    );

  // Goals and the clinician's global improvement rating: part `summary`, which every summary has.
  const before = new Set(ctx.list().map((x) => x.fullUrl));
  mapGoals(ctx, parent, therapist?.practitioner);
  mapClinicianGlobalImprovement(ctx, parent, therapist?.practitioner);
  const closing = ctx.list().filter((x) => !before.has(x.fullUrl));
  section(
    'summary',
    t('summary', m.lang),
    summaryNarrative(m),
    closing.map((x) => ref(x.fullUrl)),
    'summary',
  );
  const contact = [therapist?.role, therapist?.practitioner, clinic].filter((r): r is Reference => !!r);
  section('contact', t('contact', m.lang), contactNarrative(m), contact);

  // Request statuses as the primary team set them.
  const entries: BundleEntry[] = [...cited, ...closing].map((x) => {
    const resource = structuredClone(x.resource) as Resource;
    if (resource.resourceType === 'Task') {
      const back = readBack(opts.requests, resource.identifier?.[0] ?? {});
      if (back) {
        resource.status = back.status;
        if (back.statusReason) resource.statusReason = structuredClone(back.statusReason);
        if (back.lastModified) resource.lastModified = back.lastModified;
      }
    }
    return { fullUrl: x.fullUrl, resource };
  });

  const compositionId = ctx.episodeId('summary');
  const composition: Composition = {
    resourceType: 'Composition',
    meta: { security: [{ ...SECURITY.restricted }, { ...SECURITY.psychiatry }] },
    language: m.lang,
    identifier: compositionId,
    status: 'final',
    type: { coding: [{ ...SUMMARY_TYPE }] },
    subject: parent,
    date: opts.at,
    author: therapist ? [therapist.role ?? therapist.practitioner, clinic] : [clinic],
    title: m.title,
    confidentiality: 'R',
    event: [
      {
        period: { ...(e.period ? { start: e.period.start, ...(e.period.end ? { end: e.period.end } : {}) } : { start: opts.at.slice(0, 10) }) },
        detail: [episodeOfCare],
      },
    ],
    custodian: clinic,
    section: sections,
  };
  const key = `summary|${e.clinic.orgNumber}|${e.episodeId}|${opts.at}|${m.lang}`;
  return {
    resourceType: 'Bundle',
    language: m.lang,
    identifier: { system: 'urn:ietf:rfc:3986', value: `urn:uuid:${keyedUuid(identity, key)}` },
    type: 'document',
    timestamp: opts.at,
    entry: [{ fullUrl: ctx.fullUrl('Composition', compositionId), resource: composition }, ...entries],
  };
}

// ---------------------------------------------------------------------------------------------
// Signature (https://hl7.org/fhir/R4/datatypes.html#Signature)

/** ISO/ASTM E1762-95 signature type: author's signature. */
export const AUTHOR_SIGNATURE = { system: 'urn:iso-astm:E1762-95:2013', code: '1.2.840.10065.1.12.1.1', display: "Author's Signature" };
/** What is signed: the Bundle as FHIR JSON, canonicalised (RFC 8785, the JSON canonicalisation FHIR names). */
export const SIGNED_FORMAT = `${FHIR_JSON};canonicalization=http://hl7.org/fhir/canonicalization/json`;

/**
 * The bytes that are signed: the Bundle without `signature`, `id` and `meta` (a server that
 * stores the Bundle may assign those), canonicalised with RFC 8785 (JSON Canonicalization
 * Scheme: sorted keys, no whitespace, fixed number form).
 */
export function signedContent(bundle: Bundle): Uint8Array {
  const { signature: _s, id: _i, meta: _m, ...rest } = bundle;
  return new TextEncoder().encode(canonicalize(rest) as string);
}

/** The algorithm a key signs with: its `alg`, else the one its type and curve imply. */
function algOf(jwk: JWK): string {
  if (jwk.alg) return jwk.alg;
  if (jwk.kty === 'EC') return ({ 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' } as Record<string, string>)[jwk.crv as string] ?? 'ES384';
  if (jwk.kty === 'OKP') return 'EdDSA';
  return 'RS384';
}

/**
 * Signs a summary document: returns a copy with `Bundle.signature` (type author's signature,
 * `when` = the document's timestamp, `who` = the clinic's Organization entry, sigFormat
 * application/jose, targetFormat {@link SIGNED_FORMAT}). `data` is the base64 of a **detached**
 * compact JWS (RFC 7515 Appendix F, `header..signature`) over {@link signedContent}: the payload
 * is the document itself, so it is not repeated inside the signature. The first key of the set
 * signs; its `kid` is in the JWS header, so a verifier picks the key from the bridge's JWKS
 * (/.well-known/jwks.json). Deterministic for deterministic algorithms (RS384); ECDSA signatures differ per run.
 */
export async function signSummary(bundle: Bundle, privateJwks: { keys: readonly JWK[] }): Promise<Bundle> {
  const jwk = privateJwks.keys[0];
  if (!jwk) throw new Error('no signing key');
  const composition = bundle.entry?.[0]?.resource as Composition | undefined;
  if (bundle.type !== 'document' || composition?.resourceType !== 'Composition' || !bundle.timestamp)
    throw badRequest('only a FHIR document Bundle can be signed');
  const custodian = composition.custodian?.reference;
  const alg = algOf(jwk);
  const key = await importJWK(jwk, alg);
  const { signature: _old, ...unsigned } = bundle;
  const jws = await new CompactSign(signedContent(unsigned)).setProtectedHeader({ alg, ...(jwk.kid ? { kid: jwk.kid } : {}), cty: FHIR_JSON }).sign(key);
  const [header, , sig] = jws.split('.');
  const signature: Signature = {
    type: [{ ...AUTHOR_SIGNATURE }],
    when: bundle.timestamp,
    who: { reference: custodian as string },
    targetFormat: SIGNED_FORMAT,
    sigFormat: 'application/jose',
    data: base64Utf8(`${header}..${sig}`),
  };
  return { ...unsigned, signature };
}

/**
 * Verifies a signed summary against a public JWKS (the bridge's /.well-known/jwks.json): the
 * detached JWS in `Bundle.signature.data` must verify over the document as it is now
 * ({@link signedContent}). Returns false for a changed document, a missing or malformed
 * signature, or a key not in the set.
 */
export async function verifySummary(bundle: Bundle, publicJwks: { keys: readonly JWK[] }): Promise<boolean> {
  const data = bundle.signature?.data;
  if (!data || bundle.signature?.sigFormat !== 'application/jose') return false;
  let parts: string[];
  try {
    // A compact JWS is ASCII, so atob's Latin-1 string is the JWS itself.
    parts = atob(data).split('.');
  } catch {
    return false;
  }
  if (parts.length !== 3 || parts[1] !== '') return false;
  try {
    await compactVerify(`${parts[0]}.${base64url.encode(signedContent(bundle))}.${parts[2]}`, createLocalJWKSet({ keys: [...publicJwks.keys] as JWK[] }));
    return true;
  } catch {
    return false;
  }
}
