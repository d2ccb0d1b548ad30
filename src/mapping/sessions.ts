/** Sessions as Encounters, the video guidance as Procedure, clips as DocumentReference (metadata only). */
import type { DocumentReference, Encounter, Extension, Identifier, Procedure } from '@medplum/fhirtypes';
import type { Session } from '../domain/episode.ts';
import type { Ref } from '../fhir/bundle-scope.ts';
import { LOINC, profileUrl, SECURITY, UCUM } from '../fhir/systems.ts';
import { coding, translateTo } from '../fhir/terminology.ts';
import { addMinutes, type MappingContext } from './context.ts';

const V3_ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const ENCOUNTER_STATUS = 'http://hl7.org/fhir/encounter-status';

export interface SessionRefs {
  parent: Ref;
  episodeOfCare: Ref;
  therapist?: Ref;
}

/** Maps every session; clips first, so that reviews can point at them. */
export function mapSessions(ctx: MappingContext, r: SessionRefs): void {
  const sessions = ctx.episode.sessions ?? [];
  const encounters = new Map<string, Ref>();
  const clips = new Map<string, Ref>();
  for (const s of sessions) {
    const enc = mapEncounter(ctx, s, r);
    encounters.set(s.sessionId, enc);
    if (s.note) mapNote(ctx, s, s.note, enc, r);
    for (const clip of s.clips ?? []) clips.set(clip.clipId, mapClip(ctx, s, clip, enc, r));
  }
  for (const s of sessions) {
    if (s.status === 'attended') mapProcedure(ctx, s, encounters.get(s.sessionId) as Ref, clips, r);
  }
}

/**
 * A session as the Encounter of its attendance (status, setting, kind, times), in the clinic's
 * Bundle and in what crosses to the primary team alike; the therapist only where given.
 */
export function sessionEncounter(s: Session, identifier: Identifier, subject: Ref, episodeOfCare: Ref, therapist?: Ref): Encounter {
  const extension: Extension[] = [{ url: profileUrl('imh-session-attendance'), valueCoding: coding('session-attendance', s.status) }];
  if (s.cancellationReason) extension.push({ url: profileUrl('imh-cancellation-reason'), valueCoding: coding('cancellation-reason', s.cancellationReason) });
  const attended = s.status === 'attended';
  return {
    resourceType: 'Encounter',
    identifier: [identifier],
    extension,
    status: translateTo('session-attendance-to-encounter-status', s.status, ENCOUNTER_STATUS).code as Encounter['status'],
    class: translateTo('session-setting-to-encounter-class', s.setting, V3_ACT_CODE),
    type: [{ coding: [coding('session-kind', s.kind)] }],
    subject,
    episodeOfCare: [episodeOfCare],
    participant: therapist ? [{ individual: therapist }] : undefined,
    period: attended ? { start: s.start, end: addMinutes(s.start, s.minutes) } : { start: s.start },
    length: { value: s.minutes, unit: 'min', system: UCUM, code: 'min' },
  };
}

/** The focus elements an attended session worked on, as extensions of its Procedure. */
export const focusElementExtensions = (s: Session): Extension[] =>
  (s.focusElements ?? []).map((f) => ({ url: profileUrl('imh-focus-element'), valueCoding: coding('marte-meo-focus-element', f) }));

/** The change-process themes of an attended session, as extensions of its Procedure. */
export const themeExtensions = (s: Session): Extension[] =>
  (s.themes ?? []).map((t) => ({ url: profileUrl('imh-change-theme'), valueCoding: coding('change-process-theme', t) }));

/** An attended session's video guidance as a Procedure, with the extensions the recipient may have. */
export function sessionProcedure(
  s: Session,
  identifier: Identifier,
  method: string,
  subject: Ref,
  encounter: Ref | undefined,
  extension: Extension[],
  therapist?: Ref,
): Procedure {
  return {
    resourceType: 'Procedure',
    identifier: [identifier],
    extension: extension.length ? extension : undefined,
    status: 'completed',
    category: { coding: [coding('session-kind', s.kind)] },
    code: { coding: [coding('video-guidance-method', method)] },
    subject,
    encounter,
    performedPeriod: { start: s.start, end: addMinutes(s.start, s.minutes) },
    performer: therapist ? [{ actor: therapist }] : undefined,
  };
}

