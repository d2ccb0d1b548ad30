#!/usr/bin/env node
/**
 * Generates src/generated/validators.ts: one plain function per type and profile the bridge
 * validates against, compiled from the schemas @medplum/core builds out of
 * src/generated/r4-definitions.json and src/generated/profiles.json (indexed exactly as
 * src/fhir/validate.ts indexes them). Each function checks what the reference validator checks
 * of such a value (elements known, cardinality, array or single, choice types, fixed/pattern
 * values, slice counts, primitive formats, required bindings, reference target types and the
 * `error` invariants), and throws `Unsure` where the value is, or might be, not valid. It never
 * writes an issue: src/fhir/validate-fast.ts then asks the reference validator, whose issues
 * are the answer. Invariants are compiled from FHIRPath into JavaScript where the expression
 * falls in the subset below; the others are listed in the output and make the fast path give
 * up when a value they apply to is present.
 *
 *   node scripts/build-validators.ts          # write
 *   node scripts/build-validators.ts --check  # exit 1 when the file differs from a fresh build
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type FhirPathAtom,
  getDataType,
  type InternalSchemaElement,
  type InternalTypeSchema,
  isPrimitiveType,
  parseFhirPath,
  tryGetProfile,
} from '@medplum/core';
import type { StructureDefinition } from '@medplum/fhirtypes';
import { loadDefinitions } from '../src/fhir/validate.ts';
import ours from '../src/generated/profiles.json' with { type: 'json' };

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outFile = join(root, 'src/generated/validators.ts');
const check = process.argv.includes('--check');
const OUR_PREFIX = 'https://imh-bridge.example.no/fhir/StructureDefinition/';

loadDefinitions();

/** Invariant keys @medplum/core's validator never evaluates (skippedConstraintKeys). */
const SKIPPED = new Set(['ele-1', 'dom-3', 'org-1', 'sdf-19']);
const TERMINOLOGY = new Set(['CodeableConcept', 'Coding', 'code', 'Quantity', 'string', 'uri']);

const lines: string[] = [];
const emit = (s: string): void => void lines.push(s);

/**
 * Opens each generated function as a parenthesised function expression, `const f = (function
 * f(…) {…})`, which V8 compiles when the module loads rather than on the first call (its
 * heuristic for functions called at once; esbuild keeps the parentheses). A cold process then
 * compiles them all at import instead of one by one during its first validation, at about the
 * same cost; and where Node's compile cache is on (bin/imh-bridge.js), the cache holds their
 * bytecode, so a fresh process compiles none of them.
 */
const EAGER = '(';
const J = (v: unknown): string => JSON.stringify(v);

/** Module-level constants (Sets and Maps of choice keys, prepared reference targets), one per distinct value. */
const constants = new Map<string, string>();
function constant(expression: string): string {
  let name = constants.get(expression);
  if (!name) {
    name = `C${constants.size}`;
    constants.set(expression, name);
  }
  return name;
}

// ---------------------------------------------------------------------------------------------
// FHIRPath → JavaScript. Atom classes are recognised by example (the package is minified).
type AtomT = { constructor: unknown } & Record<string, unknown>;
const kind = new Map<unknown, string>();
const sample = (expr: string, name: string): void => void kind.set((parseFhirPath(expr) as unknown as { child: AtomT }).child.constructor, name);
sample('a', 'symbol');
sample("'a'", 'literal');
sample('a.b', 'dot');
sample('a()', 'function');
sample('a = b', 'eq');
sample('a != b', 'ne');
sample('a and b', 'and');
sample('a or b', 'or');
sample('a xor b', 'xor');
sample('a implies b', 'implies');
sample('a < b', 'arith');
sample('a in b', 'in');
sample('{}', 'emptyset');
sample('a & b', 'concat');

class NoCompile extends Error {}
const no = (why: string): never => {
  throw new NoCompile(why);
};

/** What is known of a collection's items at compile time: a schema to navigate, or a primitive. */
type Ty = { schema: InternalTypeSchema } | { primitive: string } | { resource: true } | null;

const capital = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

function typeOf(code: string, inner?: InternalTypeSchema): Ty {
  if (isPrimitiveType(code)) return { primitive: code };
  const innerType = inner?.innerTypes.find((t) => t.name === code);
  if (innerType) return { schema: innerType };
  try {
    return { schema: getDataType(code) };
  } catch {
    return null;
  }
}

