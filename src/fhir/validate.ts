import {
  type Constraint,
  crawlTypedValue,
  createConstraintIssue,
  evalFhirPathTyped,
  type FhirPathAtom,
  getAllDataTypes,
  getDataType,
  type InternalTypeSchema,
  indexStructureDefinitionBundle,
  isPrimitiveType,
  isResourceType,
  OperationOutcomeError as MedplumOutcomeError,
  parseFhirPath,
  type TypedValue,
  type TypedValueWithPath,
  toTypedValue,
  tryGetDataType,
  tryGetProfile,
  validateTypedValue,
} from '@medplum/core';
import type { Bundle, ElementDefinition, Extension, OperationOutcome, OperationOutcomeIssue, Resource, StructureDefinition } from '@medplum/fhirtypes';
import ourDefinitions from '../generated/profiles.json' with { type: 'json' };
// Prepared at build time by scripts/build-definitions.mjs: a Worker must not load the 35 MB
// R4 bundle. r4-definitions.json holds the R4 data types and the resource types we emit;
// profiles.json holds our profiles and extensions (profiles/StructureDefinition-*.json).
import r4Definitions from '../generated/r4-definitions.json' with { type: 'json' };
import { isObject } from './json.ts';
import { allOk, issue, outcome } from './outcome.ts';
import { findBadStrings } from './strings.ts';
import { CANONICAL_BASE } from './systems.ts';
import { type BindingTokens, checkRequiredBindings } from './validate-bindings.ts';

const OUR_SD_PREFIX = `${CANONICAL_BASE}/StructureDefinition/`;

/** One of our StructureDefinitions, with what the checks below need from it worked out once. */
interface OurDefinition {
  sd: StructureDefinition;
  /** Type name under which its parsed schema is registered with @medplum/core: its URL. */
  dataType: string;
  /** Choice elements (`value[x]`) at any depth, with the paths that lead to them. */
  choices: ChoiceIndex;
  /** For a complex extension: the value[x] element of each sub-extension, by the sub-extension's url. */
  subExtensionValues: Map<string, ElementDefinition>;
}

interface Definitions {
  /** Our profiles (on resources) by canonical URL. */
  profiles: Map<string, OurDefinition>;
  /** Our extension definitions by canonical URL. */
  extensions: Map<string, OurDefinition>;
  /** Keys of the `error` invariants (R4 and ours) whose expression calls resolve(). */
  resolveKeys: Set<string>;
}

let definitions: Definitions | undefined;

/**
 * Indexes the R4 subset and our profiles into @medplum/core, once. Called lazily by
 * {@link validateFhir}; call it at start-up to move the cost out of the first request.
 */
export function loadDefinitions(): void {
  if (definitions) return;
  const r4 = r4Definitions as unknown as StructureDefinition[];
  const ours = ourDefinitions as unknown as StructureDefinition[];
  indexStructureDefinitionBundle(r4);
  indexStructureDefinitionBundle(ours);
  const profiles = new Map<string, OurDefinition>();
  const extensions = new Map<string, OurDefinition>();
  const resolveKeys = new Set<string>();
  for (const sd of [...r4, ...ours]) {
    for (const el of sd.snapshot?.element ?? []) {
      for (const c of el.constraint ?? []) if (c.key && isResolveConstraint(c)) resolveKeys.add(c.key);
    }
  }
  const dataTypes = getAllDataTypes();
  for (const sd of ours) {
    if (!sd.url) continue;
    // validateResource/validateTypedValue with `options.profile` parse the StructureDefinition
    // again on every call (about 1 ms each, several per resource). indexStructureDefinitionBundle
    // above has parsed each of ours once (tryGetProfile); register that schema as a data type
    // named by the profile's URL, so that validateTypedValue({ type: url, value }) gets it from
    // getDataType() instead. Only our own URL-named entries are added: the R4 types and the
    // per-profile namespaces of @medplum/core are left as they are.
    const schema = tryGetProfile(sd.url);
    if (!schema) throw new Error(`profile ${sd.url} was not indexed`);
    dataTypes[sd.url] = withBaseChoiceTypes(schema, getDataType(sd.type as string));
    const def: OurDefinition = { sd, dataType: sd.url, choices: choiceElements(sd), subExtensionValues: subExtensionValues(sd) };
    (sd.type === 'Extension' ? extensions : profiles).set(sd.url, def);
  }
  definitions = { profiles, extensions, resolveKeys };
}

