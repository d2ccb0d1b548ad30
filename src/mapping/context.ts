/**
 * The mapping state of one parsed episode: the Bundle scope (fhir/bundle-scope.ts) with the
 * episode beside it, and the date arithmetic the episode's resources need.
 */
import type { Episode } from '../domain/episode.ts';
import { BundleScope } from '../fhir/bundle-scope.ts';
import { DEV_IDENTITY, type IdentityOptions } from '../fhir/identity.ts';

/** The scope of one parsed episode. */
export class MappingContext extends BundleScope {
  readonly episode: Episode;

  constructor(episode: Episode, identity: IdentityOptions = DEV_IDENTITY) {
    super(episode.clinic.orgNumber, episode.episodeId, identity);
    this.episode = episode;
  }
}

/** Adds minutes to an ISO date-time and writes the result in the same UTC offset. */
export function addMinutes(dateTime: string, minutes: number): string {
  const m = /(Z|[+-]\d{2}:\d{2})$/.exec(dateTime);
  const offset = m?.[1] ?? 'Z';
  const offsetMin = offset === 'Z' ? 0 : (offset.startsWith('-') ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  const local = new Date(Date.parse(dateTime) + (minutes + offsetMin) * 60_000);
  const iso = local.toISOString().slice(0, 19);
  return `${iso}${offset === 'Z' ? 'Z' : offset}`;
}
