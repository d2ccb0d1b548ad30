/** Referral, episode of care, care team, the parent's known conditions and consent. */
import type { CareTeam, CareTeamParticipant, CodeSystem, Condition, Consent, EpisodeOfCare, Extension, ServiceRequest } from '@medplum/fhirtypes';
import consentShareClass from '../../mappings/CodeSystem-consent-share-class.json' with { type: 'json' };
import type { Ref } from '../fhir/bundle-scope.ts';
import { ICD10, LOINC, profileUrl } from '../fhir/systems.ts';
import { coding, translateTo } from '../fhir/terminology.ts';
import type { MappingContext } from './context.ts';

const REFERRAL_STATUS = { planned: 'active', active: 'active', finished: 'completed', cancelled: 'revoked' } as const;
const CARE_TEAM_STATUS = { planned: 'proposed', active: 'active', finished: 'inactive', cancelled: 'inactive' } as const;

export function mapReferral(ctx: MappingContext, parent: Ref, clinic: Ref): Ref {
  const e = ctx.episode;
  const identifier = ctx.episodeId('referral');
  return ctx.add<ServiceRequest>(
    {
      resourceType: 'ServiceRequest',
      identifier: [identifier],
      status: REFERRAL_STATUS[e.status],
      intent: 'order',
      code: { coding: [coding('video-guidance-method', e.method)] },
      subject: parent,
      authoredOn: e.referral.receivedOn,
      performer: [clinic],
      extension: [{ url: profileUrl('imh-referral-source'), valueCoding: coding('referral-source', e.referral.source) }],
      reasonCode: e.referral.reason ? [{ text: e.referral.reason }] : undefined,
    },
    { profile: 'imh-referral', identifier, clinical: true },
  );
}