/**
 * The validator reads the properties of the value it starts from with the element definitions
 * of the type it is told (the root value's `type`). With `options.profile` that was the base
 * type, so a choice element the profile narrows (`value[x]` to Coding) still found a value of
 * another type (`valueString`), and checkChoiceTypes reports it as "not allowed here". Keep
 * that behaviour when the root type is the profile's schema: the copy registered for it lists,
 * after the profile's own types, the other types the base element allows. Everything else
 * (cardinality, fixed/pattern values, slices, constraints, bindings) is the profile's.
 */
function withBaseChoiceTypes(profile: InternalTypeSchema, base: InternalTypeSchema): InternalTypeSchema {
  const elements = { ...profile.elements };
  for (const [key, el] of Object.entries(profile.elements)) {
    const baseEl = base.elements[key];
    if (!key.endsWith('[x]') || !baseEl) continue;
    const extra = baseEl.type.filter((t) => !el.type.some((p) => p.code === t.code));
    if (extra.length) elements[key] = { ...el, type: [...el.type, ...extra] };
  }
  return { ...profile, elements };
}

/**
 * Validates a resource, or a Bundle and every entry resource, against base FHIR R4
 * (https://hl7.org/fhir/R4/validation.html) and, for each resource whose meta.profile names
 * one of our profiles, against that profile (which includes the base rules, so such a resource
 * is not validated twice). Our extensions are validated against their definitions wherever they
 * occur. Codes of elements with a `required` binding are checked against the ValueSet's
 * expansion (validate-bindings.ts), which @medplum/core does not do. Neither does it apply a
 * profile's choice-type restrictions below the root, nor resolve() references between Bundle
 * entries in invariants (R4 ctm-1); both are done here (checkChoiceTypes,
 * checkResolveInvariants). A lone resource's references cannot be resolved: there,
 * @medplum/core's reading of such invariants stands.
 *
 * Every issue's expression names where it is, from the outermost resource
 * (`Bundle.entry[3].resource.identifier[0]`). Returns an informational "All OK" outcome
 * when there is nothing to report. Never throws for invalid input.
 */
