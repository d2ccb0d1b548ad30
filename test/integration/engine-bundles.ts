/**
 * What the delivery engine sends to the clinic's own server for an episode where no primary
 * treatment target is configured: the mapping with the sharing gate's verdict (a positive
 * self-harm item that is not shared becomes a Task for the therapist), and whether the send is
 * a refusal because of consent (audited on the clinic's server, one AuditEvent per send).
 */
import type { Bundle } from '@medplum/fhirtypes';
import { clinicSharing, evaluateGate } from '../../src/coordination/gate.ts';
import { parseEpisode } from '../../src/domain/parse.ts';
import { DEV_IDENTITY } from '../../src/fhir/identity.ts';
import { mapParsedEpisode } from '../../src/mapping/bundle.ts';

const CONSENT_REFUSALS = new Set(['consent-declined', 'consent-withdrawn', 'consent-expired', 'consent-not-yet-decided']);

export function clinicBundle(input: unknown, at: string = new Date().toISOString()): Bundle {
  const e = parseEpisode(input, { allowSyntheticIds: true });
  return mapParsedEpisode(e, DEV_IDENTITY, clinicSharing(evaluateGate(e, at, () => false)));
}

export function isConsentRefusal(input: unknown, at: string = new Date().toISOString()): boolean {
  const e = parseEpisode(input, { allowSyntheticIds: true });
  const gate = evaluateGate(e, at, () => false);
  return !gate.open && CONSENT_REFUSALS.has(gate.reason) && !!e.primaryTreatment;
}
