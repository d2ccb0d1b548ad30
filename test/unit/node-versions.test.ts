/**
 * The Node version story the README tells: the machine needs Node 20 or newer (devEngines),
 * everything runs on the Node 22 the project installs (the `node` devDependency, which satisfies
 * `engines`), and npm's EBADENGINE warnings about dependencies that declare Node 22 are quieted
 * by .npmrc, as the README says.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const npmrc = readFileSync(join(root, '.npmrc'), 'utf8');

/** [major, minor, patch] of "v22.18.0", "22.18", ">=22.18". */
const version = (v: string) => (v.match(/\d+(\.\d+){0,2}/)?.[0] ?? '').split('.').map(Number);
const atLeast = (v: number[], min: number[]) => {
  for (let i = 0; i < 3; i++) if ((v[i] ?? 0) !== (min[i] ?? 0)) return (v[i] ?? 0) > (min[i] ?? 0);
  return true;
};

describe('Node versions', () => {
  it('the machine needs Node 20 or newer, as the README says', () => {
    expect(pkg.devEngines.runtime).toEqual({ name: 'node', version: '>=20', onFail: 'error' });
    expect(readme).toContain('Node 20 or newer and npm on the machine');
  });

  it('the bundled Node satisfies engines, and the tests run on it', () => {
    expect(pkg.engines.node).toMatch(/^>=\d+(\.\d+)*$/);
    const bundled = lock.packages['node_modules/node'].version as string;
    expect(pkg.devDependencies.node).toBeDefined();
    expect(atLeast(version(bundled), version(pkg.engines.node))).toBe(true);
    expect(atLeast(version(process.version), version(pkg.engines.node)), `tests run on ${process.version}`).toBe(true);
  });

  it('.npmrc quiets npm warnings, and the README says why and how to see them', () => {
    const settings = npmrc.split('\n').filter((l) => l.trim() && !/^\s*[#;]/.test(l));
    expect(settings).toEqual(['loglevel=error']);
    expect(readme).toContain('`.npmrc` sets `loglevel=error`');
    expect(readme).toContain('npm ci --loglevel=warn');
  });
});