export function validateFhir(resourceOrBundle: Resource): OperationOutcome {
  loadDefinitions();
  const defs = definitions as Definitions;
  const issues = new IssueList();
  const root = resourceOrBundle;

  if (!root || typeof root !== 'object' || typeof root.resourceType !== 'string') {
    return outcome([issue('structure', 'Not a FHIR resource: resourceType is missing', undefined, 'error', '$this')]);
  }
  if (!isKnownResourceType(root.resourceType)) {
    return outcome([unsupportedType(root.resourceType, root.resourceType)]);
  }
  // Cheap pre-check before the costly validation: strings outside R4's string rule, and
  // element names that are members of Object.prototype, which @medplum/core's element
  // lookup would take for known elements. Either makes the resource invalid: reported alone.
  const bad = findBadStrings(root, { base: root.resourceType, style: 'fhirpath', key: prototypeKey });
  if (bad.length) {
    return outcome(bad.map((b) => issue(b.inKey ? 'structure' : 'invalid', b.inKey ? b.problem : `string ${b.problem}`, undefined, 'error', b.path)));
  }

  if (root.resourceType === 'Bundle') {
    const bundle = root as Bundle;
    // Entries of a type outside our definition subset are reported, then left out of the
    // base validation (which would otherwise stop at the first unknown type).
    let shell: Bundle = bundle;
    const skipped = new Set<number>();
    bundle.entry?.forEach((entry, i) => {
      const rt = entry?.resource?.resourceType;
      if (rt !== undefined && !isKnownResourceType(rt)) {
        skipped.add(i);
        issues.add(unsupportedType(rt, `Bundle.entry[${i}].resource`));
      }
    });
    if (skipped.size) {
      shell = {
        ...bundle,
        entry: bundle.entry?.map((e, i) => {
          if (!skipped.has(i)) return e;
          const { resource: _omitted, ...rest } = e;
          return rest;
        }),
      };
    }
    const fullUrls = new Map<string, string>();
    for (const e of bundle.entry ?? []) {
      if (e?.fullUrl && e.resource?.resourceType) fullUrls.set(e.fullUrl, e.resource.resourceType);
    }
    const resolve = (ref: string): string | null | undefined => fullUrls.get(ref) ?? null;
    const findEntry = bundleResolver(bundle);
    // An entry resource that claims one of our profiles is validated against that profile,
    // whose snapshot carries every rule of the base resource: validating it as a base resource
    // inside the Bundle too would only repeat the work. Such a resource is replaced by a stub
    // (type, meta.versionId: what the Bundle's own invariants bdl-5/7/11/12 read), and what the
    // base validation says inside a stub is dropped.
    const stubbed = new Set<number>();
    bundle.entry?.forEach((entry, i) => {
      if (!skipped.has(i) && entry?.resource && usableProfiles(entry.resource, defs).length) stubbed.add(i);
    });
    if (stubbed.size) {
      shell = {
        ...shell,
        entry: shell.entry?.map((e, i) => (stubbed.has(i) && e.resource ? { ...e, resource: stub(e.resource) } : e)),
      };
    }
    const insideStub = (expression: string): boolean => {
      const m = /^Bundle\.entry\[(\d+)\]\.resource(?:$|[.[])/.exec(expression);
      return !!m && stubbed.has(Number(m[1]));
    };
    // Base validation of the Bundle descends into every entry resource that is not a stub.
    // Invariants that resolve() a reference are evaluated again below with the Bundle's entries
    // at hand (checkResolveInvariants); what @medplum/core said of them inside an entry is dropped.
    const insideEntry = (expression: string): boolean => /^Bundle\.entry\[\d+\]\.resource(?:$|[.[])/.test(expression);
    issues.addAll(
      runMedplum(shell, 'Bundle', 'Bundle', 'Bundle', resolve).filter(
        (i) => !(i.expression ?? []).some(insideStub) && !(isResolveInvariantIssue(i, defs.resolveKeys) && (i.expression ?? []).some(insideEntry)),
      ),
    );
    const unresolvedSeverity = bundle.type === 'transaction' || bundle.type === 'batch' ? 'error' : 'warning';
    bundle.entry?.forEach((entry, i) => {
      if (skipped.has(i) || !entry?.resource) return;
      const at = `Bundle.entry[${i}].resource`;
      validateAgainstOurs(entry.resource, at, defs, issues, resolve, findEntry);
      // An entry resource without a known type has no schema to walk (the base validation above
      // reports it); asking for one would throw.
      if (!usableProfiles(entry.resource, defs).length && isKnownResourceType(String(entry.resource.resourceType))) {
        issues.addAll(checkResolveInvariants(entry.resource, getDataType(entry.resource.resourceType), at, findEntry));
      }
      for (const [path, ref] of localReferences(entry.resource as unknown as JsonObject, at)) {
        if (!fullUrls.has(ref)) {
          issues.add(issue('not-found', `Reference ${ref} does not resolve to an entry of the Bundle`, undefined, unresolvedSeverity, path));
        }
      }
    });
  } else {
    // A lone resource cannot resolve urn:uuid references: their type is not checked.
    const resolve = (): undefined => undefined;
    // As for Bundle entries: validation against one of our profiles includes the base rules.
    if (!usableProfiles(root, defs).length) issues.addAll(runMedplum(root, root.resourceType, root.resourceType, root.resourceType, resolve));
    validateAgainstOurs(root, root.resourceType, defs, issues, resolve);
  }

  return issues.isEmpty() ? allOk() : outcome(issues.toArray());
}

/** An element name that is a member of every JavaScript object (`toString`, `__proto__`, …): never a FHIR element. */
function prototypeKey(key: string): string | undefined {
  return key in Object.prototype ? `element ${key} is not defined by FHIR R4` : undefined;
}

/**
 * A resource type of the definition subset. Our profiles are registered with @medplum/core as
 * data types named by their URL (see loadDefinitions), which isResourceType() alone would accept.
 */
function isKnownResourceType(resourceType: string): boolean {
  return /^[A-Z][A-Za-z]*$/.test(resourceType) && isResourceType(resourceType);
}

/**
 * Looks up the resource type behind a `urn:uuid:`/`urn:oid:` reference (a Bundle entry's
 * fullUrl). `undefined`: cannot be known here; `null`: not in the Bundle.
 */
type ResolveLocal = (reference: string) => string | null | undefined;

const INVALID_REFERENCE = /^Invalid reference: got "(urn:[^"]+)", expected (.*)$/;

