/**
 * What may cross to the parent's primary treatment team, as FHIR resources in one scope: the
 * parent, the clinic, the therapist, the episode, the Consent; attendance, focus areas, themes,
 * scores with their change over time and risk flags as the consent's `share` says; the
 * coordination requests; and the coordination summary as a DocumentReference. Built here once and
 * used by both the send to the primary team's server (share.ts) and the coordination summary
 * document (summary.ts), so both carry the same resources and neither depends on the other's module.
 * Whether anything crosses at all is the gate's decision (gate.ts), taken in share.ts.
 */
import { createHash } from 'node:crypto';
import type { Bundle, DocumentReference, EpisodeOfCare, Observation, Patient, Task } from '@medplum/fhirtypes';
import type { Episode } from '../domain/episode.ts';
import type { Ref } from '../fhir/bundle-scope.ts';
import type { IdentityOptions } from '../fhir/identity.ts';
import { FHIR_JSON } from '../fhir/json.ts';
import { LOINC, UCUM } from '../fhir/systems.ts';
import { coding, translateTo } from '../fhir/terminology.ts';
import { INSTRUMENTS } from '../instruments/definitions.ts';
import { classificationCoding, episodeOutcomes } from '../instruments/outcomes.ts';
import { addScores, selfHarmFlagRef } from '../instruments/score-resources.ts';
import { round2 } from '../instruments/scoring.ts';
import { selfHarmAssessments, selfHarmResolvedOn } from '../mapping/assessments.ts';
import { MappingContext } from '../mapping/context.ts';
import { mapConsent } from '../mapping/episode-of-care.ts';
import { mapClinician, mapOrganization, nationalIdentifier } from '../mapping/people.ts';
import { base64Utf8, focusElementExtensions, sessionEncounter, sessionProcedure, themeExtensions } from '../mapping/sessions.ts';
import type { ShareClass } from './gate.ts';

/** The occasions of coordination requests (CodeSystem coordination-request). */
export type RequestOccasion = 'guidance-started' | 'risk-follow-up' | 'guidance-ended';

/** Identifier of a coordination request of the episode: one per episode and occasion. */
export function requestIdentifier(ctx: MappingContext, occasion: RequestOccasion, assessmentId?: string) {
  return ctx.episodeId('coordination-request', occasion, ...(assessmentId ? [assessmentId] : []));
}