/** Type of an element's values in FHIRPath navigation: its single type, else unknown. */
function elementType(el: InternalSchemaElement, owner: InternalTypeSchema): Ty {
  if (el.type.length !== 1) return null;
  return typeOf(el.type[0]?.code as string, owner);
}

interface Env {
  resourceType?: string;
  rootType?: string;
  /** A profile's own types of its choice elements, by element path (checkChoiceTypes); only in the profile's own schemas. */
  choices?: Map<string, string[]>;
  vars: number;
}

let fnCounter = 0;

function compile(atom: AtomT, input: string, ty: Ty, env: Env): [string, Ty] {
  const k = kind.get(atom.constructor);
  switch (k) {
    case 'literal': {
      const v = (atom.value as { type: string; value: unknown }).value;
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return no('literal');
      return [`[${J(v)}]`, typeof v === 'string' ? { primitive: 'string' } : typeof v === 'boolean' ? { primitive: 'boolean' } : { primitive: 'decimal' }];
    }
    case 'emptyset':
      return ['[]', null];
    case 'symbol': {
      const name = atom.name as string;
      if (name === '$this') return [input, ty];
      if (name === '%ucum') return ['["http://unitsofmeasure.org"]', { primitive: 'uri' }];
      if (name === '%resource')
        return env.resourceType ? ['[cx.resources[cx.resources.length - 1]]', { schema: getDataType(env.resourceType) }] : no('%resource');
      if (name === '%rootResource') return env.rootType ? ['[cx.root]', { schema: getDataType(env.rootType) }] : no('%rootResource');
      if (name.startsWith('%') || /^[A-Z]/.test(name)) return no(`symbol ${name}`);
      if (ty && 'resource' in ty) {
        // A resource of a type not known here: only the elements every resource has.
        const common: Record<string, Ty> = {
          id: { primitive: 'id' },
          meta: { schema: getDataType('Meta') },
          implicitRules: { primitive: 'uri' },
          language: { primitive: 'code' },
          contained: { resource: true },
        };
        if (!(name in common)) return no(`navigation to ${name} of a resource`);
        return [`R.nav(${input}, ${J(name)})`, common[name] as Ty];
      }
      if (!ty || !('schema' in ty)) return no(`navigation to ${name}`);
      const schema = ty.schema;
      const el = schema.elements[name];
      if (el)
        return [
          `R.nav(${input}, ${J(name)})`,
          el.type.length === 1 && (el.type[0]?.code === 'Resource' || getDataTypeKind(el.type[0]?.code as string) === 'resource')
            ? { resource: true }
            : elementType(el, schema),
        ];
      const choice = schema.elements[`${name}[x]`];
      if (choice) {
        const keys = choice.type.map((t) => name + capital(t.code));
        return [`R.navChoice(${input}, ${constant(`new Set(${J(keys)})`)})`, choice.type.length === 1 ? typeOf(choice.type[0]?.code as string, schema) : null];
      }
      return no(`no element ${name} in ${schema.name}`);
    }
    case 'dot': {
      const [l, lt] = compile(atom.left as AtomT, input, ty, env);
      // A symbol or function on the right uses its input once: pass the left side in directly.
      const rk = kind.get((atom.right as AtomT).constructor);
      if (rk === 'symbol' || rk === 'function') return compile(atom.right as AtomT, l, lt, env);
      const v = `c${env.vars++}`;
      const [r, rt] = compile(atom.right as AtomT, v, lt, env);
      return [`((${v}) => ${r})(${l})`, rt];
    }
    case 'eq':
    case 'ne':
    case 'and':
    case 'or':
    case 'xor':
    case 'implies':
    case 'in': {
      const [l] = compile(atom.left as AtomT, input, ty, env);
      const [r] = compile(atom.right as AtomT, input, ty, env);
      const f = { eq: 'R.eq', ne: 'R.ne', and: 'R.and', or: 'R.or', xor: 'R.xor', implies: 'R.implies', in: 'R.isIn' }[k];
      return [`${f}(${l}, ${r})`, { primitive: 'boolean' }];
    }
    case 'arith': {
      const op = atom.operator as string;
      if (!['<', '<=', '>', '>='].includes(op)) return no(`operator ${op}`);
      const [l] = compile(atom.left as AtomT, input, ty, env);
      const [r] = compile(atom.right as AtomT, input, ty, env);
      return [`R.cmp(${l}, ${r}, ${J(op)})`, { primitive: 'boolean' }];
    }
    case 'concat': {
      const [l] = compile(atom.left as AtomT, input, ty, env);
      const [r] = compile(atom.right as AtomT, input, ty, env);
      return [`R.concat(${l}, ${r})`, { primitive: 'string' }];
    }
    case 'function':
      return compileFunction(atom.name as string, (atom.args as AtomT[]) ?? [], input, ty, env);
    default:
      return no(`atom ${String(atom.operator ?? k ?? 'unknown')}`);
  }
}