/**
 * @medplum/core takes the text before the first "/" of a reference as its type, so every
 * `urn:uuid:` reference to a typed target draws a warning. Resolve it against the Bundle
 * instead: keep the warning only when the entry it points to has the wrong type.
 * Unresolved references are reported separately (see {@link localReferences}).
 */
function fixReferenceWarning(i: OperationOutcomeIssue, resolve: ResolveLocal): OperationOutcomeIssue | undefined {
  const m = i.severity === 'warning' ? INVALID_REFERENCE.exec(i.details?.text ?? '') : null;
  if (!m) return i;
  const [, ref, expected] = m as unknown as [string, string, string];
  const type = resolve(ref);
  if (!type) return undefined;
  const targets = [...expected.matchAll(/"([^"]+)"/g)].map((x) => x[1] as string);
  const ok = targets.some((t) => t === `http://hl7.org/fhir/StructureDefinition/${type}` || t === 'http://hl7.org/fhir/StructureDefinition/Resource');
  if (ok) return undefined;
  return { ...i, details: { text: `Invalid reference: ${ref} is a ${type}, expected ${expected}` } };
}

/**
 * Finds the resource a reference inside a Bundle points to: the entry whose fullUrl is the
 * reference (`urn:uuid:…`, or an absolute URL), else for a relative `Type/id` the entry whose
 * resource has that type and id, or whose fullUrl ends in `/Type/id`
 * (https://hl7.org/fhir/R4/bundle.html#references).
 */
type FindEntry = (reference: string) => Resource | undefined;

function bundleResolver(bundle: Bundle): FindEntry {
  const byFullUrl = new Map<string, Resource>();
  const byTypeAndId = new Map<string, Resource>();
  for (const e of bundle.entry ?? []) {
    const r = e?.resource;
    if (!r || typeof r.resourceType !== 'string') continue;
    if (e.fullUrl) byFullUrl.set(e.fullUrl, r);
    if (typeof r.id === 'string') byTypeAndId.set(`${r.resourceType}/${r.id}`, r);
    const tail = /\/([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})$/.exec(e.fullUrl ?? '')?.[1];
    if (tail && !byTypeAndId.has(tail)) byTypeAndId.set(tail, r);
  }
  return (reference) => byFullUrl.get(reference) ?? byTypeAndId.get(reference.replace(/\/_history\/[^/]*$/, ''));
}

const isResolveConstraint = (c: { expression?: string }): boolean => /\bresolve\(\s*\)/.test(c.expression ?? '');

/** An invariant issue of @medplum/core (createConstraintIssue) for one of `keys`. */
function isResolveInvariantIssue(i: OperationOutcomeIssue, keys: Set<string>): boolean {
  const key = i.code === 'invariant' ? /^Constraint (\S+) not met/.exec(i.details?.text ?? '')?.[1] : undefined;
  return key !== undefined && keys.has(key);
}

const reachesResolveCache = new WeakMap<InternalTypeSchema, boolean>();

/**
 * Whether a value of `schema` can contain an element with an `error` invariant that calls
 * resolve(), looking through its backbone elements and the data types of its elements. Most
 * resource types cannot; checkResolveInvariants then has nothing to do.
 */
function reachesResolve(schema: InternalTypeSchema): boolean {
  const cached = reachesResolveCache.get(schema);
  if (cached !== undefined) return cached;
  const seen = new Set<InternalTypeSchema>();
  const visit = (s: InternalTypeSchema): boolean => {
    if (seen.has(s)) return false;
    seen.add(s);
    if (s.constraints?.some(isResolveConstraint)) return true;
    for (const el of Object.values(s.elements)) {
      if (el.constraints?.some(isResolveConstraint)) return true;
      for (const t of el.type ?? []) {
        if (isPrimitiveType(t.code) || t.code === 'Element' || t.code === 'BackboneElement') continue;
        const typeSchema = tryGetDataType(t.code);
        if (typeSchema && visit(typeSchema)) return true;
      }
    }
    return s.innerTypes.some(visit);
  };
  const result = visit(schema);
  reachesResolveCache.set(schema, result);
  return result;
}

