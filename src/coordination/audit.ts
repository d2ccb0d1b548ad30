/**
 * Audit of what reaches the primary treatment team, as IHE Basic Audit Log Patterns record a
 * privacy disclosure at its source (BALP `PrivacyDisclosure.Source`,
 * https://profiles.ihe.net/ITI/BALP/): an AuditEvent of type DICOM 110106 "Export", subtype ISO
 * 21089 "disclose", purpose of use TREAT, with the bridge as source, the primary organisation
 * and its endpoint as recipient, the clinic as custodian, the caller that sent the episode, the
 * patient, the consent, the episode and every resource sent. A send the consent refused is
 * audited the same way, with outcome "minor failure" and the reason. Pure: written to the
 * clinic's own server by the delivery engine.
 */
import type { AuditEvent, AuditEventAgent, AuditEventEntity, Bundle, Identifier, ResourceType } from '@medplum/fhirtypes';
import type { Episode } from '../domain/episode.ts';
import { keyedUuid } from '../fhir/bundle-scope.ts';
import { businessIdSystem, type IdentityOptions } from '../fhir/identity.ts';
import { NO, SECURITY } from '../fhir/systems.ts';
import { nationalIdentifier } from '../mapping/people.ts';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
/** An audit of mental-health records is itself one: labelled as they are. */
const AUDIT_LABELS = [SECURITY.restricted, SECURITY.psychiatry];
const TREATMENT = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT', display: 'treatment' } as const;
const PARTICIPATION = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';

export type DisclosureOutcome = 'success' | 'failed' | 'refused';

export interface Disclosure {
  /** Unique per send and recipient (e.g. job id and target): the AuditEvent's id derives from it, so a retried write stays one event. */
  key: string;
  /** When it happened (ISO instant). */
  at: string;
  episode: Episode;
  identity: IdentityOptions;
  /** Who sent the episode (the caller recorded on the job), never a token. */
  caller?: string;
  /** The primary organisation and the FHIR base URL it was sent to (absent when refused before a target was chosen). */
  recipient?: { orgNumber: string; endpoint?: string };
  /** What crossed (for a refusal: nothing). */
  sent?: Bundle;
  outcome: DisclosureOutcome;
  /** Why it failed or was refused, in words without personal data. */
  reason?: string;
}

const OUTCOME: Record<DisclosureOutcome, AuditEvent['outcome']> = { success: '0', failed: '8', refused: '4' };

/** Business identifiers of the resources in a Bundle (the entries' own, or the request's conditional one). */
function sentIdentifiers(bundle: Bundle | undefined): { type: string; identifier: Identifier }[] {
  const out: { type: string; identifier: Identifier }[] = [];
  for (const e of bundle?.entry ?? []) {
    const r = e.resource as { resourceType?: string; identifier?: Identifier | Identifier[] } | undefined;
    if (!r?.resourceType || r.resourceType === 'Binary') continue;
    const ids = Array.isArray(r.identifier) ? r.identifier : r.identifier ? [r.identifier] : [];
    const id = ids.find((i) => i.system && i.value);
    if (id) out.push({ type: r.resourceType, identifier: { system: id.system, value: id.value } });
  }
  return out;
}

