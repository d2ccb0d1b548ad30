/**
 * Stored episodes: the latest version of each episode a tenant submitted, which the coordination
 * summary is built from (`GET /v1/episodes/{id}/summary`, the SMART launch). Patient data, so a
 * durable store keeps it only encrypted (src/sync/crypto.ts), and only as long as it is needed:
 *
 * - while the episode is `planned` or `active` (guidance still runs: the summary is still asked
 *   for), or while its consent is valid (`active` and not expired: the primary team may still open
 *   the summary from their EHR);
 * - after that, for BUNDLE_RETENTION_DAYS like every other piece of patient data the bridge holds
 *   (the job Bundles, src/sync/sweep.ts), then it is purged.
 *
 * What finds a stored episode stays in clear: tenant, episode key and the parent's person key, a
 * keyed pseudonym of the national id (the same person across clinics and tenants, never the id).
 */
import type { Episode } from '../domain/episode.ts';
import { type IdentityOptions, pseudonym } from '../fhir/identity.ts';

/**
 * The key that finds a parent's stored episodes across tenants: an HMAC pseudonym of the national
 * id under IDENTITY_SECRET (src/fhir/identity.ts), so the index reveals no national id.
 */
export function personKey(identity: IdentityOptions, nationalId: string): string {
  return pseudonym(identity, `person|${nationalId}`);
}

/** Episode states in which guidance runs: the stored episode is kept whatever its consent says. */
const RUNNING: ReadonlySet<Episode['status']> = new Set(['planned', 'active']);

/**
 * Until when a stored episode is kept, before its retention period starts: undefined while it is
 * kept without end (the episode is planned or active, or its consent is active without an expiry
 * date); else the later of when it was stored and the day its active consent expires (a consent
 * expires at the start of its `expiresOn` day, as the sharing gate reads it). The purge deletes it
 * BUNDLE_RETENTION_DAYS after that moment; a later send of the episode starts it afresh.
 */
export function episodeKeptUntil(e: Episode, storedAt: string): string | undefined {
  if (RUNNING.has(e.status)) return undefined;
  const c = e.consent;
  if (c?.status === 'active') {
    if (!c.expiresOn) return undefined;
    const expires = new Date(`${c.expiresOn.slice(0, 10)}T00:00:00Z`).toISOString();
    return expires > storedAt ? expires : storedAt;
  }
  return storedAt;
}

/** The episode id of an episode key (`{clinic org number}/{episodeId}`). */
export const episodeIdOf = (episodeKey: string): string => episodeKey.slice(episodeKey.indexOf('/') + 1);