function literalArg(a: AtomT | undefined): string {
  if (!a || kind.get(a.constructor) !== 'literal') return no('non-literal argument');
  return J((a.value as { value: unknown }).value);
}

function compileFunction(name: string, args: AtomT[], input: string, ty: Ty, env: Env): [string, Ty] {
  const bool: Ty = { primitive: 'boolean' };
  const lambda = (a: AtomT, t: Ty): string => {
    const v = `c${env.vars++}`;
    return `(${v}) => ${compile(a, v, t, env)[0]}`;
  };
  switch (name) {
    case 'exists':
      return args.length ? [`R.existsWhere(${input}, ${lambda(args[0] as AtomT, ty)})`, bool] : [`R.exists(${input})`, bool];
    case 'empty':
    case 'count':
    case 'hasValue':
    case 'not':
    case 'first':
    case 'length':
      if (args.length) return no(`${name} with arguments`);
      return [`R.${name}(${input})`, name === 'first' ? ty : name === 'count' || name === 'length' ? { primitive: 'integer' } : bool];
    case 'where':
      return [`R.where(${input}, ${lambda(args[0] as AtomT, ty)})`, ty];
    case 'all':
      return [`R.all(${input}, ${lambda(args[0] as AtomT, ty)})`, bool];
    case 'startsWith':
    case 'contains':
    case 'matches':
      return [`R.${name}(${input}, ${literalArg(args[0])})`, bool];
    case 'substring':
      return [`R.substring(${input}, ${args.map(literalArg).join(', ')})`, { primitive: 'string' }];
    case 'trace':
      return [input, ty];
    case 'resolve':
      return [`R.resolve(${input}, cx)`, { resource: true }];
    case 'ofType': {
      const t = args[0];
      if (!t || kind.get(t.constructor) !== 'symbol' || !/^[A-Z]/.test(t.name as string)) return no('ofType argument');
      return [`R.ofType(${input}, ${J(t.name)})`, { resource: true }];
    }
    case 'select':
      return [`R.select(${input}, ${lambda(args[0] as AtomT, ty)})`, null];
    case 'isDistinct':
      return [`R.isDistinct(${input})`, bool];
    case 'intersect':
      // Only an empty input is decided (nothing to intersect); the argument must still compile.
      compile(args[0] as AtomT, input, ty, env);
      return [`R.intersectEmpty(${input})`, ty];
    case 'is': {
      const t = args[0];
      // Only on resources, where fhirPathIs compares the resourceType.
      if (!t || kind.get(t.constructor) !== 'symbol' || !/^[A-Z]/.test(t.name as string) || !(ty && 'resource' in ty)) return no('is() argument');
      return [`R.isType(${input}, ${J(t.name)})`, bool];
    }
    case 'iif': {
      const [c, a, b] = args as [AtomT, AtomT, AtomT | undefined];
      return [`R.iif(${input}, ${lambda(c, ty)}, ${lambda(a, ty)}${b ? `, ${lambda(b, ty)}` : ''})`, null];
    }
    default:
      return no(`function ${name}()`);
  }
}

const invariants = new Map<string, string>(); // cache key → function name
// Function body → function name. The same invariant on many types compiles to the same body
// (ext-1 alone on 190 of them): one function serves them all, so a cold start compiles (or
// loads from the compile cache) one copy, and its feedback warms up on every call.
const invariantBodies = new Map<string, string>();
const notCompiled = new Map<string, string>(); // key → reason

/**
 * An invariant as a function `(value, cx) => void` that throws Unsure unless the expression
 * evaluates to exactly `true`; or a function that always gives up, for one outside the subset.
 */
