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

export const allOk = (message = 'All OK'): OperationOutcome => outcome([issue('informational', message, undefined, 'information')]);

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

/** Most issues one OperationOutcome lists; the rest are counted in a last issue. */
export const MAX_ISSUES = 100;
/** Longest text an issue carries (details.text, diagnostics); longer text is cut. */
export const MAX_ISSUE_TEXT = 2000;

const cut = (s: string | undefined): string | undefined =>
  s === undefined || s.length <= MAX_ISSUE_TEXT ? s : `${s.slice(0, MAX_ISSUE_TEXT)}… (cut: ${s.length - MAX_ISSUE_TEXT} more characters)`;

/**
 * An OperationOutcome that lists at most `max` issues, each with bounded text, then one
 * issue (severity of the worst left out) saying how many more there were: the size of an
 * answer must not grow with what an attacker sends. Errors come before warnings and
 * information, so a cut never hides that the input was refused.
 */
export function capOutcome(o: OperationOutcome, max = MAX_ISSUES): OperationOutcome {
  const issues = o.issue ?? [];
  const rank = (i: OperationOutcomeIssue) => ({ fatal: 0, error: 1, warning: 2, information: 3 })[i.severity] ?? 4;
  const bounded = (i: OperationOutcomeIssue): OperationOutcomeIssue => {
    const text = cut(i.details?.text);
    const diagnostics = cut(i.diagnostics);
    const expression = i.expression && i.expression.length > 10 ? i.expression.slice(0, 10) : i.expression;
    return {
      ...i,
      ...(i.details ? { details: { ...i.details, ...(text !== undefined ? { text } : {}) } } : {}),
      ...(diagnostics !== undefined ? { diagnostics } : {}),
      ...(expression ? { expression: expression.map((e) => cut(e) as string) } : {}),
    };
  };
  if (issues.length <= max) {
    const needsCut = issues.some(
      (i) =>
        (i.details?.text?.length ?? 0) > MAX_ISSUE_TEXT ||
        (i.diagnostics?.length ?? 0) > MAX_ISSUE_TEXT ||
        (i.expression?.length ?? 0) > 10 ||
        i.expression?.some((e) => e.length > MAX_ISSUE_TEXT),
    );
    return needsCut ? { ...o, issue: issues.map(bounded) } : o;
  }
  // Stable sort by severity: the order within a severity is kept.
  const ordered = issues
    .map((i, k) => [i, k] as const)
    .sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1])
    .map(([i]) => i);
  const kept = ordered.slice(0, max).map(bounded);
  const rest = ordered.slice(max);
  const worst = rest.reduce((w, i) => (rank(i) < rank(w) ? i : w), rest[0] as OperationOutcomeIssue);
  const errors = rest.filter((i) => i.severity === 'error' || i.severity === 'fatal').length;
  return {
    ...o,
    issue: [
      ...kept,
      issue(
        'too-costly',
        `${rest.length} more issue${rest.length === 1 ? '' : 's'} (${errors} of them error${errors === 1 ? '' : 's'}) not listed: an answer lists at most ${max}`,
        undefined,
        worst.severity,
      ),
    ],
  };
}
