/**
 * The fast path stays light: the reference validator (@medplum/core and the definitions) is
 * evaluated only when a value is undecided, also inside a single esbuild bundle as the Worker
 * ships it (esbuild turns the dynamic import into a lazy initialiser), and the local
 * deepEquals/deepIncludes that replaced @medplum/core's give the same answers.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deepEquals as medplumEquals, deepIncludes as medplumIncludes } from '@medplum/core';
import { build } from 'esbuild';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { validateFhir } from '../../src/fhir/validate.ts';
import { deepEquals, deepIncludes, primitive, Unsure } from '../../src/fhir/validate-fast-runtime.ts';
import { mapEpisode } from '../../src/mapping/bundle.ts';
import { completed } from '../fixtures/examples.ts';

const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'imh-lazy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the reference validator is loaded only for undecided values', () => {
  it('a single-file bundle (as the Worker) evaluates neither validate.ts nor @medplum/core for a valid Bundle, and does for an invalid one, with the same outcome', async () => {
    const entry = join(dir, 'entry.ts');
    writeFileSync(
      entry,
      `import { validateFast, referenceRequested } from ${JSON.stringify(join(root, 'src/fhir/validate-fast.ts'))};
import { readFileSync } from 'node:fs';
const [valid, invalid] = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const seen = () => [...(globalThis.__evaluated ?? [])];
const out = { atStart: seen() };
out.valid = await validateFast(valid);
out.afterValid = seen();
out.requested = referenceRequested();
out.invalid = await validateFast(invalid);
out.afterInvalid = seen();
process.stdout.write(JSON.stringify(out));
`,
    );
    // Marks the evaluation of the modules that must stay lazy.
    const mark = (name: string) => `(globalThis.__evaluated ??= []).push(${JSON.stringify(name)});\n`;
    await build({
      entryPoints: [entry],
      bundle: true,
      splitting: false,
      format: 'esm',
      platform: 'node',
      outfile: join(dir, 'out.mjs'),
      logLevel: 'error',
      nodePaths: [join(root, 'node_modules')],
      plugins: [
        {
          name: 'mark-evaluation',
          setup(b) {
            b.onLoad({ filter: /src[\\/]fhir[\\/]validate\.ts$/ }, async (args) => {
              const { readFile } = await import('node:fs/promises');
              return { contents: mark('validate.ts') + (await readFile(args.path, 'utf8')), loader: 'ts' };
            });
            b.onLoad({ filter: /@medplum[\\/]core[\\/]dist[\\/]esm[\\/]index\.mjs$/ }, async (args) => {
              const { readFile } = await import('node:fs/promises');
              return { contents: mark('@medplum/core') + (await readFile(args.path, 'utf8')), loader: 'js' };
            });
          },
        },
      ],
    });
    const valid = mapEpisode(completed());
    const invalid = structuredClone(valid) as { entry: { resource: { resourceType: string; active?: unknown } }[] };
    const org = invalid.entry.find((e) => e.resource.resourceType === 'Organization');
    if (!org) throw new Error('no Organization in the completed example');
    org.resource.active = 'yes';
    const input = join(dir, 'input.json');
    writeFileSync(input, JSON.stringify([valid, invalid]));
    const r = spawnSync(process.execPath, [join(dir, 'out.mjs'), input], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.atStart).toEqual([]);
    expect(out.valid.issue).toEqual([expect.objectContaining({ severity: 'information' })]);
    expect(out.afterValid).toEqual([]);
    expect(out.requested).toBe(false);
    expect(out.afterInvalid.sort()).toEqual(['@medplum/core', 'validate.ts']);
    expect(out.invalid).toEqual(validateFhir(invalid as never));
    expect(out.invalid.issue.some((i: { severity: string }) => i.severity === 'error')).toBe(true);
  }, 60_000);
});

describe("deepEquals and deepIncludes answer as @medplum/core's", () => {
  // Small JSON values with many collisions, so that equal and included pairs are common.
  const leaf = fc.constantFrom<unknown>('', 'a', 'b', 0, 1, true, false, null, [], {});
  const json = fc.letrec<{ v: unknown }>((tie) => ({
    v: fc.oneof(
      { depthSize: 'small' },
      leaf,
      fc.array(tie('v'), { maxLength: 3 }),
      fc.dictionary(fc.constantFrom('a', 'b', 'meta', 'versionId', 'constructor'), tie('v'), { maxKeys: 3 }),
    ),
  })).v;
  const pair = fc.oneof(
    fc.tuple(json, json),
    json.map((v) => [v, structuredClone(v)] as [unknown, unknown]),
  );

  it('on random pairs (fast-check)', () => {
    fc.assert(
      fc.property(pair, ([a, b]) => {
        expect(deepEquals(a, b)).toBe(medplumEquals(a, b));
        expect(deepIncludes(a, b)).toBe(medplumIncludes(a, b));
        const typed = { type: 'CodeableConcept', value: a };
        const spec = { type: 'CodeableConcept', value: b };
        expect(deepEquals(typed, spec)).toBe(medplumEquals(typed, spec));
        expect(deepIncludes(typed, spec)).toBe(medplumIncludes(typed, spec));
      }),
      { numRuns: 3000 },
    );
  });

  it('on the cases that matter for fixed and pattern values', () => {
    const coding = { system: 'http://loinc.org', code: '1' };
    expect(deepIncludes({ coding: [{ ...coding, display: 'x' }] }, { coding: [coding] })).toBe(true);
    expect(deepIncludes({ coding: [{ system: 'http://loinc.org', code: '2' }] }, { coding: [coding] })).toBe(false);
    expect(deepEquals({ meta: { versionId: '1', tag: [coding] } }, { meta: { tag: [coding] } })).toBe(true);
    expect(deepEquals({ a: { versionId: '1' } }, { a: {} })).toBe(false);
    // Empty values are equal to absent ones inside objects, not a non-empty object to {}.
    expect(deepEquals({ a: '' }, { b: {} })).toBe(true);
    expect(deepEquals({ a: '' }, {})).toBe(false);
  });
});

describe('primitive string checks answer as the general path', () => {
  // The general path, as regular expressions: non-blank, at most 1 MiB, inside R4's string
  // rule (strings.ts), and the type's format.
  const NOT_BLANK = /\S/;
  const OUTSIDE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
  const FORMAT: Record<string, RegExp> = {
    string: /^[\r\n\t\u0020-\uFFFF]+$/,
    markdown: /^[\r\n\t\u0020-\uFFFF]+$/,
    uri: /^\S*$/,
    code: /^[^\s]+( [^\s]+)*$/,
    id: /^[A-Za-z0-9\-.]{1,64}$/,
    time: /^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?$/,
  };
  const general = (s: string, type: string): boolean => NOT_BLANK.test(s) && s.length <= 1024 * 1024 && !OUTSIDE.test(s) && (FORMAT[type] as RegExp).test(s);
  const accepted = (s: string, type: string): boolean => {
    try {
      primitive(s, type, 'x');
      return true;
    } catch (e) {
      if (e instanceof Unsure) return false;
      throw e;
    }
  };

  it('on random strings of interesting code units (fast-check)', () => {
    const unit = fc.oneof(
      fc.constantFrom(
        0x00,
        0x08,
        0x09,
        0x0a,
        0x0b,
        0x0c,
        0x0d,
        0x1f,
        0x20,
        0x2d,
        0x2e,
        0x30,
        0x3a,
        0x41,
        0x61,
        0x7f,
        0x85,
        0xa0,
        0xe6,
        0x2003,
        0x3000,
        0xd83d,
        0xde00,
        0xfeff,
      ),
      fc.integer({ min: 0, max: 0xffff }),
    );
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 10 }), fc.constantFrom(...Object.keys(FORMAT)), (codes, type) => {
        const s = String.fromCharCode(...codes);
        expect(accepted(s, type)).toBe(general(s, type));
      }),
      { numRuns: 8000 },
    );
    for (const type of Object.keys(FORMAT)) {
      for (const s of ['a', ' a', 'a b', 'a  b', 'Ødegård 😀', '\ud83d', 'a\u000b', '\u00a0', '12:30:00', 'x'.repeat(1024 * 1024 + 1)])
        expect([type, s.slice(0, 12), accepted(s, type)]).toEqual([type, s.slice(0, 12), general(s, type)]);
    }
  });
});