function invariant(c: { key: string; expression: string }, ty: Ty, env: Omit<Env, 'vars'>, label: string): string {
  const cacheKey = `${c.key}|${c.expression}|${label}`;
  const known = invariants.get(cacheKey);
  if (known) return known;
  let body: string;
  try {
    const atom = parseFhirPath(c.expression) as unknown as FhirPathAtom & { child: AtomT };
    const [js] = compile(atom.child, '[v]', ty, { ...env, vars: 0 });
    body = `const r = ${js}; if (!(r.length === 1 && r[0] === true)) R.unsure(${J(`invariant ${c.key}`)});`;
  } catch (e) {
    if (!(e instanceof NoCompile)) throw e;
    notCompiled.set(c.key, e.message);
    body = `R.unsure(${J(`invariant ${c.key} is not compiled (${e.message})`)});`;
  }
  const same = invariantBodies.get(body);
  if (same) {
    invariants.set(cacheKey, same);
    return same;
  }
  const name = `inv${fnCounter++}`;
  emit(`/** ${c.key}: ${c.expression.replaceAll('*/', '* /')} */`);
  emit(`const ${name} = ${EAGER}function ${name}(v, cx) { ${body} });`);
  invariants.set(cacheKey, name);
  invariantBodies.set(body, name);
  return name;
}

// ---------------------------------------------------------------------------------------------
// Schemas → functions.

const schemaNames = new Map<InternalTypeSchema, string>();
const pending: [InternalTypeSchema, Omit<Env, 'vars'>, Map<string, InternalSchemaElement[]>][] = [];

function schemaFn(schema: InternalTypeSchema, env: Omit<Env, 'vars'>): string {
  const known = schemaNames.get(schema);
  if (known) return known;
  const name = `s${schemaNames.size}`;
  schemaNames.set(schema, name);
  pending.push([schema, env, new Map()]);
  return name;
}

/** Type function for a value of type `code` in an element of `owner` (crawler: innerTypes, else the data type). */
function typeFn(code: string, owner: InternalTypeSchema, env: Omit<Env, 'vars'>): string | undefined {
  const inner = owner.innerTypes.find((t) => t.name === code);
  if (inner) return schemaFn(inner, env);
  try {
    // A data type's function is shared by every root: it knows no %resource and no profile.
    return schemaFn(getDataType(code), {});
  } catch {
    return undefined;
  }
}