function mapEncounter(ctx: MappingContext, s: Session, r: SessionRefs): Ref {
  const identifier = ctx.episodeId('session', s.sessionId);
  return ctx.add(sessionEncounter(s, identifier, r.parent, r.episodeOfCare, r.therapist), { profile: 'imh-encounter', identifier, clinical: true });
}

/** Psychotherapy notes: the strictest labels there are, so servers and sharing rules keep them apart. */
const NOTE_LABELS = [SECURITY.veryRestricted, SECURITY.psychiatry, SECURITY.psychotherapyNote];

/**
 * The session's note as a document of its own (never inside the Encounter), labelled as a
 * psychotherapy note (v3 PSYTHPN) with confidentiality V, so that servers can restrict it and
 * nothing that reads sessions carries it along. The text is kept verbatim (UTF-8).
 */
function mapNote(ctx: MappingContext, s: Session, note: string, encounter: Ref, r: SessionRefs): Ref {
  const identifier = ctx.episodeId('session-note', s.sessionId);
  return ctx.add<DocumentReference>(
    {
      resourceType: 'DocumentReference',
      identifier: [identifier],
      status: 'current',
      type: { coding: [{ system: LOINC, code: '11506-3', display: 'Progress note' }] },
      subject: r.parent,
      date: toInstant(s.start),
      author: r.therapist ? [r.therapist] : undefined,
      content: [{ attachment: { contentType: 'text/plain;charset=utf-8', data: base64Utf8(note) } }],
      context: { encounter: [encounter] },
    },
    { profile: 'imh-psychotherapy-note', identifier, clinical: true, security: NOTE_LABELS },
  );
}

/** An episode date-time (seconds optional) as an R4 instant (seconds required). */
export function toInstant(dateTime: string): string {
  return dateTime.replace(/T(\d{2}:\d{2})(?=Z|[+-]\d{2}:\d{2}$)/, 'T$1:00');
}

/** Base64 of the UTF-8 bytes of a string (btoa alone takes Latin-1 only). */
export function base64Utf8(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function mapClip(ctx: MappingContext, s: Session, clip: NonNullable<Session['clips']>[number], encounter: Ref, r: SessionRefs): Ref {
  const identifier = ctx.episodeId('clip', clip.clipId);
  return ctx.add<DocumentReference>(
    {
      resourceType: 'DocumentReference',
      identifier: [identifier],
      status: 'current',
      type: { coding: [coding('clip-type', 'video-guidance-clip')] },
      subject: r.parent,
      author: r.therapist ? [r.therapist] : undefined,
      content: [
        {
          attachment: {
            extension: [
              // R4 Attachment.hash is SHA-1; the journal's SHA-256 is kept verbatim here.
              { url: profileUrl('imh-attachment-sha256'), valueString: clip.sha256 },
              { url: profileUrl('imh-clip-duration'), valueDuration: { value: clip.seconds, unit: 's', system: UCUM, code: 's' } },
            ],
            contentType: clip.contentType,
            url: clip.uri,
            title: `${s.sessionId} ${clip.clipId}`,
            creation: clip.recordedAt,
          },
        },
      ],
      context: { encounter: [encounter], period: { start: clip.recordedAt } },
    },
    { profile: 'imh-video-clip', identifier, clinical: true },
  );
}

function mapProcedure(ctx: MappingContext, s: Session, encounter: Ref, clips: Map<string, Ref>, r: SessionRefs): Ref {
  const identifier = ctx.episodeId('procedure', s.sessionId);
  const extension: Extension[] = [
    ...focusElementExtensions(s),
    ...themeExtensions(s),
    ...(s.reviewsClips ?? []).map((c) => ({ url: profileUrl('imh-reviewed-clip'), valueReference: clips.get(c) as Ref })),
  ];
  return ctx.add(sessionProcedure(s, identifier, ctx.episode.method, r.parent, encounter, extension, r.therapist), {
    profile: 'imh-video-guidance',
    identifier,
    clinical: true,
  });
}