/** A copy of `node` in which every Reference that `find` resolves carries the target as `resource`. */
function withResolvedReferences(node: unknown, find: FindEntry): unknown {
  if (Array.isArray(node)) return node.map((v) => withResolvedReferences(v, find));
  if (!isObject(node)) return node;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) out[k] = typeof v === 'object' && v !== null ? withResolvedReferences(v, find) : v;
  if (typeof node.reference === 'string' && node.resource === undefined) {
    const target = find(node.reference);
    if (target) out.resource = target;
  }
  return out;
}

const parsedInvariants = new Map<string, FhirPathAtom>();

/**
 * Evaluates the `error` invariants that call resolve() (R4 ctm-1: "onBehalfOf only when the
 * member is a Practitioner") on an entry resource, with references to other entries of its
 * Bundle resolved. @medplum/core's FHIRPath resolve() turns `Type/id` into a stub holding only
 * the type, and a `urn:uuid:` reference into nothing, so that such invariants, written as
 * `x.resolve().iif(empty(), true, …)`, pass. It has no resolver hook, but it does return a
 * Reference's `resource` when one is present: the evaluation runs on a copy of the resource in
 * which each Reference to an entry (or, by `#id`, to a contained resource) carries its target.
 * Targets are not themselves given resolved references (no chained resolve()), which the R4
 * invariants do not need. Issues are those @medplum/core would write, rebased to `at`.
 */
function checkResolveInvariants(resource: Resource, schema: InternalTypeSchema, at: string, findEntry: FindEntry): OperationOutcomeIssue[] {
  const contained = (resource as { contained?: Resource[] }).contained;
  if (!reachesResolve(schema) && !contained?.length) return [];
  const find: FindEntry = (ref) => (ref.startsWith('#') ? contained?.find((c) => isObject(c) && c.id === ref.slice(1)) : findEntry(ref));
  const root = toTypedValue(withResolvedReferences(resource, find));
  const rootPath = resource.resourceType;
  const found: OperationOutcomeIssue[] = [];
  const resources: TypedValue[] = [];
  const check = (value: TypedValueWithPath, constraints: Constraint[] | undefined): void => {
    for (const c of constraints ?? []) {
      if (c.severity !== 'error' || !isResolveConstraint(c)) continue;
      let atom = parsedInvariants.get(c.expression);
      if (!atom) parsedInvariants.set(c.expression, (atom = parseFhirPath(c.expression)));
      const variables: Record<string, TypedValue> = { '%context': value, '%resource': resources.at(-1) ?? root, '%rootResource': root };
      try {
        const result = evalFhirPathTyped(atom, [value], variables);
        if (!(result.length === 1 && result[0]?.value === true)) found.push(createConstraintIssue(value.path, c));
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        found.push(issue('processing', `Error evaluating invariant ${c.key}: ${message}`, undefined, 'error', value.path));
      }
    }
  };
  check({ ...root, path: rootPath }, schema.constraints);
  crawlTypedValue(
    root,
    {
      onEnterResource: (_path, value) => void resources.push(value),
      onExitResource: () => void resources.pop(),
      visitProperty: (_parent, key, _path, values, s) => {
        const constraints = s.elements[key]?.constraints;
        if (!constraints?.some(isResolveConstraint)) return;
        for (const v of values) for (const x of Array.isArray(v) ? v : [v]) check(x, constraints);
      },
    },
    { schema, initialPath: rootPath },
  );
  return found.map((i) => ({ ...i, expression: (i.expression ?? [rootPath]).map((x) => rebase(x, rootPath, at)) }));
}

/** `reference` values inside a resource that point at Bundle entries (urn:uuid:, urn:oid:). */
function localReferences(node: unknown, path: string, out: [string, string][] = []): [string, string][] {
  if (Array.isArray(node)) {
    node.forEach((v, i) => localReferences(v, `${path}[${i}]`, out));
  } else if (isObject(node)) {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'reference' && typeof v === 'string' && v.startsWith('urn:')) out.push([`${path}.reference`, v]);
      else if (typeof v === 'object' && v !== null && !(isObject(v) && typeof v.resourceType === 'string')) {
        localReferences(v, `${path}.${k}`, out);
      }
    }
  }
  return out;
}

/** A stand-in for an entry resource in the Bundle's base validation (see validateFhir). */
function stub(resource: Resource): Resource {
  const versionId = resource.meta?.versionId;
  return { resourceType: resource.resourceType, ...(versionId !== undefined ? { meta: { versionId } } : {}) } as Resource;
}

