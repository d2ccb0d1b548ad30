import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { completed, EXAMPLES_DIR, exampleNames } from '../fixtures/examples.ts';

const bin = resolve(import.meta.dirname, '../../bin/imh-bridge.js');
const run = (args: string[], input?: string) => {
  const r = spawnSync(process.execPath, [bin, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const tmp = mkdtempSync(join(tmpdir(), 'imh-cli-'));

describe('imh-bridge CLI', () => {
  it.each(exampleNames())('map %s prints the transaction Bundle and exits 0', (name) => {
    const r = run(['map', join(EXAMPLES_DIR, name)]);
    expect(r.code).toBe(0);
    const b = JSON.parse(r.out);
    expect([b.resourceType, b.type]).toEqual(['Bundle', 'transaction']);
    // and the printed Bundle validates
    const file = join(tmp, `${name}.bundle.json`);
    writeFileSync(file, r.out);
    const v = run(['validate', file]);
    expect(JSON.parse(v.out).issue.filter((i: { severity: string }) => i.severity === 'error')).toEqual([]);
    expect(v.code).toBe(0);
  });

  it('map - reads standard input; bad input prints the OperationOutcome and exits 2', () => {
    const e = completed();
    e.assessments[2].answers['8'] = 1;
    const r = run(['map', '-'], JSON.stringify(e));
    expect(r.code).toBe(2);
    const o = JSON.parse(r.out);
    expect(o.resourceType).toBe('OperationOutcome');
    expect(o.issue[0].expression).toEqual(['/assessments/2/answers/8']);
  });

  it('map exits 2 for a missing file or text that is not JSON', () => {
    expect(run(['map', join(tmp, 'nope.json')]).code).toBe(2);
    expect(run(['map', '-'], 'not json').code).toBe(2);
  });

  it('validate exits 1 with the OperationOutcome for an invalid resource', () => {
    const file = join(tmp, 'bad-patient.json');
    writeFileSync(file, JSON.stringify({ resourceType: 'Patient', birthDate: 'soon' }));
    const r = run(['validate', file]);
    expect(r.code).toBe(1);
    expect(JSON.stringify(JSON.parse(r.out).issue)).toContain('Patient.birthDate');
  });

  it('extract turns a QuestionnaireResponse into scores; outcomes reports change per instrument', () => {
    const mapped = JSON.parse(run(['map', join(EXAMPLES_DIR, 'completed-mother.episode.json')]).out);
    const qr = mapped.entry.find((e: { resource: { resourceType: string } }) => e.resource.resourceType === 'QuestionnaireResponse').resource;
    const x = run(['extract', '-'], JSON.stringify(qr));
    expect(x.code).toBe(0);
    expect(JSON.parse(x.out).entry.map((e: { resource: { resourceType: string } }) => e.resource.resourceType)).toEqual([
      'QuestionnaireResponse',
      'Observation',
    ]);
    expect(run(['extract', '-'], JSON.stringify({ ...qr, questionnaire: 'http://example.org/q' })).code).toBe(2);

    const o = run(['outcomes', join(EXAMPLES_DIR, 'completed-mother.episode.json')]);
    expect(o.code).toBe(0);
    const p = JSON.parse(o.out);
    expect(p.resourceType).toBe('Parameters');
    expect(p.parameter.length).toBeGreaterThanOrEqual(3);
  });

  it('usage errors exit 2', () => {
    expect(run([]).code).toBe(2);
    expect(run(['frobnicate', 'x']).code).toBe(2);
  });
});

describe('imh-bridge share', () => {
  it('prints what the primary team would receive, as the consent allows at --at, and exits 0', () => {
    const r = run(['share', join(EXAMPLES_DIR, 'completed-mother.episode.json'), '--at', '2026-05-10T10:00:00Z']);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/gate open: sharing with 993778125/);
    const b = JSON.parse(r.out);
    expect([b.resourceType, b.type]).toEqual(['Bundle', 'transaction']);
    expect(b.entry.some((e: { resource: { resourceType: string } }) => e.resource.resourceType === 'Encounter')).toBe(true);
    expect(r.out).not.toContain('QuestionnaireResponse');
  });

  it('prints nothing to send for a declined consent, and only cancellations once it has expired', () => {
    const declined = run(['share', join(EXAMPLES_DIR, 'active-father-no-consent.episode.json')]);
    expect(declined.code).toBe(0);
    expect(declined.err).toMatch(/gate closed: the parent declined/);
    expect(JSON.parse(declined.out).entry).toEqual([]);
    const expired = run(['share', join(EXAMPLES_DIR, 'completed-mother.episode.json'), '--at', '2027-02-01']);
    expect(expired.err).toMatch(/gate closed: .*expired/);
    expect(JSON.parse(expired.out).entry.every((e: { request: { method: string } }) => e.request.method === 'PATCH')).toBe(true);
  });

  it('exits 2 with the OperationOutcome for a bad episode, and for a bad --at', () => {
    const bad = run(['share', '-'], '{}');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.out).resourceType).toBe('OperationOutcome');
    expect(run(['share', join(EXAMPLES_DIR, 'completed-mother.episode.json'), '--at', 'tomorrow']).code).toBe(2);
  });
});