/** Checks for one element `key` of `schema`, on object `o`; `overlay` are its dotted sub-elements. */
function elementChecks(
  key: string,
  el: InternalSchemaElement,
  schema: InternalTypeSchema,
  env: Omit<Env, 'vars'>,
  obj: string,
  overlays: [string, InternalSchemaElement][],
  depth: number,
): string[] {
  const out: string[] = [];
  const what = J(el.path);
  const isChoice = key.endsWith('[x]');
  const base = isChoice ? key.slice(0, -3) : key;
  let types = el.type.map((t) => t.code);
  if (isChoice) {
    const own = env.choices?.get(el.path);
    if (own) types = types.filter((t) => own.includes(t));
  }
  const v = `v${depth}`;
  const tcode = `ty${depth}`;
  const compact = compactElement(key, el, types, schema, env, obj, overlays, isChoice);
  if (compact) return [compact];
  if (isChoice) {
    const keys = types.map((t) => [base + capital(t), t]);
    out.push(`{ const ch${depth} = R.choice(${obj}, ${constant(`new Map(${J(keys)})`)}); const ${v} = ch${depth}?.[0]; const ${tcode} = ch${depth}?.[1];`);
  } else {
    out.push(`{ const ${v} = ${obj}[${J(key)}]; const ${tcode} = ${J(types[0] ?? '')};`);
  }
  out.push(`if (${v} === undefined) { ${el.min > 0 ? `R.unsure(${J(`${el.path}: missing`)});` : ''} } else {`);
  const list = `l${depth}`;
  const x = `x${depth}`;
  const many = !!el.isArray;
  // A single value is checked in place; only arrays get a list and a loop (no allocation per element).
  if (many) out.push(`const ${list} = R.values(${v}, true, ${el.min}, ${Number.isFinite(el.max) ? el.max : 'Infinity'}, ${what});`);
  else out.push(`R.single(${v}, ${el.min}, ${Number.isFinite(el.max) ? el.max : 'Infinity'}, ${what});`);
  for (const kindName of ['fixed', 'pattern'] as const) {
    const spec = el[kindName];
    if (!spec) continue;
    if (types.length !== 1 || types[0] === 'BackboneElement' || types[0] === 'Element')
      out.push(`R.unsure(${J(`${el.path}: ${kindName} on a complex element`)});`);
    else out.push(`R.specified(${many ? list : `[${v}]`}, ${many}, ${tcode}, ${J(spec)}, ${J(kindName)}, ${what});`);
  }
  out.push(many ? `for (const ${x} of ${list}) {` : `{ const ${x} = ${v};`);
  // Per type of the value.
  const perType = (code: string): string[] => {
    const s: string[] = [];
    if (isPrimitiveType(code)) {
      s.push(`R.primitive(${x}, ${J(code)}, ${what});`);
    } else if (code === 'Resource' || getDataTypeKind(code) === 'resource') {
      if (el.path === 'Bundle.entry.resource') {
        // Entry resources are validated one by one against their profiles (validate-fast.ts).
      } else s.push(`R.unsure(${J(`${el.path}: a nested resource`)});`);
    } else {
      const fn = typeFn(code, schema, env);
      if (!fn) s.push(`R.unsure(${J(`${el.path}: type ${code}`)});`);
      else s.push(`${fn}(${x}, cx);`);
      if (code === 'Reference') {
        const targets = el.type.find((t) => t.code === 'Reference')?.targetProfile;
        // Prepared once at load, not per value.
        s.push(`R.reference(${x}, ${targets ? constant(`R.targets(${J(targets)})`) : 'undefined'}, ${what}, cx, ${what});`);
      }
      if (code === 'Extension' && /(^|\.)(extension|modifierExtension)$/.test(key)) s.push(`ourExtension(${x}, cx);`);
    }
    if (el.binding?.strength === 'required' && el.binding.valueSet && TERMINOLOGY.has(code))
      s.push(`R.binding(${J(el.binding.valueSet)}, ${J(code)}, ${x}, ${what});`);
    return s;
  };
  if (types.length === 1) out.push(...perType(types[0] as string));
  else {
    out.push(`switch (${tcode}) {`);
    for (const t of types) out.push(`case ${J(t)}: { ${perType(t).join(' ')} break; }`);
    out.push(`default: R.unsure(${J(`${el.path}: type`)}); }`);
  }
  for (const c of el.constraints ?? []) {
    if (c.severity !== 'error' || SKIPPED.has(c.key)) continue;
    const ty: Ty = types.length === 1 ? typeOf(types[0] as string, schema) : null;
    out.push(`${invariant(c, ty, env, el.path)}(${x}, cx);`);
  }
  // Dotted sub-elements of this element (a profile's constraints on the children of a complex type).
  const direct = overlays.filter(([k]) => !k.includes('.'));
  for (const [k, sub] of direct) {
    const deeper = overlays.filter(([kk]) => kk.startsWith(`${k}.`)).map(([kk, e]) => [kk.slice(k.length + 1), e] as [string, InternalSchemaElement]);
    out.push(`if (R.isObj(${x})) {`, ...elementChecks(k, sub, schema, env, x, deeper, depth + 1), '}');
  }
  out.push('}'); // for
  if (el.slicing?.slices.length) out.push(...sliceChecks(el, many ? list : `[${v}]`, tcode, types));
  out.push('} }');
  return out;
}

/**
 * The common element in one call (runtime `R.prim`, `R.el`, `R.ref`): one type, primitive or complex
 * (a Reference's target type included), with no fixed or pattern value, binding, invariant,
 * profiled sub-element or slicing. Less code to parse and compile at a cold start; the checks
 * are those of the long form, in the same order.
 */
function compactElement(
  key: string,
  el: InternalSchemaElement,
  types: string[],
  schema: InternalTypeSchema,
  env: Omit<Env, 'vars'>,
  obj: string,
  overlays: [string, InternalSchemaElement][],
  isChoice: boolean,
): string | undefined {
  if (isChoice || types.length !== 1 || overlays.length || el.slicing?.slices.length || el.fixed || el.pattern) return undefined;
  if ((el.constraints ?? []).some((c) => c.severity === 'error' && !SKIPPED.has(c.key))) return undefined;
  const code = types[0] as string;
  if (el.binding?.strength === 'required' && el.binding.valueSet && TERMINOLOGY.has(code)) return undefined;
  const max = Number.isFinite(el.max) ? String(el.max) : 'Infinity';
  const head = `${obj}[${J(key)}], ${!!el.isArray}, ${el.min}, ${max}`;
  if (isPrimitiveType(code)) return `R.prim(${head}, ${J(code)}, ${J(el.path)});`;
  if (code === 'Resource' || getDataTypeKind(code) === 'resource' || code === 'Extension') return undefined;
  const fn = typeFn(code, schema, env);
  if (!fn) return undefined;
  if (code !== 'Reference') return `R.el(${head}, ${fn}, cx, ${J(el.path)});`;
  const targets = el.type[0]?.targetProfile;
  return `R.ref(${head}, ${fn}, ${targets ? constant(`R.targets(${J(targets)})`) : 'undefined'}, cx, ${J(el.path)});`;
}

