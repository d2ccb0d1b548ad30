import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

/**
 * The one error type that crosses the core's edges. It carries a FHIR OperationOutcome
 * (https://hl7.org/fhir/R4/operationoutcome.html) and the HTTP status it maps to.
 */
export class OperationOutcomeError extends Error {
  readonly outcome: OperationOutcome;
  readonly status: number;

  constructor(outcome: OperationOutcome, status = 400) {
    super(outcome.issue?.map((i) => i.diagnostics ?? i.details?.text ?? i.code).join('; ') ?? 'error');
    this.name = 'OperationOutcomeError';
    this.outcome = outcome;
    this.status = status;
  }
}

/** One issue; `pointer` is the JSON pointer into the input, `fhirPath` a FHIR expression where one applies. */
export function issue(
  code: OperationOutcomeIssue['code'],
  message: string,
  pointer?: string,
  severity: OperationOutcomeIssue['severity'] = 'error',
  fhirPath?: string,
): OperationOutcomeIssue {
  const expression = [pointer, fhirPath].filter((e): e is string => e !== undefined);
  return {
    severity,
    code,
    details: { text: message },
    ...(expression.length ? { expression } : {}),
  };
}

export function outcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

export const allOk = (message = 'All OK'): OperationOutcome =>
  outcome([issue('informational', message, undefined, 'information')]);

export function badRequest(message: string, pointer?: string): OperationOutcomeError {
  return new OperationOutcomeError(outcome([issue('invalid', message, pointer)]), 400);
}

export function isOperationOutcomeError(e: unknown): e is OperationOutcomeError {
  return e instanceof OperationOutcomeError;
}

/** True when an OperationOutcome has an issue of severity error or fatal. */
export function hasErrors(o: OperationOutcome): boolean {
  return (o.issue ?? []).some((i) => i.severity === 'error' || i.severity === 'fatal');
}
