/**
 * Every command the README shows must run as written from a fresh clone. The `npx imh-bridge`
 * lines that need no server are run, in README order, in a scratch directory that has the
 * repository's examples/ (so `> bundle.json` lands there); every file a README command names
 * (`examples/…`, `@file`) must exist.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const bin = join(root, 'bin/imh-bridge.js');

/** The lines of the README's shell code blocks, with `\` continuations joined. */
function shellLines(markdown: string): string[] {
  const lines: string[] = [];
  for (const block of markdown.matchAll(/^```sh\n([\s\S]*?)^```/gm)) {
    const body = (block[1] as string).replace(/\\\n\s*/g, ' ');
    lines.push(
      ...body
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#')),
    );
  }
  return lines;
}

/** Commands that need a running server or a network target: their files are checked, they are not run. */
const NEEDS_SERVER = /^npx imh-bridge (sync|coordination|sandbox)\b/;
/** Placeholders such as `[--format json]` or `CLINIC_URL` mean the line is a synopsis, not a command. */
const SYNOPSIS = /\[--|\b[A-Z]+_URL\b|…/;

const lines = shellLines(readme);
const cliLines = lines.filter((l) => l.includes('npx imh-bridge'));
const runnable = cliLines
  .filter((l) => l.startsWith('npx imh-bridge') && !NEEDS_SERVER.test(l) && !SYNOPSIS.test(l))
  .concat(cliLines.filter((l) => !l.startsWith('npx imh-bridge') && / \| npx imh-bridge /.test(l)));
const produced = new Set(runnable.flatMap((l) => [...l.matchAll(/>\s*([\w./-]+)/g)].map((m) => m[1] as string)));

describe('README commands', () => {
  it('shows the CLI commands a newcomer needs, from map to summary', () => {
    for (const command of ['map', 'validate', 'extract', 'outcomes', 'share', 'summary']) {
      expect(
        runnable.some((l) => l.includes(`npx imh-bridge ${command} `)),
        `no runnable "npx imh-bridge ${command}" line`,
      ).toBe(true);
    }
  });

  it('names only files that exist in the repository or that an earlier command writes', () => {
    const named = lines.flatMap((l) =>
      [...l.matchAll(/(?:^|[\s@])((?:examples|docs|profiles|mappings)\/[\w./-]+|[\w-]+\.(?:json|ndjson|html))\b/g)].map((m) => m[1] as string),
    );
    expect(named.length).toBeGreaterThan(5);
    const missing = named.filter((f) => !existsSync(join(root, f)) && !produced.has(f));
    expect(missing).toEqual([]);
  });

  it('every npx imh-bridge command that needs no server runs as written and exits 0', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'imh-readme-'));
    symlinkSync(join(root, 'examples'), join(cwd, 'examples'));
    expect(runnable.length).toBeGreaterThanOrEqual(8);
    for (const line of runnable) {
      // `npx imh-bridge` resolves to this checkout's bin; the shell does the pipes and redirections.
      const command = line.replaceAll('npx imh-bridge', `"${process.execPath}" "${bin}"`);
      const r = spawnSync('/bin/sh', ['-c', command], { cwd, encoding: 'utf8', timeout: 60_000, env: { ...process.env, BRIDGE_PRIVATE_JWKS: '' } });
      expect({ line, status: r.status, stderr: r.status === 0 ? '' : r.stderr.slice(0, 2000) }).toEqual({ line, status: 0, stderr: '' });
    }
    for (const f of produced) expect(existsSync(join(cwd, f)), `${f} was not written`).toBe(true);
  }, 300_000);
});