function getDataTypeKind(code: string): string | undefined {
  try {
    return getDataType(code).kind;
  } catch {
    return undefined;
  }
}

/** checkSliceElement + validateSlices, for the discriminators @medplum/core matches. */
function sliceChecks(el: InternalSchemaElement, list: string, tcode: string, types: string[]): string[] {
  const slicing = el.slicing as NonNullable<InternalSchemaElement['slicing']>;
  const conds: string[] = [];
  for (const slice of slicing.slices) {
    const parts: string[] = [];
    for (const d of slicing.discriminator) {
      if (d.type !== 'value' && d.type !== 'pattern' && d.type !== 'type') {
        parts.push('false');
        continue;
      }
      if (d.path === '$this') {
        if (d.type === 'type') parts.push(`${J(slice.type.map((t) => t.code))}.includes(${tcode})`);
        else if (slice.pattern) parts.push(`R.deepIncludes({ type: ${tcode}, value: v }, ${J(slice.pattern)})`);
        else if (slice.fixed) parts.push(`R.deepEquals({ type: ${tcode}, value: v }, ${J(slice.fixed)})`);
        else if (slice.binding?.strength === 'required' && slice.binding.valueSet) parts.push('true');
        else parts.push('false');
        continue;
      }
      if (d.path.includes('.') || d.path.includes('[x]') || d.type === 'type') {
        parts.push(`R.unsure(${J(`${el.path}: slice discriminator ${d.path}`)})`);
        continue;
      }
      const se = slice.elements[d.path];
      if (!se) {
        parts.push('false');
        continue;
      }
      const childType = se.type.length === 1 ? se.type[0]?.code : undefined;
      if (!childType) {
        parts.push(`R.unsure(${J(`${el.path}: slice discriminator type`)})`);
        continue;
      }
      const val = `(R.isObj(v) ? v[${J(d.path)}] : undefined)`;
      // getNestedProperty + arrayify: an array of values, a single value, or none.
      const each = (m: string): string => `((w) => w === undefined ? false : (Array.isArray(w) ? w : [w]).some((u) => ${m}))(${val})`;
      if (se.pattern) parts.push(each(`R.deepIncludes({ type: ${J(childType)}, value: u }, ${J(se.pattern)})`));
      else if (se.fixed) parts.push(each(`R.deepEquals({ type: ${J(childType)}, value: u }, ${J(se.fixed)})`));
      else if (se.binding?.strength === 'required' && se.binding.valueSet) parts.push(each('true'));
      else parts.push('false');
    }
    conds.push(parts.join(' && ') || 'false');
  }
  void types;
  const match = `(v) => { ${conds.map((c, i) => `if (${c}) return ${i};`).join(' ')} return -1; }`;
  return [`R.slices(${list}, ${match}, ${J(slicing.slices.map((s) => [s.min, Number.isFinite(s.max) ? s.max : 1e9]))}, ${J(el.path)});`];
}

