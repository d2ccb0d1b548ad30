/** Package entry: the pure core of the bridge. */
export { mapEpisode, mapParsedEpisode, MAPPING_VERSION } from './mapping/bundle.ts';
export { parseEpisode } from './domain/parse.ts';
export { OperationOutcomeError } from './fhir/outcome.ts';
export type { Episode } from './domain/episode.ts';