/** Our profiles in meta.profile that are known and for the resource's type. */
function usableProfiles(resource: Resource, defs: Definitions): OurDefinition[] {
  const out: OurDefinition[] = [];
  for (const url of Array.isArray(resource.meta?.profile) ? resource.meta.profile : []) {
    const profile = typeof url === 'string' ? defs.profiles.get(url.split('|')[0] as string) : undefined;
    if (profile && profile.sd.type === resource.resourceType) out.push(profile);
  }
  return out;
}

/**
 * Profile validation (for our meta.profile entries) and our extensions, for one resource. A
 * resource that claims none of our profiles has been validated against base R4 by the caller.
 */
function validateAgainstOurs(resource: Resource, at: string, defs: Definitions, issues: IssueList, resolve: ResolveLocal, findEntry?: FindEntry): void {
  const profiles = Array.isArray(resource.meta?.profile) ? resource.meta.profile : [];
  profiles.forEach((url, i) => {
    if (typeof url !== 'string') return; // the base validation reports the type
    const canonical = url.split('|')[0] as string;
    if (!canonical.startsWith(OUR_SD_PREFIX)) return; // not ours: nothing to check it against
    const profile = defs.profiles.get(canonical);
    if (!profile) {
      issues.add(issue('not-found', `Unknown profile ${url}`, undefined, 'error', `${at}.meta.profile[${i}]`));
      return;
    }
    const { sd } = profile;
    if (sd.type !== resource.resourceType) {
      issues.add(issue('invalid', `Profile ${sd.id} is for ${sd.type}, not ${resource.resourceType}`, undefined, 'error', `${at}.meta.profile[${i}]`));
      return;
    }
    const tag = ` (profile ${sd.id})`;
    let found = runMedplum(resource, profile.dataType, resource.resourceType, at, resolve);
    if (findEntry) {
      // Inside a Bundle, invariants that resolve() references are decided by checkResolveInvariants.
      found = found.filter((i) => !isResolveInvariantIssue(i, defs.resolveKeys));
      found.push(...checkResolveInvariants(resource, getDataType(profile.dataType), at, findEntry));
    }
    issues.addAll(found, tag);
    issues.addAll(checkChoiceTypes(resource as unknown as JsonObject, profile, at), tag);
  });
  walkExtensions(resource as unknown as JsonObject, at, defs, issues, resolve);
}

/**
 * Runs @medplum/core's validator on `value` as data type `type` (a resource type,
 * "Extension", or the URL of one of our StructureDefinitions, see loadDefinitions), then checks
 * the values it collected for elements with a required binding (validate-bindings.ts). The
 * validator throws when there is an error (with all issues) and returns warnings otherwise;
 * either way we want the list. `rootPath` is the path the validator starts from (the resource
 * type, or "Extension"), replaced by `at`.
 */
function runMedplum(value: Resource | Extension, type: string, rootPath: string, at: string, resolve: ResolveLocal): OperationOutcomeIssue[] {
  let found: OperationOutcomeIssue[];
  const tokens: BindingTokens = {};
  try {
    found = validateTypedValue({ type, value }, { collect: { tokens } });
  } catch (e) {
    if (e instanceof MedplumOutcomeError) {
      found = e.outcome.issue ?? [];
    } else {
      const message = e instanceof Error ? e.message : String(e);
      return [issue('exception', `Validator failed: ${message}`, undefined, 'error', at)];
    }
  }
  return found
    .map((i) => fixReferenceWarning(i, resolve))
    .filter((i): i is OperationOutcomeIssue => i !== undefined)
    .map((i): OperationOutcomeIssue => ({ ...i, expression: (i.expression ?? [rootPath]).map((x) => rebase(x, rootPath, at)) }))
    .concat(checkRequiredBindings(tokens, (path) => rebase(path, rootPath, at)));
}

function rebase(expression: string, rootPath: string, at: string): string {
  if (rootPath === at) return expression;
  if (expression === rootPath) return at;
  if (expression.startsWith(`${rootPath}.`)) return at + expression.slice(rootPath.length);
  return `${at}.${expression}`;
}

type JsonObject = Record<string, unknown>;

/**
 * Finds every extension in a resource (not descending into nested resources) and checks the
 * ones in our namespace against their definitions. @medplum/core validates an extension only
 * as a base Extension, so value types, cardinalities and invariants of our extensions would
 * otherwise go unchecked.
 */
