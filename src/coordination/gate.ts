/**
 * The gate of the sharing contract (shared contract `sharing.md`, "The gate"): whether anything
 * new may leave the clinic for the parent's primary treatment team at the moment of sending.
 * Pure: the episode, the time and which organisations have a configured target go in.
 */
import type { Episode } from '../domain/episode.ts';

/** Parts of the record a consent may share (episode format: `consent.share`). */
export type ShareClass = NonNullable<NonNullable<Episode['consent']>['share']>[number];

export const SHARE_CLASSES: readonly ShareClass[] = ['attendance', 'focus-areas', 'scores', 'themes', 'risk-flags', 'summary'];

/** Why the gate is closed, as a code (stable, for audit and tests) with words for people. */
export type ClosedReason =
  | 'no-consent'
  | 'consent-declined'
  | 'consent-withdrawn'
  | 'consent-expired'
  | 'consent-not-yet-decided'
  | 'wrong-recipient'
  | 'no-primary-organisation'
  | 'no-target';

export type Gate = { open: true; orgNumber: string; share: ReadonlySet<ShareClass> } | { open: false; reason: ClosedReason; text: string; orgNumber?: string };

const TEXT: Record<ClosedReason, string> = {
  'no-consent': 'the episode has no consent to share with the primary treatment team',
  'consent-declined': 'the parent declined to share with the primary treatment team',
  'consent-withdrawn': 'the parent withdrew the consent to share with the primary treatment team',
  'consent-expired': 'the consent to share with the primary treatment team has expired',
  'consent-not-yet-decided': 'the consent is dated in the future',
  'wrong-recipient': 'the consent does not name the primary treatment team as recipient',
  'no-primary-organisation': 'the episode names no primary treatment organisation',
  'no-target': 'no FHIR server is configured for the primary treatment organisation',
};

/** The calendar day of an ISO date or date-time (`2026-05-04`). */
const dayOf = (s: string): string => s.slice(0, 10);

/**
 * Evaluates the gate at instant `at` (ISO 8601). `hasTarget` says whether a primary target is
 * configured for an organisation number. Dates are compared as calendar days: a consent decided
 * today counts, one that expires today no longer does ("expiresOn … later than now").
 */
export function evaluateGate(episode: Episode, at: string, hasTarget: (orgNumber: string) => boolean): Gate {
  const c = episode.consent;
  const orgNumber = episode.primaryTreatment?.organization.orgNumber;
  const closed = (reason: ClosedReason): Gate => ({ open: false, reason, text: TEXT[reason], ...(orgNumber ? { orgNumber } : {}) });
  if (!c) return closed('no-consent');
  if (c.status === 'declined') return closed('consent-declined');
  if (c.status === 'withdrawn') return closed('consent-withdrawn');
  const today = dayOf(at);
  if (c.status === 'expired' || (c.expiresOn !== undefined && c.expiresOn <= today)) return closed('consent-expired');
  if (c.decidedOn > today) return closed('consent-not-yet-decided');
  if (c.recipient !== 'primary-treatment') return closed('wrong-recipient');
  if (!orgNumber) return closed('no-primary-organisation');
  if (!hasTarget(orgNumber)) return closed('no-target');
  return { open: true, orgNumber, share: new Set(c.share ?? []) };
}

/** What the clinic's own record needs of the gate: whether risk flags go, and if not, why. */
export function clinicSharing(gate: Gate): { riskShared: boolean; reason: string } {
  if (!gate.open) return { riskShared: false, reason: gate.text };
  return gate.share.has('risk-flags') ? { riskShared: true, reason: '' } : { riskShared: false, reason: 'the consent does not include risk flags' };
}
