/**
 * How each kind of resource is written to a FHIR server: the one place that decides it.
 *
 * - Resources an episode owns (sessions, scores, goals, the episode of care …) are written by
 *   conditional update, `PUT Type?identifier=system|value`: the bridge is their source, a
 *   re-send replaces them with the journal's current state
 *   (https://hl7.org/fhir/R4/http.html#cond-update).
 * - Master data that other systems own or that several episodes share (people, clinicians,
 *   organisations) is only created when absent, by conditional create,
 *   `POST Type` + `If-None-Exist: identifier=system|value`
 *   (https://hl7.org/fhir/R4/http.html#ccreate). When it exists, the server resolves the
 *   entry's fullUrl to it and the bridge never replaces it; delivery may add what it lacks
 *   with JSON Patch (src/sync/apply.ts), never remove or change what it has.
 */
import type { BundleEntryRequest, Identifier } from '@medplum/fhirtypes';

/** Resource types written create-if-absent and never replaced, retracted or deleted. */
export const MASTER_DATA_TYPES: ReadonlySet<string> = new Set(['Patient', 'Practitioner', 'PractitionerRole', 'Organization', 'RelatedPerson']);

/**
 * Resources written create-if-absent that are not master data: coordination requests (Task)
 * to another organisation, which that organisation acts on. Once there, the bridge never
 * overwrites them; it reads their status back.
 */
export const CREATE_ONLY_TYPES: ReadonlySet<string> = new Set(['Task']);

/** True for master data (see MASTER_DATA_TYPES). */
export const isMasterData = (resourceType: string): boolean => MASTER_DATA_TYPES.has(resourceType);

/** `identifier=system|value`, URL-encoded as a search parameter value. */
export const identifierQuery = (identifier: Identifier): string =>
  `identifier=${encodeURIComponent(identifier.system ?? '')}|${encodeURIComponent(identifier.value ?? '')}`;

/** The transaction entry request that writes a resource of this type with this business identifier. */
export function writeRequest(resourceType: string, identifier: Identifier): BundleEntryRequest {
  const query = identifierQuery(identifier);
  return isMasterData(resourceType) || CREATE_ONLY_TYPES.has(resourceType)
    ? { method: 'POST', url: resourceType, ifNoneExist: query }
    : { method: 'PUT', url: `${resourceType}?${query}` };
}