function walkExtensions(node: unknown, path: string, defs: Definitions, issues: IssueList, resolve: ResolveLocal): void {
  if (Array.isArray(node)) {
    node.forEach((v, i) => walkExtensions(v, `${path}[${i}]`, defs, issues, resolve));
    return;
  }
  if (!isObject(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (isObject(value) && typeof value.resourceType === 'string') continue; // a nested resource
    if ((key === 'extension' || key === 'modifierExtension') && Array.isArray(value)) {
      value.forEach((ext, i) => {
        const at = `${path}.${key}[${i}]`;
        const url = isObject(ext) ? ext.url : undefined;
        if (typeof url === 'string' && url.startsWith(OUR_SD_PREFIX)) {
          const def = defs.extensions.get(url);
          if (!def) {
            issues.add(issue('not-found', `Unknown extension ${url}`, undefined, 'error', `${at}.url`));
          } else {
            const tag = ` (extension ${def.sd.id})`;
            issues.addAll(runMedplum(ext as Extension, def.dataType, 'Extension', at, resolve), tag);
            issues.addAll(checkChoiceTypes(ext as JsonObject, def, at), tag);
            checkSubExtensions(ext as JsonObject, def, at, issues, tag);
          }
        }
      });
    }
    if (typeof value === 'object' && value !== null) {
      const childPath = key.startsWith('_') ? `${path}.${key.slice(1)}` : `${path}.${key}`;
      walkExtensions(value, childPath, defs, issues, resolve);
    }
  }
}

/**
 * Where a profile's choice elements are: the choice elements (by name without `[x]`) of each
 * element path that has some, and which child elements lead to one. `descend` maps a child's
 * element path to the path whose definition applies to it: itself, or for an element defined
 * by `contentReference` (QuestionnaireResponse.item.item, ….answer.item) the element it
 * refers to, so that restrictions on `item.answer.value[x]` hold for nested items as well.
 */
interface ChoiceIndex {
  root: string;
  byParent: Map<string, [string, ElementDefinition][]>;
  descend: Map<string, string>;
}

/**
 * The choice elements (`value[x]`, `effective[x]`) of `sd` at every depth. Slices are left out
 * (their ids are not their paths), and so is everything below `extension` and
 * `modifierExtension` in a resource profile: extensions are checked against their own
 * definitions (walkExtensions). Of an extension definition only the root `value[x]` is taken;
 * its sub-extensions' values are checked slice by slice (checkSubExtensions).
 */
function choiceElements(sd: StructureDefinition): ChoiceIndex {
  const root = sd.snapshot?.element?.[0]?.path ?? sd.type ?? '';
  const byParent = new Map<string, [string, ElementDefinition][]>();
  const descend = new Map<string, string>();
  const elements = (sd.snapshot?.element ?? []).filter((el) => el.id && el.path && el.id === el.path);
  const inExtension = (path: string): boolean => /\.(extension|modifierExtension)(\.|$)/.test(path.slice(root.length));
  /** Marks every element path between the root and `path` (inclusive) as one to descend into. */
  const lead = (path: string, target = path): void => {
    descend.set(path, target);
    for (let p = path.slice(0, path.lastIndexOf('.')); p.length > root.length; p = p.slice(0, p.lastIndexOf('.'))) {
      if (!descend.has(p)) descend.set(p, p);
    }
  };
  for (const el of elements) {
    const path = el.path as string;
    if (!path.endsWith('[x]') || inExtension(path)) continue;
    const parent = path.slice(0, path.lastIndexOf('.'));
    if (sd.type === 'Extension' && parent !== root) continue;
    const name = path.slice(parent.length + 1, -3);
    byParent.set(parent, [...(byParent.get(parent) ?? []), [name, el]]);
    if (parent !== root) lead(parent);
  }
  // Elements defined by reference to another element lead to that element's choices too.
  for (let changed = true; changed; ) {
    changed = false;
    for (const el of elements) {
      const path = el.path as string;
      const target = el.contentReference?.startsWith('#') ? el.contentReference.slice(1) : undefined;
      if (!target || descend.has(path) || inExtension(path)) continue;
      if (descend.has(target) || byParent.has(target)) {
        lead(path, target);
        changed = true;
      }
    }
  }
  return { root, byParent, descend };
}

/**
 * @medplum/core does not check that a choice element (`value[x]`, `effective[x]`) uses one of
 * the types a profile allows. Checks the choice elements of the profile at every depth
 * (`QuestionnaireResponse.item.answer.value[x]` in every item, nested items included).
 */
function checkChoiceTypes(obj: JsonObject, def: OurDefinition, at: string): OperationOutcomeIssue[] {
  const out: OperationOutcomeIssue[] = [];
  walkChoices(obj, def.choices.root, at, def.choices, out);
  return out;
}

function walkChoices(obj: JsonObject, elementPath: string, at: string, index: ChoiceIndex, out: OperationOutcomeIssue[]): void {
  for (const [name, el] of index.byParent.get(elementPath) ?? []) out.push(...checkChoice(obj, name, el, at));
  for (const [key, value] of Object.entries(obj)) {
    const target = index.descend.get(`${elementPath}.${key}`);
    if (!target) continue;
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        if (isObject(v)) walkChoices(v, target, `${at}.${key}[${i}]`, index, out);
      });
    } else if (isObject(value)) {
      walkChoices(value, target, `${at}.${key}`, index, out);
    }
  }
}

