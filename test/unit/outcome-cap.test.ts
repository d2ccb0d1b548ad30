/** capOutcome: what an answer keeps when an OperationOutcome has too many or too long issues. */
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { capOutcome, hasErrors, issue, MAX_ISSUE_TEXT, MAX_ISSUES, outcome } from '../../src/fhir/outcome.ts';

const many = (n: number, severity: OperationOutcomeIssue['severity']) =>
  Array.from({ length: n }, (_, i) => issue('invalid', `${severity} ${i}`, `/x/${i}`, severity));

describe('capOutcome', () => {
  it('leaves a small outcome as it is (the same object)', () => {
    const o = outcome(many(MAX_ISSUES, 'error'));
    expect(capOutcome(o)).toBe(o);
  });

  it('keeps errors before warnings when it cuts, in their order, and counts the rest', () => {
    const o = outcome([...many(150, 'warning'), ...many(120, 'error')]);
    const c = capOutcome(o);
    expect(c.issue).toHaveLength(MAX_ISSUES + 1);
    expect(c.issue.slice(0, 3).map((i) => i.details?.text)).toEqual(['error 0', 'error 1', 'error 2']);
    expect(c.issue.slice(0, MAX_ISSUES).every((i) => i.severity === 'error')).toBe(true);
    expect(c.issue[MAX_ISSUES]).toMatchObject({
      severity: 'error',
      code: 'too-costly',
      details: { text: '170 more issues (20 of them errors) not listed: an answer lists at most 100' },
    });
    expect(hasErrors(c)).toBe(true);
  });

  it('says so at warning level when only warnings were left out', () => {
    const c = capOutcome(outcome([...many(1, 'error'), ...many(5, 'warning')]), 3);
    expect(c.issue[3]).toMatchObject({ severity: 'warning', details: { text: '3 more issues (0 of them errors) not listed: an answer lists at most 3' } });
  });

  it('cuts long texts and long expression lists', () => {
    const long = {
      ...issue('invalid', 'x'.repeat(10_000)),
      diagnostics: 'y'.repeat(MAX_ISSUE_TEXT + 1),
      expression: Array.from({ length: 50 }, (_, i) => `E${i}`),
    };
    const [c] = capOutcome(outcome([long])).issue;
    expect(c?.details?.text).toHaveLength(MAX_ISSUE_TEXT + '… (cut: 8000 more characters)'.length);
    expect(c?.details?.text?.endsWith('… (cut: 8000 more characters)')).toBe(true);
    expect(c?.diagnostics?.endsWith('… (cut: 1 more characters)')).toBe(true);
    expect(c?.expression).toHaveLength(10);
  });
});