function generateSchema(schema: InternalTypeSchema, env: Omit<Env, 'vars'>): void {
  const name = schemaNames.get(schema) as string;
  const keys = new Set<string>();
  const isResource = schema.kind === 'resource';
  if (isResource) keys.add('resourceType');
  const topLevel = Object.entries(schema.elements).filter(([k]) => !k.includes('.'));
  const dotted = Object.entries(schema.elements).filter(([k]) => k.includes('.'));
  for (const [k, el] of topLevel) {
    if (k.endsWith('[x]')) {
      let types = el.type.map((t) => t.code);
      const own = env.choices?.get(el.path);
      if (own) types = types.filter((t) => own.includes(t));
      for (const t of types) keys.add(k.slice(0, -3) + capital(t));
    } else keys.add(k);
  }
  // One case per key that may be present: absent elements cost nothing, unknown keys give up.
  const body: string[] = [];
  const required: string[] = [];
  for (const [k, el] of topLevel) {
    const overlays = dotted.filter(([dk]) => dk.startsWith(`${k}.`)).map(([dk, e]) => [dk.slice(k.length + 1), e] as [string, InternalSchemaElement]);
    const caseKeys = k.endsWith('[x]') ? [...keys].filter((key) => key.startsWith(k.slice(0, -3)) && /^[A-Z]/.test(key.slice(k.length - 3))) : [k];
    if (k.endsWith('[x]')) {
      // Keys of this choice element only (another element may share the prefix: class, classHistory).
      const types = el.type.map((t) => t.code).filter((t) => !env.choices?.get(el.path) || env.choices.get(el.path)?.includes(t));
      caseKeys.splice(0, caseKeys.length, ...types.map((t) => k.slice(0, -3) + capital(t)));
    }
    if (!caseKeys.length) continue;
    body.push(`${caseKeys.map((ck) => `case ${J(ck)}:`).join(' ')} {`, ...elementChecks(k, el, schema, env, 'o', overlays, 0), 'break; }');
    if (el.min > 0) {
      required.push(
        k.endsWith('[x]')
          ? `if (${caseKeys.map((ck) => `o[${J(ck)}] === undefined`).join(' && ') || 'true'}) R.unsure(${J(`${el.path}: missing`)});`
          : `if (o[${J(k)}] === undefined) R.unsure(${J(`${el.path}: missing`)});`,
      );
    }
  }
  emit(`/** ${schema.name}${schema.url ? ` (${schema.url})` : ''} */`);
  emit(`const ${name} = ${EAGER}function ${name}(o, cx) {`);
  emit(`R.nonEmptyObject(o, ${J(schema.name)});`);
  emit('for (const key in o) {');
  emit(`if (o[key] === null) R.unsure(${J(`${schema.name}: null`)});`);
  emit('switch (key) {');
  if (isResource) emit("case 'resourceType': break;");
  for (const l of body) emit(l);
  emit(`default: R.unsure(${J(`${schema.name}: element `)} + key);`);
  emit('} }');
  for (const l of required) emit(l);
  emit('});');
}

/** What checkChoiceTypes enforces for a profile: the profile's own types of each choice element path. */
function choiceTypesOf(sd: StructureDefinition): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const el of sd.snapshot?.element ?? []) {
    if (el.id !== el.path || !el.path?.endsWith('[x]')) continue;
    out.set(
      el.path,
      (el.type ?? []).map((t) => t.code as string),
    );
  }
  return out;
}

/** As validate.ts subExtensionValues(), for every extension definition of ours. */
function subExtensionValues(): Record<string, Record<string, string[] | null>> {
  const out: Record<string, Record<string, string[] | null>> = {};
  for (const sd of ours as unknown as StructureDefinition[]) {
    if (sd.type !== 'Extension') continue;
    const elements = sd.snapshot?.element ?? [];
    const m: Record<string, string[] | null> = {};
    for (const urlEl of elements) {
      if (!urlEl.id?.startsWith('Extension.extension:') || !urlEl.id.endsWith('.url') || typeof urlEl.fixedUri !== 'string') continue;
      if (urlEl.fixedUri in m) continue;
      const slice = urlEl.id.slice(0, -'.url'.length);
      const valueEl = elements.find((e) => e.id === `${slice}.value[x]`);
      if (!valueEl) continue;
      m[urlEl.fixedUri] = valueEl.max === '0' ? null : (valueEl.type ?? []).map((t) => `value${capital(t.code as string)}`);
    }
    if (Object.keys(m).length) out[sd.url as string] = m;
  }
  return out;
}

// Roots: our resource profiles, our extensions, and the base Bundle.
const roots: { kind: 'profile' | 'extension' | 'type'; url: string; fn: string; constraints: string[]; resourceType?: string }[] = [];
function addRoot(
  kindName: 'profile' | 'extension' | 'type',
  url: string,
  schema: InternalTypeSchema,
  resourceType: string | undefined,
  sd?: StructureDefinition,
): void {
  const env = { resourceType, rootType: resourceType, choices: sd ? choiceTypesOf(sd) : undefined };
  const fn = schemaFn(schema, env);
  // Generate this root's functions now, while its choice restrictions apply.
  drain();
  const ty: Ty = { schema: resourceType ? getDataType(resourceType) : getDataType('Extension') };
  const constraints = (schema.constraints ?? []).filter((c) => c.severity === 'error' && !SKIPPED.has(c.key)).map((c) => invariant(c, ty, env, `${url}#root`));
  roots.push({ kind: kindName, url, fn, constraints, ...(resourceType ? { resourceType } : {}) });
}
function drain(): void {
  for (let item = pending.shift(); item; item = pending.shift()) generateSchema(item[0], item[1]);
}