function checkChoice(obj: JsonObject, name: string, el: ElementDefinition, at: string): OperationOutcomeIssue[] {
  const present = Object.keys(obj).filter((k) => k.startsWith(name) && /^[A-Z]/.test(k.slice(name.length)));
  if (!present.length) return [];
  const allowed = (el.type ?? []).map((t) => name + (t.code ?? '').charAt(0).toUpperCase() + (t.code ?? '').slice(1));
  return present
    .filter((k) => el.max === '0' || !allowed.includes(k))
    .map((k) =>
      issue(
        'structure',
        el.max === '0' ? `${name}[x] is not allowed here` : `${k} is not allowed here; expected ${allowed.join(' or ')}`,
        undefined,
        'error',
        `${at}.${k}`,
      ),
    );
}

/** The value[x] element of each sub-extension (slice of Extension.extension), by its url. */
function subExtensionValues(sd: StructureDefinition): Map<string, ElementDefinition> {
  const out = new Map<string, ElementDefinition>();
  if (sd.type !== 'Extension') return out;
  const elements = sd.snapshot?.element ?? [];
  for (const urlEl of elements) {
    if (!urlEl.id?.startsWith('Extension.extension:') || !urlEl.id.endsWith('.url') || typeof urlEl.fixedUri !== 'string') continue;
    if (out.has(urlEl.fixedUri)) continue; // the first slice with this url wins, as before
    const slice = urlEl.id.slice(0, -'.url'.length);
    const valueEl = elements.find((e) => e.id === `${slice}.value[x]`);
    if (valueEl) out.set(urlEl.fixedUri, valueEl);
  }
  return out;
}

/** Value types of the sub-extensions of a complex extension (slices of Extension.extension). */
function checkSubExtensions(ext: JsonObject, def: OurDefinition, at: string, issues: IssueList, tag: string): void {
  const subs = ext.extension;
  if (!Array.isArray(subs)) return;
  subs.forEach((sub, i) => {
    if (!isObject(sub) || typeof sub.url !== 'string') return;
    const valueEl = def.subExtensionValues.get(sub.url);
    if (valueEl) issues.addAll(checkChoice(sub, 'value', valueEl, `${at}.extension[${i}]`), tag);
  });
}

function unsupportedType(resourceType: string, at: string): OperationOutcomeIssue {
  return issue(
    'not-supported',
    `Resource type ${resourceType} is not known to this validator (it carries only the R4 types the bridge emits)`,
    undefined,
    'error',
    at,
  );
}

/** Issues in order of discovery, without duplicates (base and profile validation overlap). */
class IssueList {
  private readonly seen = new Set<string>();
  private readonly list: OperationOutcomeIssue[] = [];

  add(i: OperationOutcomeIssue, tag = ''): void {
    const key = [i.severity, i.code, (i.expression ?? []).join(','), i.details?.text ?? ''].join('|');
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push(tag && i.details?.text ? { ...i, details: { ...i.details, text: i.details.text + tag } } : i);
  }

  addAll(issues: OperationOutcomeIssue[], tag = ''): void {
    for (const i of issues) this.add(i, tag);
  }

  isEmpty(): boolean {
    return this.list.length === 0;
  }

  toArray(): OperationOutcomeIssue[] {
    return [...this.list];
  }
}
