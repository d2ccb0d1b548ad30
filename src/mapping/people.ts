/** Parent, infants, their relationship, organisations and clinicians. */
import type { ContactPoint, HumanName, Identifier, Organization, Patient, Practitioner, PractitionerRole, RelatedPerson } from '@medplum/fhirtypes';
import type { Clinician, OrganizationInput, ParentPerson, Person, Rater } from '../domain/episode.ts';
import { checkNationalId } from '../domain/identifiers.ts';
import type { Ref } from '../fhir/bundle-scope.ts';
import { NO } from '../fhir/systems.ts';
import { coding, translate } from '../fhir/terminology.ts';
import type { MappingContext } from './context.ts';

export function nationalIdentifier(nationalId: string): Identifier {
  const info = checkNationalId(nationalId);
  const kind = typeof info === 'string' ? 'fnr' : info.kind;
  return { use: 'official', system: kind === 'dnr' ? NO.dnr : NO.fnr, value: nationalId };
}

const humanName = (given: string[], family: string): HumanName => ({ use: 'official', family, given: [...given] });
const phone = (value: string | undefined): ContactPoint[] | undefined => (value ? [{ system: 'phone', value }] : undefined);

export interface PeopleRefs {
  parent: Ref;
  infants: Ref[];
}

/**
 * Identifier for an infant. With a national id, that; without one (newborns), a
 * keyed pseudonym of the parent's id, the birth date and the infant's rank among
 * id-less infants born that day, so re-sends and later episodes find the same child.
 */
function infantIdentifiers(ctx: MappingContext, parent: ParentPerson, infants: Person[]): Identifier[] {
  const seen = new Map<string, number>();
  return infants.map((inf) => {
    if (inf.nationalId) return nationalIdentifier(inf.nationalId);
    const n = seen.get(inf.birthDate) ?? 0;
    seen.set(inf.birthDate, n + 1);
    return { use: 'secondary', ...ctx.id('infant', ctx.pseudonym(`infant|${parent.nationalId}|${inf.birthDate}|${n}`)) };
  });
}

export function mapPeople(ctx: MappingContext): PeopleRefs {
  const { parent, infants } = ctx.episode;
  const parentId = nationalIdentifier(parent.nationalId);
  const infantIds = infantIdentifiers(ctx, parent, infants);
  const relationship = [...translate('parent-relationship-to-v3-rolecode', parent.relationship), coding('parent-relationship', parent.relationship)];

  const relatedIds = infantIds.map((iid) => ctx.id('related-person', ctx.pseudonym(`related|${parent.nationalId}|${iid.system}|${iid.value}`)));
  // The parent's Patient is shared by every episode of that parent, so it carries nothing
  // episode-specific (no list of this episode's infants): the link between parent and infant
  // is the RelatedPerson, which names the infant and carries the parent's national id.
  const patient: Patient = {
    resourceType: 'Patient',
    identifier: [parentId],
    active: true,
    name: [humanName(parent.given, parent.family)],
    telecom: phone(parent.phone),
    gender: parent.gender,
    birthDate: parent.birthDate,
  };
  const parentRef = ctx.add(patient, { profile: 'imh-parent', identifier: parentId, clinical: true });

  const infantRefs = infants.map((inf, i) => {
    const identifier = infantIds[i] as Identifier;
    const ref = ctx.add<Patient>(
      {
        resourceType: 'Patient',
        identifier: [identifier],
        active: true,
        name: [humanName(inf.given, inf.family)],
        gender: inf.gender,
        birthDate: inf.birthDate,
      },
      { profile: 'imh-infant', identifier, clinical: true },
    );
    const rid = relatedIds[i] as Identifier;
    ctx.add<RelatedPerson>(
      {
        resourceType: 'RelatedPerson',
        identifier: [rid, { ...parentId }],
        active: true,
        patient: ref,
        relationship: [{ coding: relationship.map((c) => ({ ...c })) }],
        name: [humanName(parent.given, parent.family)],
        telecom: phone(parent.phone),
        gender: parent.gender,
        birthDate: parent.birthDate,
      },
      { profile: 'imh-related-person', identifier: rid, clinical: true },
    );
    return ref;
  });
  return { parent: parentRef, infants: infantRefs };
}

export function mapOrganization(ctx: MappingContext, org: OrganizationInput): Ref {
  const identifier: Identifier = { system: NO.orgNumber, value: org.orgNumber };
  return ctx.add<Organization>(
    {
      resourceType: 'Organization',
      identifier: [identifier, ...(org.reshId ? [{ system: NO.resh, value: org.reshId }] : [])],
      active: true,
      name: org.name,
    },
    { profile: 'imh-organization', identifier, clinical: false },
  );
}

export interface ClinicianRefs {
  practitioner: Ref;
  role?: Ref;
}

/**
 * A clinician as Practitioner (identity: HPR number) and, where the organisation is
 * known, PractitionerRole. A rater given by HPR number alone yields a Practitioner with
 * only its identifier, unless the same person is already in the bundle in full.
 */
export function mapClinician(ctx: MappingContext, c: Clinician | Rater, organization?: Ref, orgNumber?: string): ClinicianRefs {
  const identifier: Identifier = { system: NO.hpr, value: c.hprNumber };
  const practitioner = ctx.add<Practitioner>(
    {
      resourceType: 'Practitioner',
      identifier: [identifier],
      active: true,
      name: c.family && c.given ? [humanName(c.given, c.family)] : undefined,
      telecom: phone(c.phone),
    },
    { profile: 'imh-practitioner', identifier, clinical: false },
  );
  if (!organization || !orgNumber || !c.profession) return { practitioner };
  const roleId = ctx.id('practitioner-role', `${c.hprNumber}@${orgNumber}`);
  const role = ctx.add<PractitionerRole>(
    {
      resourceType: 'PractitionerRole',
      identifier: [roleId],
      active: true,
      practitioner,
      organization,
      code: [{ coding: [coding('profession', c.profession)] }],
      telecom: phone(c.phone),
    },
    { profile: 'imh-practitioner-role', identifier: roleId, clinical: false },
  );
  return { practitioner, role };
}
