/**
 * The send path's check of what the bridge itself built: every Bundle a job would write (the
 * clinic's, and the one for the parent's primary treatment team) is validated before the job is
 * stored, so a mapping defect is refused at submission and never reaches a FHIR server.
 *
 * What is already known to be valid is not validated again: a Bundle is identified by the mapping
 * version that built it and the SHA-256 of its JSON, and once one passes, the same pair is skipped
 * in this isolate (Worker) or process (Node) — the common case of a journal re-sending an
 * unchanged episode. The memory is bounded (least recently used pairs are forgotten first).
 * https://hl7.org/fhir/R4/validation.html
 */
import type { Bundle, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { issue, OperationOutcomeError, outcome } from '../fhir/outcome.ts';
import { validateFast } from '../fhir/validate-fast.ts';

/** How many (mapping version, content hash) pairs are remembered as valid. */
export const MAX_KNOWN_VALID = 4096;

/** Most issues a refusal lists (their FHIRPath locations only). */
const MAX_LISTED = 20;

const knownValid = new Set<string>();

/** How often the send path validated a Bundle, and how often it skipped one already known valid. */
export const sendValidationStats = { validated: 0, skipped: 0 };

/** Forgets every known-valid Bundle and zeroes {@link sendValidationStats} (tests). */
export function resetSendValidation(): void {
  knownValid.clear();
  sendValidationStats.validated = 0;
  sendValidationStats.skipped = 0;
}

/**
 * Resolves when `bundle` is valid FHIR R4 (and the bridge's profiles); throws a 500
 * OperationOutcomeError otherwise. The refusal names where the Bundle fails (FHIRPath
 * expressions) but never the validator's messages, which may quote the values — patient data.
 */
export async function ensureMappedValid(bundle: Bundle, mappingVersion: string, contentHash: string): Promise<void> {
  const key = `${mappingVersion}|${contentHash}`;
  if (knownValid.has(key)) {
    sendValidationStats.skipped++;
    // Most recently used last: the oldest are the first forgotten.
    knownValid.delete(key);
    knownValid.add(key);
    return;
  }
  sendValidationStats.validated++;
  const result = await validateFast(bundle);
  const errors = (result.issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal');
  if (errors.length) {
    const where = (i: OperationOutcomeIssue): OperationOutcomeIssue => ({
      severity: 'error',
      code: i.code,
      details: { text: `the ${bundle.type ?? ''} Bundle fails validation here` },
      ...(i.expression ? { expression: i.expression } : {}),
    });
    const more = errors.length - MAX_LISTED;
    throw new OperationOutcomeError(
      outcome([
        issue(
          'exception',
          `the bridge built a FHIR Bundle that fails validation (mapping version ${mappingVersion}), so nothing was stored or sent: this is a defect of the bridge, not of the episode; report it with the episode's id`,
        ),
        ...errors.slice(0, MAX_LISTED).map(where),
        ...(more > 0 ? [issue('too-costly', `${more} more location${more === 1 ? '' : 's'} not listed`)] : []),
      ]),
      500,
    );
  }
  knownValid.add(key);
  if (knownValid.size > MAX_KNOWN_VALID) {
    const oldest = knownValid.values().next().value;
    if (oldest !== undefined) knownValid.delete(oldest);
  }
}