/** The AuditEvent of one disclosure (or refused disclosure) to a primary treatment team. */
export function disclosureAuditEvent(d: Disclosure): AuditEvent {
  const e = d.episode;
  const bridge: Identifier = { system: `${d.identity.namespace}/bridge/device`, value: 'imh-bridge' };
  const agents: AuditEventAgent[] = [
    {
      type: { coding: [{ system: DCM, code: '110153', display: 'Source Role ID' }] },
      who: { identifier: bridge, display: 'imh-bridge' },
      requestor: false,
    },
    {
      type: { coding: [{ system: PARTICIPATION, code: 'CST', display: 'custodian' }] },
      who: { identifier: { system: NO.orgNumber, value: e.clinic.orgNumber }, display: e.clinic.name },
      requestor: false,
    },
  ];
  if (d.recipient) {
    agents.push({
      type: { coding: [{ system: DCM, code: '110152', display: 'Destination Role ID' }] },
      who: {
        identifier: { system: NO.orgNumber, value: d.recipient.orgNumber },
        ...(e.primaryTreatment?.organization.name ? { display: e.primaryTreatment.organization.name } : {}),
      },
      requestor: false,
      ...(d.recipient.endpoint ? { network: { address: d.recipient.endpoint, type: '5' as const } } : {}),
    });
  }
  if (d.caller) {
    agents.push({ type: { coding: [{ system: DCM, code: '110150', display: 'Application' }] }, who: { display: d.caller }, requestor: true });
  }
  const entity: AuditEventEntity[] = [
    {
      what: { identifier: nationalIdentifier(e.parent.nationalId) },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
    },
    {
      what: { type: 'EpisodeOfCare', identifier: { system: businessIdSystem(d.identity, e.clinic.orgNumber, 'episode'), value: e.episodeId } },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
    },
  ];
  if (e.consent) {
    entity.push({
      what: { type: 'Consent', identifier: { system: businessIdSystem(d.identity, e.clinic.orgNumber, 'consent'), value: e.consent.consentId } },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
      description: `consent ${e.consent.status}${e.consent.share?.length ? `; shares ${e.consent.share.join(', ')}` : ''}`,
    });
  }
  for (const s of sentIdentifiers(d.sent)) {
    entity.push({
      what: { type: s.type as ResourceType, identifier: s.identifier },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
    });
  }
  return {
    resourceType: 'AuditEvent',
    id: keyedUuid(d.identity, `AuditEvent|disclosure|${d.key}`),
    meta: { security: AUDIT_LABELS.map((c) => ({ ...c })) },
    type: { system: DCM, code: '110106', display: 'Export' },
    subtype: [{ system: 'http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle', code: 'disclose', display: 'Disclose Record Lifecycle Event' }],
    action: 'R',
    recorded: d.at,
    outcome: OUTCOME[d.outcome],
    ...(d.reason ? { outcomeDesc: d.reason } : d.outcome === 'success' ? {} : { outcomeDesc: d.outcome }),
    purposeOfEvent: [{ coding: [{ ...TREATMENT }] }],
    agent: agents,
    source: {
      observer: { identifier: bridge, display: 'imh-bridge' },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    entity,
  };
}

/**
 * The AuditEvent of a disclosure with its outcome set once that is known: the delivery engine
 * builds the event when the job is submitted (it needs the episode) and records the outcome of
 * the send later (`recorded`, `outcome`, `outcomeDesc`, as {@link disclosureAuditEvent} sets them).
 */
export function withOutcome(event: AuditEvent, outcome: DisclosureOutcome, at: string, reason?: string): AuditEvent {
  const { outcomeDesc: _d, ...rest } = event;
  return { ...rest, recorded: at, outcome: OUTCOME[outcome], ...(reason ? { outcomeDesc: reason } : outcome === 'success' ? {} : { outcomeDesc: outcome }) };
}

/** Who opened (or tried to open) a coordination summary from an EHR (SMART App Launch). */
export interface SummaryViewer {
  /** The EHR's FHIR base URL (the launch's `iss`). */
  iss: string;
  /** The id token's `fhirUser` (e.g. `https://ehr.example/fhir/Practitioner/123`), when it gave one. */
  fhirUser?: string;
  /** The id token's `sub`. */
  sub?: string;
  /** The organisation number the EHR speaks for (configured with the issuer). */
  orgNumber?: string;
}

export interface SummaryView {
  /** Unique per view or refusal: the AuditEvent's id derives from it, so a retried write stays one event. */
  key: string;
  /** When it happened (ISO instant). */
  at: string;
  identity: IdentityOptions;
  /** Who, as far as known when it happened (nothing is known of a launch refused before sign-in). */
  viewer?: SummaryViewer;
  /** The parent's national id, once the EHR's patient in context has been read. */
  nationalId?: string;
  /** The episode shown or refused. */
  episode?: Episode;
  outcome: 'success' | 'refused';
  /** Why it was refused, in words without personal data. */
  reason?: string;
}

/**
 * The AuditEvent of one view of a coordination summary from an EHR, or of a refused one (IHE
 * BALP `PatientRead`, https://profiles.ihe.net/ITI/BALP/: DICOM 110110 "Patient Record",
 * restful-interaction `read`, purpose of use TREAT): the clinician (fhirUser, sub) as the
 * requesting agent with their organisation, the clinic as custodian, the bridge as source, the
 * patient, the episode and its consent. A refusal is outcome 4 ("minor failure") with the reason.
 */
export function summaryViewAuditEvent(v: SummaryView): AuditEvent {
  const bridge: Identifier = { system: `${v.identity.namespace}/bridge/device`, value: 'imh-bridge' };
  const e = v.episode;
  const agents: AuditEventAgent[] = [
    {
      type: { coding: [{ system: DCM, code: '110153', display: 'Source Role ID' }] },
      who: { identifier: bridge, display: 'imh-bridge' },
      requestor: false,
    },
  ];
  if (e) {
    agents.push({
      type: { coding: [{ system: PARTICIPATION, code: 'CST', display: 'custodian' }] },
      who: { identifier: { system: NO.orgNumber, value: e.clinic.orgNumber }, display: e.clinic.name },
      requestor: false,
    });
  }
  const who = v.viewer;
  if (who && (who.fhirUser || who.sub)) {
    agents.push({
      type: { coding: [{ system: PARTICIPATION, code: 'IRCP', display: 'information recipient' }] },
      // The clinician as the EHR names them: fhirUser where given, else the subject of the id token.
      who: { identifier: { system: who.iss, value: who.fhirUser ?? (who.sub as string) } },
      ...(who.sub ? { altId: who.sub } : {}),
      requestor: true,
      network: { address: who.iss, type: '5' },
    });
  }
  if (who?.orgNumber) {
    agents.push({
      type: { coding: [{ system: DCM, code: '110152', display: 'Destination Role ID' }] },
      who: {
        identifier: { system: NO.orgNumber, value: who.orgNumber },
        ...(e?.primaryTreatment?.organization.orgNumber === who.orgNumber && e.primaryTreatment.organization.name
          ? { display: e.primaryTreatment.organization.name }
          : {}),
      },
      requestor: false,
    });
  }
  const entity: AuditEventEntity[] = [];
  if (v.nationalId) {
    entity.push({
      what: { identifier: nationalIdentifier(v.nationalId) },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
    });
  }
  if (e) {
    entity.push({
      what: { type: 'EpisodeOfCare', identifier: { system: businessIdSystem(v.identity, e.clinic.orgNumber, 'episode'), value: e.episodeId } },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
      description: 'coordination summary',
    });
    if (e.consent) {
      entity.push({
        what: { type: 'Consent', identifier: { system: businessIdSystem(v.identity, e.clinic.orgNumber, 'consent'), value: e.consent.consentId } },
        type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
        description: `consent ${e.consent.status}${e.consent.share?.length ? `; shares ${e.consent.share.join(', ')}` : ''}`,
      });
    }
  }
  return {
    resourceType: 'AuditEvent',
    id: keyedUuid(v.identity, `AuditEvent|summary-view|${v.key}`),
    meta: { security: AUDIT_LABELS.map((c) => ({ ...c })) },
    type: { system: DCM, code: '110110', display: 'Patient Record' },
    subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read', display: 'read' }],
    action: 'R',
    recorded: v.at,
    outcome: v.outcome === 'success' ? '0' : '4',
    ...(v.reason ? { outcomeDesc: v.reason } : v.outcome === 'success' ? {} : { outcomeDesc: 'refused' }),
    purposeOfEvent: [{ coding: [{ ...TREATMENT }] }],
    agent: agents,
    source: {
      observer: { identifier: bridge, display: 'imh-bridge' },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    ...(entity.length ? { entity } : {}),
  };
}
