/**
 * The sandbox FHIR server (sandbox/) is a development and test tool: product code under src/
 * never imports it statically (the CLI's `imh-bridge sandbox` loads it on demand), and the
 * Worker that is deployed carries none of it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { build } from 'esbuild';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const sandboxDir = join(root, 'sandbox') + sep;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Relative specifiers of the file's static imports and re-exports (not `import()` calls). */
function staticImports(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
  const out: string[] = [];
  for (const stmt of source.statements) {
    if ((ts.isImportDeclaration(stmt) || ts.isExportDeclaration(stmt)) && stmt.moduleSpecifier && ts.isStringLiteral(stmt.moduleSpecifier)) {
      out.push(stmt.moduleSpecifier.text);
    }
  }
  return out;
}

describe('the sandbox stays apart from the product code', () => {
  it('no file under src/ imports sandbox/ statically', () => {
    const files = tsFiles(join(root, 'src'));
    expect(files.length).toBeGreaterThan(20);
    const offenders: string[] = [];
    for (const file of files) {
      for (const spec of staticImports(file)) {
        if (!spec.startsWith('.')) continue;
        const target = resolve(dirname(file), spec);
        if ((target + sep).startsWith(sandboxDir) || target.startsWith(sandboxDir)) {
          offenders.push(`${relative(root, file)} → ${spec}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });

  it('the import scan sees the sandbox where it is imported (the tests and the start script)', () => {
    // Guards the scan above against passing because it resolves nothing.
    const start = join(root, 'scripts', 'start.ts');
    const targets = staticImports(start).map((s) => resolve(dirname(start), s));
    expect(targets.some((t) => t.startsWith(sandboxDir))).toBe(true);
  });

  it('the Worker bundle contains no sandbox code', async () => {
    const result = await build({
      entryPoints: [join(root, 'src', 'worker.ts')],
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      conditions: ['workerd', 'worker', 'browser'],
      external: ['cloudflare:*', 'node:*'],
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs).map((p) => resolve(root, p));
    expect(inputs).toContain(join(root, 'src', 'worker.ts'));
    expect(inputs.filter((p) => p.startsWith(join(root, 'src', 'sync'))).length).toBeGreaterThan(5);
    expect(inputs.filter((p) => p.startsWith(sandboxDir)).map((p) => relative(root, p))).toEqual([]);
    // The sandbox's own server (Medplum's FHIR router and its in-memory repository) stays out too.
    expect(inputs.filter((p) => p.includes(`${sep}@medplum${sep}fhir-router${sep}`))).toEqual([]);
  }, 60_000);
});
