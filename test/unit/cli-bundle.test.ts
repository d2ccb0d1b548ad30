/**
 * The CLI as `npm ci` builds it (scripts/build-cli.ts, an esbuild bundle) and how
 * bin/imh-bridge.js chooses between that bundle and the TypeScript sources
 * (bin/cli-bundle.js): the bundle answers exactly as the sources do, needs no TypeScript at
 * run time, and is never run once a file it was built from has changed.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain JavaScript next to the bin script, without type declarations.
import { freshBundle } from '../../bin/cli-bundle.js';
import { EXAMPLES_DIR, exampleNames } from '../fixtures/examples.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'imh-cli-bundle-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const node = (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) => {
  const r = spawnSync(process.execPath, args, { input: opts.input, encoding: 'utf8', timeout: 60_000, env: opts.env ?? process.env });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('freshBundle: which build of the CLI runs', () => {
  const root = join(tmp, 'root');
  const rootUrl = pathToFileURL(`${root}/`);
  const source = join(root, 'src', 'a.ts');
  const record = () => {
    const s = statSync(source);
    writeFileSync(join(root, 'dist', 'cli', 'inputs.json'), JSON.stringify({ inputs: { 'src/a.ts': [s.size, s.mtimeMs] } }));
  };
  beforeAll(() => {
    mkdirSync(join(root, 'src'), { recursive: true });
    mkdirSync(join(root, 'dist', 'cli'), { recursive: true });
  });

  it('the bundle while every input is as recorded', () => {
    writeFileSync(source, 'export const a = 1;\n');
    record();
    expect(freshBundle(rootUrl, {})).toBe(new URL('dist/cli/cli.mjs', rootUrl).href);
  });

  it('the sources once an input changed its content, its time, or is gone', () => {
    writeFileSync(source, 'export const a = 1;\n');
    record();
    writeFileSync(source, 'export const a = 22;\n');
    expect(freshBundle(rootUrl, {})).toBeUndefined();
    record();
    const later = new Date(statSync(source).mtimeMs + 5_000);
    utimesSync(source, later, later); // same size, another time: an edit of the same length
    expect(freshBundle(rootUrl, {})).toBeUndefined();
    record();
    rmSync(source);
    expect(freshBundle(rootUrl, {})).toBeUndefined();
  });

  it('the sources without a bundle, with an unreadable record, or when IMH_BRIDGE_FROM_SOURCE=1', () => {
    writeFileSync(source, 'export const a = 1;\n');
    record();
    expect(freshBundle(rootUrl, { IMH_BRIDGE_FROM_SOURCE: '1' })).toBeUndefined();
    writeFileSync(join(root, 'dist', 'cli', 'inputs.json'), '{"inputs": {}}');
    expect(freshBundle(rootUrl, {})).toBeUndefined();
    writeFileSync(join(root, 'dist', 'cli', 'inputs.json'), 'not json');
    expect(freshBundle(rootUrl, {})).toBeUndefined();
    rmSync(join(root, 'dist'), { recursive: true });
    expect(freshBundle(rootUrl, {})).toBeUndefined();
  });

  it('bin/imh-bridge.js follows it: the bundle when fresh, the sources after an edit', () => {
    const app = join(tmp, 'app');
    mkdirSync(join(app, 'bin'), { recursive: true });
    mkdirSync(join(app, 'src'), { recursive: true });
    mkdirSync(join(app, 'dist', 'cli'), { recursive: true });
    for (const f of ['imh-bridge.js', 'cli-bundle.js']) copyFileSync(join(ROOT, 'bin', f), join(app, 'bin', f));
    writeFileSync(join(app, 'package.json'), '{"type":"module"}\n');
    writeFileSync(join(app, 'src', 'cli.ts'), "console.log('sources');\n");
    writeFileSync(join(app, 'dist', 'cli', 'cli.mjs'), "console.log('bundle');\n");
    const s = statSync(join(app, 'src', 'cli.ts'));
    writeFileSync(join(app, 'dist', 'cli', 'inputs.json'), JSON.stringify({ inputs: { 'src/cli.ts': [s.size, s.mtimeMs] } }));
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' };
    delete env.IMH_BRIDGE_FROM_SOURCE;
    expect(node([join(app, 'bin', 'imh-bridge.js')], { env }).out).toBe('bundle\n');
    writeFileSync(join(app, 'src', 'cli.ts'), "console.log('sources!');\n");
    expect(node([join(app, 'bin', 'imh-bridge.js')], { env }).out).toBe('sources!\n');
  });

  it("keeps Node's compile cache in node_modules/.cache, or where NODE_COMPILE_CACHE says", () => {
    const app = join(tmp, 'app'); // the project the test above made
    const inProject = join(app, 'node_modules', '.cache', 'imh-bridge-compile-cache');
    const elsewhere = join(tmp, 'compile-cache');
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NODE_DISABLE_COMPILE_CACHE;
    delete env.NODE_COMPILE_CACHE;
    expect(node([join(app, 'bin', 'imh-bridge.js')], { env }).code).toBe(0);
    expect(readdirSync(inProject).length).toBeGreaterThan(0);
    rmSync(inProject, { recursive: true });
    expect(node([join(app, 'bin', 'imh-bridge.js')], { env: { ...env, NODE_COMPILE_CACHE: elsewhere } }).code).toBe(0);
    expect(readdirSync(elsewhere).length).toBeGreaterThan(0);
    expect(existsSync(inProject)).toBe(false);
  });
});

describe('the bundle scripts/build-cli.ts builds', () => {
  const out = join(tmp, 'dist');
  const bundle = join(out, 'cli.mjs');
  // No type stripping: a bundle that still imported a .ts file would fail here.
  const fromBundle = (args: string[], input?: string) => node(['--no-experimental-strip-types', bundle, ...args], { input });
  const fromSource = (args: string[], input?: string) =>
    node([join(ROOT, 'bin', 'imh-bridge.js'), ...args], { input, env: { ...process.env, IMH_BRIDGE_FROM_SOURCE: '1' } });

  beforeAll(() => {
    const r = node([join(ROOT, 'scripts', 'build-cli.ts'), '--outdir', out]);
    expect(r.code, r.err).toBe(0);
  }, 120_000);

  it('records every file it was built from, the sources and the generated validators among them', () => {
    const { inputs } = JSON.parse(readFileSync(join(out, 'inputs.json'), 'utf8')) as { inputs: Record<string, [number, number]> };
    expect(Object.keys(inputs)).toEqual(
      expect.arrayContaining(['src/cli.ts', 'src/mapping/bundle.ts', 'src/generated/validators.ts', 'src/domain/episode.ts']),
    );
    for (const [file, [size]] of Object.entries(inputs)) expect(statSync(join(ROOT, file)).size, file).toBe(size);
  });

  it.each(exampleNames())('map %s, and validate what it prints: the same bytes and exit codes as the sources', (name) => {
    const a = fromBundle(['map', join(EXAMPLES_DIR, name)]);
    const b = fromSource(['map', join(EXAMPLES_DIR, name)]);
    expect([a.code, a.err]).toEqual([0, '']);
    expect(a.out).toBe(b.out);
    const file = join(tmp, `${name}.bundle.json`);
    writeFileSync(file, a.out);
    const v = fromBundle(['validate', file]);
    expect(v.code).toBe(0);
    expect(v.out).toBe(fromSource(['validate', file]).out);
  });

  it('an invalid resource (the reference validator, loaded on demand) and bad input answer as from the sources', () => {
    const bad = JSON.stringify({ resourceType: 'Patient', birthDate: 'soon' });
    const a = fromBundle(['validate', '-'], bad);
    expect(a.code).toBe(1);
    expect(a.out).toContain('Patient.birthDate');
    expect(a.out).toBe(fromSource(['validate', '-'], bad).out);
    const c = fromBundle(['map', '-'], 'not json');
    expect(c.code).toBe(2);
    expect(c.out).toBe(fromSource(['map', '-'], 'not json').out);
    expect(fromBundle(['nonsense']).code).toBe(2);
  });
});
