/** `imh-bridge outcomes`: the table a person reads, the Parameters a machine reads, and --help. */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXAMPLES_DIR } from '../fixtures/examples.ts';

const bin = resolve(import.meta.dirname, '../../bin/imh-bridge.js');
const run = (args: string[]) => {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const mother = join(EXAMPLES_DIR, 'completed-mother.episode.json');

describe('imh-bridge outcomes', () => {
  it("--help and -h print the command's usage and exit 0", () => {
    for (const flag of ['--help', '-h']) {
      const r = run(['outcomes', flag]);
      expect(r.code).toBe(0);
      expect(r.out).toContain('imh-bridge outcomes FILE|- [--format fhir|table]');
      expect(r.out).not.toContain('imh-bridge sync');
    }
    expect(run(['map', '--help']).code).toBe(0);
    const unknown = run(['frobnicate', '--help']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown command "frobnicate"');
  });

  it('--format table prints one row per measure with RCI to two decimals and the classification', () => {
    const r = run(['outcomes', mother, '--format', 'table']);
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^instrument\s+measure\s+first\s+latest\s+change\s+RCI\s+classification$/);
    // EPDS, PHQ-9, GAD-7, three PRFQ subscales, PDI-RF.
    expect(lines).toHaveLength(8);
    // PHQ-9 13 → 7: RCI −6 / 1.852 = −3.2397, shown as −3.24; EPDS has a point criterion, no RCI.
    expect(lines.find((l) => l.startsWith('PHQ-9'))).toMatch(/^PHQ-9\s+total\s+13 \(2026-01-12\)\s+7 \(2026-05-04\)\s+−6\s+−3\.24\s+Recovered$/);
    expect(lines.find((l) => l.startsWith('EPDS'))).toMatch(/\s—\s+Recovered$/);
    expect(lines.find((l) => l.includes('prfq-certainty-about-mental-states'))).toMatch(
      /2\.67 \(2026-01-12\)\s+4 \(2026-05-04\)\s+\+1\.33\s+—\s+Not classified$/,
    );
    // No number shown to a person with more than two decimals.
    expect(r.out).not.toMatch(/\d\.\d{3}/);
  });

  it('the default is FHIR Parameters, with no value given to more than two decimals', () => {
    const r = run(['outcomes', mother]);
    expect(r.code).toBe(0);
    const p = JSON.parse(r.out);
    expect(p.resourceType).toBe('Parameters');
    const decimals = [...r.out.matchAll(/"valueDecimal": (-?[\d.]+)/g)].map((m) => m[1] as string);
    expect(decimals.length).toBeGreaterThan(10);
    expect(decimals.filter((d) => /\.\d{3}/.test(d))).toEqual([]);
    const phq = p.parameter.find((o: { part: { name: string; valueString?: string }[] }) =>
      o.part.some((x) => x.name === 'instrument' && x.valueString === 'PHQ-9'),
    );
    expect(phq.part.find((x: { name: string }) => x.name === 'rci').valueDecimal).toBe(-3.24);
  });

  it('an episode with nothing given twice says so in the table; an unknown format exits 2', () => {
    const none = run(['outcomes', join(EXAMPLES_DIR, 'planned-minimal.episode.json'), '--format', 'table']);
    expect([none.code, none.out]).toEqual([0, 'no measure was given twice or more in this episode: nothing to compare\n']);
    const bad = run(['outcomes', mother, '--format', 'csv']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--format must be fhir or table');
  });
});
