/**
 * Episode → one deterministic FHIR R4 transaction Bundle
 * (https://hl7.org/fhir/R4/http.html#transaction). Same input, byte-identical output:
 * identities come from business identifiers and every write is conditional.
 */
import type { Bundle, Device, Provenance, Task } from '@medplum/fhirtypes';
import type { Episode } from '../domain/episode.ts';
import { type ParseOptions, parseEpisode } from '../domain/parse.ts';
import type { Ref } from '../fhir/bundle-scope.ts';
import { DEV_IDENTITY, type IdentityOptions } from '../fhir/identity.ts';
import { coding } from '../fhir/terminology.ts';
import { selfHarmFlagRef } from '../instruments/score-resources.ts';
import { mapAssessments, selfHarmAssessments } from './assessments.ts';
import { MappingContext } from './context.ts';
import { type CareTeamMember, mapCareTeam, mapConditions, mapConsent, mapEpisodeOfCare, mapReferral } from './episode-of-care.ts';
import { mapClinicianGlobalImprovement, mapGoals } from './goals.ts';
import { mapClinician, mapOrganization, mapPeople } from './people.ts';
import { mapSessions } from './sessions.ts';

/** Version of the mapping rules; part of what a delivery ledger remembers. */
export const MAPPING_VERSION = '1.0.0';

/**
 * The point in time the episode's content describes: its newest dated event that has
 * happened (planned sessions excluded). Used where FHIR needs an instant, so that the
 * output does not depend on the clock.
 */
export function asOf(e: Episode): string {
  const stamps: string[] = [e.referral.receivedOn];
  if (e.period) stamps.push(e.period.start, ...(e.period.end ? [e.period.end] : []));
  for (const s of e.sessions ?? []) {
    if (s.status !== 'planned') stamps.push(s.start);
    for (const c of s.clips ?? []) stamps.push(c.recordedAt);
  }
  for (const a of e.assessments ?? []) stamps.push(a.completedOn);
  for (const g of e.goals ?? []) stamps.push(g.statusOn);
  if (e.consent) stamps.push(e.consent.decidedOn);
  if (e.closing) stamps.push(e.closing.closedOn);
  const ms = Math.max(...stamps.map((s) => Date.parse(s.length === 10 ? `${s}T00:00:00Z` : s)));
  return new Date(ms).toISOString();
}

/** What the clinic's own record learns of the sharing decision for this send (coordination/). */
export interface ClinicSharing {
  /** Whether risk flags reach the primary team with this send (gate open and `risk-flags` shared). */
  riskShared: boolean;
  /** Why not, in words for the therapist (no personal data). */
  reason?: string;
}

/**
 * Maps a parsed episode, with the deployment's identity settings (fhir/identity.ts). With `sharing`,
 * a positive self-harm item that may not reach the primary team is never dropped silently: a
 * Task on the clinic's own server, owned by the therapist, says it was not shared and why.
 */
export function mapParsedEpisode(e: Episode, identity: IdentityOptions = DEV_IDENTITY, sharing?: ClinicSharing): Bundle {
  const ctx = new MappingContext(e, identity);
  const people = mapPeople(ctx);
  const clinic = mapOrganization(ctx, e.clinic);
  const therapist = e.therapist ? mapClinician(ctx, e.therapist, clinic, e.clinic.orgNumber) : undefined;
  const primaryOrg = e.primaryTreatment ? mapOrganization(ctx, e.primaryTreatment.organization) : undefined;
  const primaryContact =
    e.primaryTreatment?.contact && primaryOrg
      ? mapClinician(ctx, e.primaryTreatment.contact, primaryOrg, e.primaryTreatment.organization.orgNumber)
      : undefined;

  // R4 ctm-1: onBehalfOf only with a Practitioner as member. Members here are
  // PractitionerRoles, which already name their organisation, so onBehalfOf is left out.
  const members: CareTeamMember[] = [];
  if (therapist?.role) members.push({ role: therapist.role });
  if (primaryContact?.role) members.push({ role: primaryContact.role });

  const referral = mapReferral(ctx, people.parent, clinic);
  mapConditions(ctx, people.parent);
  const careTeam = mapCareTeam(ctx, people.parent, clinic, members);
  const episodeOfCare = mapEpisodeOfCare(ctx, {
    parent: people.parent,
    clinic,
    referral,
    careTeam,
    therapist: therapist?.practitioner,
  });
  mapConsent(ctx, people.parent, clinic, primaryOrg);
  mapSessions(ctx, { parent: people.parent, episodeOfCare, therapist: therapist?.practitioner });
  mapAssessments(ctx, { parent: people.parent, therapist: therapist?.practitioner, episodeOfCare });
  mapGoals(ctx, people.parent, therapist?.practitioner);
  mapClinicianGlobalImprovement(ctx, people.parent, therapist?.practitioner);

  const device = addBridgeDevice(ctx, 'imh-bridge-device');

  if (sharing && !sharing.riskShared)
    mapUnsharedRisks(ctx, sharing.reason ?? 'not shared', { parent: people.parent, owner: therapist?.practitioner ?? clinic, requester: device });

  addProvenance(ctx, { device, clinic, key: `${e.clinic.orgNumber}|${e.episodeId}`, profile: 'imh-provenance' });

  return { resourceType: 'Bundle', type: 'transaction', entry: ctx.list() };
}

