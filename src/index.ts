/** Package entry: the pure core of the bridge. */

export type { Episode } from './domain/episode.ts';
export { parseEpisode } from './domain/parse.ts';
export { OperationOutcomeError } from './fhir/outcome.ts';
export { MAPPING_VERSION, mapEpisode, mapParsedEpisode } from './mapping/bundle.ts';