/** The next calendar day of an ISO date (`2026-05-04` → `2026-05-05`). */
export function nextDay(date: string): string {
  return new Date(Date.parse(`${date.slice(0, 10)}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
}

/** The resources the open gate lets cross, and the references other builders (the coordination summary) need. */
export interface PrimaryContent {
  ctx: MappingContext;
  parent: Ref;
  clinic: Ref;
  primaryOrg: Ref;
  therapist?: { practitioner: Ref; role?: Ref };
  episodeOfCare: Ref;
}

/**
 * Everything the open gate lets cross, as entries of one scope: the parent, the clinic, the
 * therapist, the episode, the Consent; attendance, focus areas, themes, scores with their change
 * over time and risk flags as `share` says; the coordination requests. Shared by the send to the
 * primary team's server and the coordination summary document, so both carry the same resources.
 */
export function primaryContent(e: Episode, share: ReadonlySet<ShareClass>, identity: IdentityOptions, summary?: Bundle): PrimaryContent {
  const ctx = new MappingContext(e, identity);
  const has = (c: ShareClass) => share.has(c);

  // The parent: national id, name, birth date — what the receiver needs to file it with the right person.
  const parentId = nationalIdentifier(e.parent.nationalId);
  const parent = ctx.add<Patient>(
    {
      resourceType: 'Patient',
      identifier: [parentId],
      name: [{ use: 'official', family: e.parent.family, given: [...e.parent.given] }],
      birthDate: e.parent.birthDate,
    },
    { identifier: parentId, clinical: true },
  );
  const clinic = mapOrganization(ctx, e.clinic);
  // The gate is open only with a primary organisation.
  const primaryOrg = mapOrganization(ctx, (e.primaryTreatment as NonNullable<Episode['primaryTreatment']>).organization);
  const therapist = e.therapist ? mapClinician(ctx, e.therapist, clinic, e.clinic.orgNumber) : undefined;

  const episodeId = ctx.episodeId('episode');
  const episodeOfCare = ctx.add<EpisodeOfCare>(
    {
      resourceType: 'EpisodeOfCare',
      identifier: [episodeId],
      status: translateTo('episode-status-to-fhir', e.status, 'http://hl7.org/fhir/episode-of-care-status').code as EpisodeOfCare['status'],
      type: [{ coding: [coding('video-guidance-method', e.method)] }],
      patient: parent,
      managingOrganization: clinic,
      period: e.period ? { start: e.period.start, ...(e.period.end ? { end: e.period.end } : {}) } : undefined,
      careManager: therapist?.practitioner,
    },
    { identifier: episodeId, clinical: true },
  );
  mapConsent(ctx, parent, clinic, primaryOrg);

  // Sessions: attendance as Encounters; focus areas and themes on a Procedure per held session.
  const encounters = new Map<string, Ref>();
  for (const s of e.sessions ?? []) {
    if (!has('attendance')) break;
    const identifier = ctx.episodeId('session', s.sessionId);
    encounters.set(s.sessionId, ctx.add(sessionEncounter(s, identifier, parent, episodeOfCare), { identifier, clinical: true }));
  }
  for (const s of e.sessions ?? []) {
    if (s.status !== 'attended') continue;
    const extension = [...(has('focus-areas') ? focusElementExtensions(s) : []), ...(has('themes') ? themeExtensions(s) : [])];
    if (!extension.length) continue;
    const identifier = ctx.episodeId('procedure', s.sessionId);
    ctx.add(sessionProcedure(s, identifier, e.method, parent, encounters.get(s.sessionId), extension), { identifier, clinical: true });
  }

  // Scores (totals, subscales, ratings with bands) and risk flags, never the answers behind them.
  if (has('scores') || has('risk-flags')) {
    for (const a of e.assessments ?? []) {
      addScores(ctx, {
        instrument: a.instrument,
        assessmentId: a.assessmentId,
        answers: 'answers' in a ? a.answers : undefined,
        rating: 'score' in a ? a.score : undefined,
        subject: parent,
        date: a.completedOn,
        episodeOfCare,
        selfHarmResolvedOn: selfHarmResolvedOn(e, a),
        include: { scores: has('scores'), flag: has('risk-flags') },
      });
    }
  }
  if (has('scores')) addChangeOverTime(ctx, e, parent, episodeOfCare);

  // Coordination requests: each once per episode and occasion, created only when absent.
  const contact = e.therapist
    ? `Contact: ${[...e.therapist.given, e.therapist.family].join(' ')}${e.therapist.phone ? `, ${e.therapist.phone}` : ''}, ${e.clinic.name ?? e.clinic.orgNumber}.`
    : `Contact: ${e.clinic.name ?? e.clinic.orgNumber}.`;
  const request = (occasion: RequestOccasion, t: Partial<Task>, assessmentId?: string) => {
    const identifier = requestIdentifier(ctx, occasion, assessmentId);
    ctx.add<Task>(
      {
        resourceType: 'Task',
        identifier: [identifier],
        status: 'requested',
        intent: 'order',
        priority: 'routine',
        code: { coding: [coding('coordination-request', occasion)] },
        for: parent,
        requester: therapist?.role ?? clinic,
        owner: primaryOrg,
        ...t,
      } as Task,
      { identifier, clinical: true },
    );
  };
  if (e.status === 'active') {
    request('guidance-started', {
      description: `Video guidance (Marte Meo) for the parent has started at the infant mental health clinic. ${contact}`,
      focus: episodeOfCare,
      authoredOn: e.period?.start,
    });
  }
  if (has('risk-flags')) {
    for (const a of selfHarmAssessments(e) ?? []) {
      const item = INSTRUMENTS[a.instrument].selfHarmItem;
      request(
        'risk-follow-up',
        {
          priority: 'urgent',
          description: `${a.instrument} of ${a.completedOn}: the self-harm item (item ${item}) was answered above zero. Please follow up the risk. ${contact}`,
          focus: selfHarmFlagRef(ctx, a.assessmentId),
          authoredOn: a.completedOn,
          restriction: { period: { end: nextDay(a.completedOn) } },
        },
        a.assessmentId,
      );
    }
  }
  if (ended(e) && has('summary')) {
    const document = summary ? addSummaryDocument(ctx, e, summary, parent, clinic, therapist, episodeOfCare) : undefined;
    request('guidance-ended', {
      description: `Video guidance (Marte Meo) for the parent has ended (${e.status}). ${contact}`,
      // The coordination summary it was created with (a request is never rewritten, so a later
      // version is found from this one's replacements: DocumentReference.relatesTo).
      focus: document ?? episodeOfCare,
      authoredOn: e.closing?.closedOn ?? e.period?.end,
    });
  }
  return { ctx, parent, clinic, primaryOrg, therapist, episodeOfCare };
}

/** Whether the episode has ended (finished or cancelled). */
export const ended = (e: Episode): boolean => e.status === 'finished' || e.status === 'cancelled';

/** LOINC 34133-9 "Summary of episode note": the document type of the coordination summary. */
const SUMMARY_DOCUMENT_TYPE = { system: LOINC, code: '34133-9', display: 'Summary of episode note' };

/** Identifier kind of the DocumentReference of each version of the delivered summary. */
export const SUMMARY_DOCUMENT_KIND = 'summary-document';

/** The version of a summary document: a digest of it without its signature (an ECDSA signature differs per signing). */
export function summaryVersion(document: Bundle): string {
  const { signature: _s, ...unsigned } = document;
  return createHash('sha256').update(JSON.stringify(unsigned), 'utf8').digest('hex').slice(0, 16);
}

/**
 * The coordination summary as a DocumentReference whose content is the document itself (FHIR JSON,
 * base64, with its SHA-1 as R4 Attachment.hash asks). Each version of the document is a
 * DocumentReference of its own, identified by `{episodeId}/summary/{version}`: written by
 * conditional update on that identifier, so a re-send of the same version changes nothing and a
 * changed episode adds the new version beside the old one. Which version it replaces is only known
 * from what was delivered before, i.e. the ledger of the primary target: the delivery layer
 * (src/sync/deliver.ts) adds `relatesTo: replaces` and sets the previous version `superseded`.
 */
function addSummaryDocument(
  ctx: MappingContext,
  e: Episode,
  document: Bundle,
  parent: Ref,
  clinic: Ref,
  therapist: PrimaryContent['therapist'],
  episodeOfCare: Ref,
): Ref {
  const json = JSON.stringify(document);
  const bytes = new TextEncoder().encode(json);
  const identifier = ctx.episodeId(SUMMARY_DOCUMENT_KIND, 'summary', summaryVersion(document));
  const created = document.timestamp as string;
  return ctx.add<DocumentReference>(
    {
      resourceType: 'DocumentReference',
      identifier: [identifier],
      status: 'current',
      docStatus: 'final',
      type: { coding: [{ ...SUMMARY_DOCUMENT_TYPE }] },
      subject: parent,
      date: created,
      author: therapist ? [therapist.role ?? therapist.practitioner, clinic] : [clinic],
      custodian: clinic,
      description: 'Coordination summary of video guidance (Marte Meo), signed FHIR document',
      content: [
        {
          attachment: {
            contentType: FHIR_JSON,
            language: document.language ?? 'nb',
            data: base64Utf8(json),
            size: bytes.length,
            hash: createHash('sha1').update(bytes).digest('base64'),
            title: (document.entry?.[0]?.resource as { title?: string } | undefined)?.title ?? 'Koordineringssammendrag',
            creation: created,
          },
        },
      ],
      context: { encounter: [episodeOfCare], ...(e.period ? { period: { start: e.period.start, ...(e.period.end ? { end: e.period.end } : {}) } } : {}) },
    },
    { identifier, clinical: true },
  );
}

/**
 * The change over time of every measure given two or more times (`episodeOutcomes`): one
 * Observation each, over the period from the first to the latest administration, with the
 * first and latest values, the change, the reliable change index where the norms allow one,
 * and the classification.
 */
function addChangeOverTime(ctx: MappingContext, e: Episode, parent: Ref, episodeOfCare: Ref): void {
  for (const o of episodeOutcomes(e)) {
    const identifier = ctx.episodeId('score-change', o.instrument, o.measure);
    const value = (v: number) => ({ value: v, unit: 'score', system: UCUM, code: '{score}' });
    ctx.add<Observation>(
      {
        resourceType: 'Observation',
        identifier: [identifier],
        extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare', valueReference: episodeOfCare }],
        status: 'final',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey', display: 'Survey' }] }],
        code: { coding: [{ ...o.code }], text: `${o.instrument} ${o.measure === 'total' ? 'total' : o.measure}: change from first to latest` },
        subject: parent,
        effectivePeriod: { start: o.first.date, end: o.latest.date },
        valueQuantity: value(o.change),
        interpretation: [{ coding: [classificationCoding(o.classification)] }],
        component: [
          { code: { text: 'first' }, valueQuantity: value(o.first.value) },
          { code: { text: 'latest' }, valueQuantity: value(o.latest.value) },
          ...(o.rci !== undefined ? [{ code: { text: 'reliable change index' }, valueQuantity: { value: round2(o.rci) } }] : []),
        ],
      },
      { identifier, clinical: true },
    );
  }
}