const sds = ours as unknown as StructureDefinition[];
for (const sd of sds) {
  const schema = tryGetProfile(sd.url as string);
  if (!schema) throw new Error(`profile ${sd.url} was not indexed`);
  if (sd.type === 'Extension') addRoot('extension', sd.url as string, schema, undefined, sd);
  else addRoot('profile', sd.url as string, schema, sd.type, sd);
}
addRoot('type', 'Bundle', getDataType('Bundle'), 'Bundle');

// Schemas first reached from one root are shared by later ones only when they are base data
// types; profile-specific functions carry their root's choice restrictions.
const header = `// Generated by scripts/build-validators.ts from src/generated/r4-definitions.json and
// src/generated/profiles.json: do not edit. Run \`npm run build:validators\`.
// Each function throws Unsure unless the value is certainly valid; see src/fhir/validate-fast.ts.
// @ts-nocheck
/* eslint-disable */
import * as R from '../fhir/validate-fast-runtime.ts';

const ourExtension = (function ourExtension(x, cx) {
  const url = x && x.url;
  if (typeof url === 'string' && url.startsWith(${J(OUR_PREFIX)})) {
    const f = cx.extension(url);
    if (!f) R.unsure('unknown extension ' + url);
    f(x, cx);
    const subs = SUB_EXTENSION_VALUES[url];
    if (subs && Array.isArray(x.extension)) {
      for (const sub of x.extension) {
        const allowed = sub && typeof sub.url === 'string' ? subs[sub.url] : undefined;
        if (allowed === undefined) continue;
        for (const k of Object.keys(sub)) {
          if (k.startsWith('value') && /^[A-Z]/.test(k.slice(5)) && (allowed === null || !allowed.includes(k))) R.unsure('sub-extension ' + sub.url + ': ' + k);
        }
      }
    }
  }
});

/** checkSubExtensions: the value keys each sub-extension (by url) of a complex extension allows; null: none. */
const SUB_EXTENSION_VALUES = ${J(subExtensionValues())};
`;
const footer = [
  '',
  '/** Root validators: the schema function and the root invariants, by canonical URL (or type name). */',
  'export const profiles = {',
  ...roots
    .filter((r) => r.kind === 'profile')
    .map(
      (r) =>
        `  ${J(r.url)}: (o, cx) => { if (o.resourceType !== ${J(r.resourceType)}) R.unsure('profile for another type'); ${r.fn}(o, cx); ${r.constraints.map((c) => `${c}(o, cx);`).join(' ')} },`,
    ),
  '};',
  'export const extensions = {',
  ...roots
    .filter((r) => r.kind === 'extension')
    .map((r) => `  ${J(r.url)}: (o, cx) => { ${r.fn}(o, cx); ${r.constraints.map((c) => `${c}(o, cx);`).join(' ')} },`),
  '};',
  'export const types = {',
  ...roots.filter((r) => r.kind === 'type').map((r) => `  ${J(r.url)}: (o, cx) => { ${r.fn}(o, cx); ${r.constraints.map((c) => `${c}(o, cx);`).join(' ')} },`),
  '};',
  `/** Invariants outside the compiled subset (key: reason); a value they apply to falls back. */`,
  `export const notCompiled = ${J(Object.fromEntries([...notCompiled].sort()))};`,
  '',
];
const constantLines = [...constants].map(([expression, name]) => `const ${name} = ${expression};`);
const text = `${header}\n${constantLines.join('\n')}\n${lines.join('\n')}\n${footer.join('\n')}`;

if (check) {
  let current = '';
  try {
    current = readFileSync(outFile, 'utf8');
  } catch {
    // missing
  }
  if (current !== text) {
    console.error('src/generated/validators.ts is out of date: run npm run build:validators');
    process.exit(1);
  }
} else {
  writeFileSync(outFile, text);
  console.log(`wrote ${outFile}: ${schemaNames.size} type functions, ${invariants.size} invariants (${notCompiled.size} not compiled)`);
}
