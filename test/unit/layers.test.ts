/**
 * The layers of DESIGN.md ("The shape", "Layout that shows it"), held by the import graph:
 * dependency-cruiser reads every import under src/ (type-only ones too, since a type import
 * couples modules as much as a value import does) and each rule below names what one layer
 * must not reach. Pure core first: domain, the FHIR building blocks, the instruments and
 * mapping never see the shell (HTTP, delivery, configuration); only http/ knows Hono; the
 * sandbox is a development and test tool that no product module loads.
 */
import { readFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';
import { cruise, type ICruiseResult, type IForbiddenRuleType } from 'dependency-cruiser';
import { beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
/** The sandbox, wherever it sits: src/sandbox/ or a top-level sandbox/. */
const SANDBOX = '^(src/)?sandbox/';

const RULES: IForbiddenRuleType[] = [
  {
    name: 'domain-stands-alone',
    comment: 'The episode format knows nothing of the bridge, except the OperationOutcome it reports problems in.',
    severity: 'error',
    from: { path: '^src/domain/' },
    to: { path: '^src/', pathNot: '^src/domain/|^src/fhir/(outcome|strings)\\.ts$' },
  },
  {
    name: 'outcome-stands-alone',
    comment: 'What domain/ may use of fhir/ must not pull the rest of the bridge in behind it.',
    severity: 'error',
    from: { path: '^src/fhir/(outcome|strings)\\.ts$' },
    to: { path: '^src/', pathNot: '^src/fhir/(outcome|strings)\\.ts$' },
  },
  {
    name: 'fhir-building-blocks-stand-alone',
    comment: 'Bundle assembly, identities, terminology, outcomes and validation: below everything else.',
    severity: 'error',
    from: { path: '^src/fhir/' },
    to: { path: '^src/', pathNot: '^src/(fhir|generated)/' },
  },
  {
    name: 'instruments-below-mapping',
    comment: 'Instruments (definitions, scoring, score resources, $extract) use domain and fhir only.',
    severity: 'error',
    from: { path: '^src/instruments/' },
    to: { path: '^src/', pathNot: '^src/(instruments|fhir|domain|generated)/' },
  },
  {
    name: 'mapping-is-pure',
    comment: 'Episode to FHIR: domain, fhir and instruments only; no HTTP, delivery or configuration.',
    severity: 'error',
    from: { path: '^src/mapping/' },
    to: { path: '^src/', pathNot: '^src/(mapping|fhir|domain|instruments|generated)/' },
  },
  {
    name: 'auth-owns-its-config',
    comment: 'auth/ owns its settings (auth/config.ts); config.ts composes them, never the other way round.',
    severity: 'error',
    from: { path: '^src/auth/' },
    to: { path: '^src/', pathNot: '^src/(auth|fhir|domain)/|^src/config-fields\\.ts$' },
  },
  {
    name: 'config-fields-stand-alone',
    comment: 'The building blocks every module’s configuration schema uses.',
    severity: 'error',
    from: { path: '^src/config-fields\\.ts$' },
    to: { path: '^src/' },
  },
  {
    name: 'only-http-knows-hono',
    severity: 'error',
    from: { path: '^src/', pathNot: '^src/http/' },
    to: { path: '(^|/)node_modules/hono/' },
  },
  {
    name: 'no-sandbox-in-product',
    comment: 'The sandbox is a development and test tool: no product module imports it.',
    severity: 'error',
    from: { path: '^src/', pathNot: `${SANDBOX}|^src/cli\\.ts$` },
    to: { path: SANDBOX },
  },
  {
    name: 'cli-loads-the-sandbox-on-demand',
    comment: 'Only `imh-bridge sandbox` loads it, by a dynamic import, so no other command carries it.',
    severity: 'error',
    from: { path: '^src/cli\\.ts$' },
    to: { path: SANDBOX, dependencyTypesNot: ['dynamic-import'] },
  },
  {
    name: 'no-cycles',
    comment: 'Modules that import each other cannot be read, tested or moved apart: what both need goes below them.',
    severity: 'error',
    from: { path: '^src/' },
    to: { circular: true },
  },
  {
    name: 'no-dev-dependency-at-run-time',
    comment: 'Product code runs with dependencies only; development packages (e.g. @medplum/fhirtypes) are for types.',
    severity: 'error',
    from: { path: '^src/', pathNot: SANDBOX },
    to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
  },
];

let result: ICruiseResult;

beforeAll(async () => {
  const r = await cruise(
    ['src'],
    {
      tsPreCompilationDeps: true,
      doNotFollow: { path: 'node_modules' },
      // 15,000 generated lines that import nothing of the bridge's; parsing them only costs time.
      exclude: { path: '^src/generated/validators\\.ts$' },
      validate: true,
      ruleSet: { forbidden: RULES },
      outputType: 'json',
      baseDir: root,
    },
    { extensions: ['.ts', '.js', '.json'], conditionNames: ['import', 'types', 'node', 'default'], mainFields: ['module', 'main', 'types'] },
  );
  result = (typeof r.output === 'string' ? JSON.parse(r.output) : r.output) as ICruiseResult;
}, 60_000);

describe('layers (DESIGN.md)', () => {
  it('resolves every import of the bridge’s own modules, so no rule holds by missing an edge', () => {
    const unresolved = result.modules.flatMap((m) =>
      m.dependencies.filter((d) => d.couldNotResolve && d.dependencyTypes.includes('local')).map((d) => `${m.source} -> ${d.module}`),
    );
    expect(unresolved).toEqual([]);
    // Known edges across layers are seen, type-only ones included.
    const edges = new Set(result.modules.flatMap((m) => m.dependencies.map((d) => `${m.source} -> ${d.resolved}`)));
    expect(edges).toContain('src/instruments/sdc-extract.ts -> src/fhir/bundle-scope.ts');
    expect(edges).toContain('src/auth/inbound.ts -> src/auth/config.ts');
  });

  it('gives every rule modules to apply to', () => {
    const sources = result.modules.map((m) => m.source);
    for (const rule of RULES) {
      const from = new RegExp(rule.from.path as string);
      expect(
        sources.some((s) => from.test(s)),
        rule.name,
      ).toBe(true);
    }
  });

  it('keeps every rule', () => {
    const violations = result.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);
    expect(violations).toEqual([]);
  });

  // Medplum's own OperationOutcomeError is met at two edges only: the reference validator catches
  // what @medplum/core throws and turns it into issues, and the sandbox hosts Medplum's router,
  // which expects it. Everywhere else, fhir/outcome.ts's is the one error type.
  it('has one OperationOutcomeError: Medplum’s stays at the validator’s edge and in the sandbox', () => {
    const edges = new RegExp(`${SANDBOX}|^src/fhir/validate\\.ts$`);
    const offenders = result.modules
      .map((m) => m.source)
      .filter((s) => s.startsWith('src/') && !edges.test(s) && s.endsWith('.ts'))
      .filter((s) => /import\s*\{[^}]*\bOperationOutcomeError\b[^}]*\}\s*from\s*'@medplum\/core'/.test(readFileSync(join(root, s), 'utf8')));
    expect(offenders).toEqual([]);
  });
});

describe('Node runs the sources as they are', () => {
  it('has no TypeScript that type stripping cannot erase (enums, namespaces, parameter properties)', () => {
    const files = result.modules.map((m) => m.source).filter((s) => /^(src|sandbox)\/.*\.ts$/.test(s));
    expect(files.length).toBeGreaterThan(50);
    const refused = files.flatMap((f) => {
      try {
        stripTypeScriptTypes(readFileSync(join(root, f), 'utf8'), { mode: 'strip' });
        return [];
      } catch (e) {
        return [`${f}: ${(e as Error).message.split('\n')[0]}`];
      }
    });
    expect(refused).toEqual([]);
  });
});