export function mapConditions(ctx: MappingContext, parent: Ref): Ref[] {
  const conditions = ctx.episode.primaryTreatment?.conditions ?? [];
  return conditions.map((c) => {
    // Known conditions belong to the parent, not to one episode: identity by parent and code.
    const identifier = ctx.id('condition', ctx.pseudonym(`condition|${ctx.episode.parent.nationalId}|${c.code}`));
    return ctx.add<Condition>(
      {
        resourceType: 'Condition',
        identifier: [identifier],
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
        verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
        category: [
          { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item', display: 'Problem List Item' }] },
        ],
        code: { coding: [{ system: ICD10, code: c.code, ...(c.display ? { display: c.display } : {}) }] },
        subject: parent,
      },
      { profile: 'imh-condition', identifier, clinical: true },
    );
  });
}

export interface CareTeamMember {
  /** A PractitionerRole (it carries the organisation the member acts for). */
  role: Ref;
}

export function mapCareTeam(ctx: MappingContext, parent: Ref, clinic: Ref, members: CareTeamMember[]): Ref {
  const identifier = ctx.episodeId('care-team');
  const participant: CareTeamParticipant[] = members.map((m) => ({ member: m.role }));
  return ctx.add<CareTeam>(
    {
      resourceType: 'CareTeam',
      identifier: [identifier],
      status: CARE_TEAM_STATUS[ctx.episode.status],
      subject: parent,
      participant: participant.length ? participant : undefined,
      managingOrganization: [clinic],
    },
    { profile: 'imh-care-team', identifier, clinical: true },
  );
}

export interface EpisodeRefs {
  parent: Ref;
  clinic: Ref;
  referral: Ref;
  careTeam: Ref;
  therapist?: Ref;
}

export function mapEpisodeOfCare(ctx: MappingContext, r: EpisodeRefs): Ref {
  const e = ctx.episode;
  const identifier = ctx.episodeId('episode');
  const extension: Extension[] = [];
  if (e.closing) {
    extension.push({
      url: profileUrl('imh-episode-closing'),
      extension: [
        { url: 'closedOn', valueDate: e.closing.closedOn },
        { url: 'reason', valueCoding: coding('closing-reason', e.closing.reason) },
        ...(e.closing.recommendation ? [{ url: 'recommendation', valueString: e.closing.recommendation }] : []),
      ],
    });
  }
  return ctx.add<EpisodeOfCare>(
    {
      resourceType: 'EpisodeOfCare',
      identifier: [identifier],
      extension: extension.length ? extension : undefined,
      status: translateTo('episode-status-to-fhir', e.status, 'http://hl7.org/fhir/episode-of-care-status').code as EpisodeOfCare['status'],
      type: [{ coding: [coding('video-guidance-method', e.method)] }],
      patient: r.parent,
      managingOrganization: r.clinic,
      period: e.period ? { start: e.period.start, ...(e.period.end ? { end: e.period.end } : {}) } : undefined,
      referralRequest: [r.referral],
      careManager: r.therapist,
      team: [r.careTeam],
    },
    { profile: 'imh-episode-of-care', identifier, clinical: true },
  );
}

/** Resource types through which each consented part reaches the recipient (CodeSystem consent-share-class, property resource-type). */
function shareResourceTypes(share: string): string[] {
  const concept = (consentShareClass as unknown as CodeSystem).concept?.find((c) => c.code === share);
  return (concept?.property ?? []).filter((p) => p.code === 'resource-type').map((p) => p.valueCode as string);
}

const V3_CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const RESOURCE_TYPES = 'http://hl7.org/fhir/resource-types';
/** What crosses whenever the gate is open (sharing contract): the parent, the clinic, the therapist, the episode, this Consent, what was sent, and coordination requests. */
const ALWAYS_SHARED = ['Patient', 'Organization', 'Practitioner', 'PractitionerRole', 'EpisodeOfCare', 'Consent', 'Provenance', 'Device', 'Task'];

/**
 * The parent's consent as a FHIR Consent that consent engines read, following IHE Privacy
 * Consent on FHIR (PCF, https://profiles.ihe.net/ITI/PCF/): scope patient-privacy, category
 * LOINC 59284-0, policyRule opt-in, and a permit provision for the recipient organisation
 * (actor role IRCP, information recipient), purpose of use TREAT, the period, the security
 * labels of what may cross (R, PSY), and the classes: the resource types of each consented part
 * (http://hl7.org/fhir/resource-types) and the journal's own share codes. A nested deny
 * provision says that psychotherapy notes (PSYTHPN) and video clips never cross.
 */
export function mapConsent(ctx: MappingContext, parent: Ref, clinic: Ref, recipient: Ref | undefined): Ref | undefined {
  const c = ctx.episode.consent;
  if (!c) return undefined;
  const identifier = ctx.id('consent', c.consentId);
  const types = [...new Set([...ALWAYS_SHARED, ...(c.share ?? []).flatMap(shareResourceTypes)])].sort();
  // A declined consent permits nothing; one that was active keeps what it permitted, for the record.
  const provision: Consent['provision'] =
    recipient && c.status !== 'declined'
      ? {
          type: 'permit',
          period: { start: c.decidedOn, ...(c.expiresOn ? { end: c.expiresOn } : {}) },
          actor: [
            {
              role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] },
              reference: recipient,
            },
          ],
          purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT', display: 'treatment' }],
          securityLabel: [
            { system: V3_CONFIDENTIALITY, code: 'R', display: 'restricted' },
            { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'PSY', display: 'psychiatry disorder information sensitivity' },
          ],
          class: [...types.map((t) => ({ system: RESOURCE_TYPES, code: t })), ...(c.share ?? []).map((s) => coding('consent-share-class', s))],
          provision: [
            {
              type: 'deny',
              securityLabel: [
                { system: V3_CONFIDENTIALITY, code: 'V', display: 'very restricted' },
                { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'PSYTHPN', display: 'psychotherapy note information sensitivity' },
              ],
              code: [{ coding: [coding('clip-type', 'video-guidance-clip')] }],
            },
          ],
        }
      : undefined;
  return ctx.add<Consent>(
    {
      resourceType: 'Consent',
      identifier: [identifier],
      status: translateTo('consent-status-to-fhir', c.status, 'http://hl7.org/fhir/consent-state-codes').code as Consent['status'],
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy', display: 'Privacy Consent' }] },
      category: [{ coding: [{ system: LOINC, code: '59284-0', display: 'Patient Consent' }] }],
      patient: parent,
      dateTime: c.decidedOn,
      performer: [parent],
      organization: [clinic],
      policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN', display: 'opt-in' }] },
      provision,
    },
    { profile: 'imh-consent', identifier, clinical: true },
  );
}