/** The bridge as the Device that assembles what it writes (once per Bundle). */
export function addBridgeDevice(ctx: MappingContext, profile?: string): Ref {
  const deviceId = { system: `${ctx.identity.namespace}/bridge/device`, value: 'imh-bridge' };
  return ctx.add<Device>(
    {
      resourceType: 'Device',
      identifier: [deviceId],
      status: 'active',
      deviceName: [{ name: 'imh-bridge', type: 'manufacturer-name' }],
      version: [{ value: MAPPING_VERSION }],
    },
    { profile, identifier: deviceId, clinical: false },
  );
}

/**
 * Provenance of everything in the Bundle so far: assembled by the bridge, authored by the clinic,
 * recorded at the episode's own point in time (never the clock). Written by PUT to an id derived
 * from `key`; clinical, since it names every resource of a mental-health record.
 */
export function addProvenance(ctx: MappingContext, p: { device: Ref; clinic: Ref; key: string; profile?: string }): Ref {
  const targets: Ref[] = ctx.list().map((entry) => ({ reference: entry.fullUrl as string }));
  return ctx.addById<Provenance>(
    {
      resourceType: 'Provenance',
      target: targets,
      recorded: asOf(ctx.episode),
      activity: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: 'UPDATE', display: 'revise' }] },
      agent: [
        {
          type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'assembler', display: 'Assembler' }] },
          who: p.device,
        },
        {
          type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author', display: 'Author' }] },
          who: p.clinic,
        },
      ],
    },
    p.key,
    p.profile,
    true,
  );
}

/**
 * For each assessment with a positive self-harm item that the primary team will not get (gate
 * closed, or `risk-flags` not shared), a request to the clinic's own therapist: the risk was not
 * shared, and why, so that a person decides whether to call the primary team. Once per
 * assessment, created only when absent.
 */
function mapUnsharedRisks(ctx: MappingContext, why: string, r: { parent: Ref; owner: Ref; requester: Ref }): void {
  for (const a of selfHarmAssessments(ctx.episode)) {
    const identifier = ctx.episodeId('coordination-request', 'risk-not-shared', a.assessmentId);
    ctx.add<Task>(
      {
        resourceType: 'Task',
        identifier: [identifier],
        status: 'requested',
        intent: 'order',
        priority: 'urgent',
        code: { coding: [coding('coordination-request', 'risk-not-shared')] },
        description: `${a.instrument} of ${a.completedOn}: the self-harm item was answered above zero, and this was NOT shared with the parent's primary treatment team: ${why}. Decide whether to contact them.`,
        focus: selfHarmFlagRef(ctx, a.assessmentId),
        for: r.parent,
        authoredOn: a.completedOn,
        requester: r.requester,
        owner: r.owner,
      },
      { identifier, clinical: true },
    );
  }
}

export interface MapOptions extends ParseOptions {
  /** The deployment's identifier namespace and pseudonym secret; development defaults if absent. */
  identity?: IdentityOptions;
}

/**
 * Validates an episode (format 1.0) and maps it to a transaction Bundle. Throws an
 * OperationOutcomeError naming every problem when the input is not a valid episode.
 */
export function mapEpisode(input: unknown, options: MapOptions = {}): Bundle {
  return mapParsedEpisode(parseEpisode(input, options), options.identity);
}
