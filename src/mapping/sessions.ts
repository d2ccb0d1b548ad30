/** Sessions as Encounters, the video guidance as Procedure, clips as DocumentReference (metadata only). */
import type { DocumentReference, Encounter, Extension, Procedure } from '@medplum/fhirtypes';
import type { Session } from '../domain/episode.ts';
import { UCUM, profileUrl } from '../fhir/systems.ts';
import { type MappingContext, addMinutes, type Ref } from './context.ts';
import { coding, translateTo } from './terminology.ts';

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
    for (const clip of s.clips ?? []) clips.set(clip.clipId, mapClip(ctx, s, clip, enc, r));
  }
  for (const s of sessions) {
    if (s.status === 'attended') mapProcedure(ctx, s, encounters.get(s.sessionId) as Ref, clips, r);
  }
}

function mapEncounter(ctx: MappingContext, s: Session, r: SessionRefs): Ref {
  const identifier = ctx.episodeId('session', s.sessionId);
  const extension: Extension[] = [{ url: profileUrl('imh-session-attendance'), valueCoding: coding('session-attendance', s.status) }];
  if (s.cancellationReason) extension.push({ url: profileUrl('imh-cancellation-reason'), valueCoding: coding('cancellation-reason', s.cancellationReason) });
  if (s.note) extension.push({ url: profileUrl('imh-session-note'), valueString: s.note });
  const attended = s.status === 'attended';
  return ctx.add<Encounter>(
    {
      resourceType: 'Encounter',
      identifier: [identifier],
      extension,
      status: translateTo('session-attendance-to-encounter-status', s.status, ENCOUNTER_STATUS).code as Encounter['status'],
      class: translateTo('session-setting-to-encounter-class', s.setting, V3_ACT_CODE),
      type: [{ coding: [coding('session-kind', s.kind)] }],
      subject: r.parent,
      episodeOfCare: [r.episodeOfCare],
      participant: r.therapist ? [{ individual: r.therapist }] : undefined,
      period: attended ? { start: s.start, end: addMinutes(s.start, s.minutes) } : { start: s.start },
      length: { value: s.minutes, unit: 'min', system: UCUM, code: 'min' },
    },
    { profile: 'imh-encounter', identifier, clinical: true },
  );
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
    ...(s.focusElements ?? []).map((f) => ({ url: profileUrl('imh-focus-element'), valueCoding: coding('marte-meo-focus-element', f) })),
    ...(s.themes ?? []).map((t) => ({ url: profileUrl('imh-change-theme'), valueCoding: coding('change-process-theme', t) })),
    ...(s.reviewsClips ?? []).map((c) => ({ url: profileUrl('imh-reviewed-clip'), valueReference: clips.get(c) as Ref })),
  ];
  return ctx.add<Procedure>(
    {
      resourceType: 'Procedure',
      identifier: [identifier],
      extension: extension.length ? extension : undefined,
      status: 'completed',
      category: { coding: [coding('session-kind', s.kind)] },
      code: { coding: [coding('video-guidance-method', ctx.episode.method)] },
      subject: r.parent,
      encounter,
      performedPeriod: { start: s.start, end: addMinutes(s.start, s.minutes) },
      performer: r.therapist ? [{ actor: r.therapist }] : undefined,
    },
    { profile: 'imh-video-guidance', identifier, clinical: true },
  );
}
