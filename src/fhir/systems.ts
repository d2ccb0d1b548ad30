/**
 * Canonical URLs and identifier systems used by every artefact the bridge publishes or emits.
 * One place, so that profiles, mappings and code agree on them.
 */

/** Base of every canonical URL the bridge publishes (profiles, CodeSystems, Questionnaires). */
export const CANONICAL_BASE = 'https://imh-bridge.example.no/fhir';

/** HL7 Norway identifier systems. https://hl7norway.github.io/basisprofiler-r4/ */
export const NO = {
  fnr: 'urn:oid:2.16.578.1.12.4.1.4.1',
  dnr: 'urn:oid:2.16.578.1.12.4.1.4.2',
  hpr: 'urn:oid:2.16.578.1.12.4.1.4.4',
  orgNumber: 'urn:oid:2.16.578.1.12.4.1.2.101',
  resh: 'urn:oid:2.16.578.1.12.4.1.2.102',
} as const;

export const LOINC = 'http://loinc.org';
export const ICD10 = 'http://hl7.org/fhir/sid/icd-10';
export const UCUM = 'http://unitsofmeasure.org';

/** StructureDefinition canonical URL of one of our profiles or extensions. */
export const profileUrl = (id: string): string => `${CANONICAL_BASE}/StructureDefinition/${id}`;

/** CodeSystem canonical URL of one of our CodeSystems in `mappings/`. */
export const codeSystemUrl = (id: string): string => `${CANONICAL_BASE}/CodeSystem/${id}`;

/** Questionnaire canonical URL (published with the instrument definitions). */
export const questionnaireUrl = (id: string): string => `${CANONICAL_BASE}/Questionnaire/${id}`;

/** Security labels for resources that carry mental-health information. */
export const SECURITY = {
  restricted: {
    system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality',
    code: 'R',
    display: 'restricted',
  },
  psychiatry: {
    system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
    code: 'PSY',
    display: 'psychiatry disorder information sensitivity',
  },
  /** The highest confidentiality (v3-Confidentiality V), for psychotherapy notes. */
  veryRestricted: {
    system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality',
    code: 'V',
    display: 'very restricted',
  },
  /** v3-ActCode PSYTHPN: policy for handling psychotherapy note information. */
  psychotherapyNote: {
    system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
    code: 'PSYTHPN',
    display: 'psychotherapy note information sensitivity',
  },
} as const;
