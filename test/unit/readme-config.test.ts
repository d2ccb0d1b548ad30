/**
 * The README's configuration table is the one list of settings: every binding and setting the
 * Worker's `Env` declares, and every name `loadConfig` reads, has its row there, with a meaning,
 * a default and whether production requires it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('### Configuration\n'), readme.indexOf('**Environments: safe by default.**'));
/** The table's rows, each as its four cells (a `\|` inside a cell is not a separator). */
const rows = section
  .split('\n')
  .filter((l) => l.startsWith('| ') && !l.startsWith('| Setting'))
  .map((l) => l.slice(2, -2).split(/ (?<!\\)\| /));

/** The names the Worker's Env interface declares (src/worker.ts). */
function envNames(): string[] {
  const src = readFileSync(join(root, 'src/worker.ts'), 'utf8');
  const body = /export interface Env \{([\s\S]*?)\n\}/.exec(src)?.[1] ?? '';
  return [...body.matchAll(/^ {2}([A-Z][A-Z0-9_]+)\??:/gm)].map((m) => m[1] as string);
}

/** The names loadConfig reads by literal (src/config.ts). */
function configNames(): string[] {
  const src = readFileSync(join(root, 'src/config.ts'), 'utf8');
  return [...src.matchAll(/(?:present|readInt|readBoolean)\(env, '([A-Z0-9_]+)'|const NAME = '([A-Z0-9_]+)'/g)].map((m) => (m[1] ?? m[2]) as string);
}

describe('README configuration table', () => {
  it('has four filled cells in every row', () => {
    expect(rows.length).toBeGreaterThan(15);
    for (const r of rows) {
      expect(r, r[0]).toHaveLength(4);
      for (const cell of r) expect(cell.trim(), r[0]).not.toBe('');
    }
  });

  it('lists every setting and binding the Worker and loadConfig read', () => {
    const names = [...new Set([...envNames(), ...configNames()])];
    expect(names).toEqual(expect.arrayContaining(['DB', 'API_AUTH', 'IDENTITY_SECRET', 'DATA_ENCRYPTION_KEYS', 'SMART_ISSUERS', 'DELIVERY_MAX_ATTEMPTS']));
    const listed = new Set(rows.flatMap((r) => [...(r[0] as string).matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] as string)));
    expect(names.filter((n) => !listed.has(n))).toEqual([]);
  });
});
