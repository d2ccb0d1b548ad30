/**
 * FHIR's JSON representation (https://hl7.org/fhir/R4/json.html): its media type, and the test
 * for a JSON object that every reader of untrusted JSON uses before looking inside.
 */

/** The FHIR JSON media type (https://hl7.org/fhir/R4/http.html#mime-type). */
export const FHIR_JSON = 'application/fhir+json';

/** A JSON object: not null, not an array. */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
