/**
 * The fast path of FHIR validation: validators generated at build time
 * (scripts/build-validators.ts → src/generated/validators.ts) decide whether a resource or
 * Bundle is certainly valid, in which case the answer is the one `validateFhir` gives
 * then ("All OK"). Whatever they cannot decide — any defect, anything unusual, an invariant
 * outside the compiled subset — is handed to `validateFhir` (src/fhir/validate.ts), whose OperationOutcome
 * (issue paths and messages included) is returned unchanged. The verdicts are therefore those
 * of the reference validator; test/unit/validate-differential.test.ts holds the two to that.
 * How often each path is taken is counted ({@link fastPathStats}) and shown by `npm run bench`.
 *
 * The reference validator (@medplum/core and the definitions it indexes) is imported only when
 * a first value is undecided: a process or Worker isolate that sees only valid Bundles never
 * loads or evaluates it, which is most of a cold start. Hence validateFast is asynchronous.
 */
import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { extensions, profiles, types } from '../generated/validators.ts';
import { allOk } from './outcome.ts';
import { type FastContext, isObj, type Obj, Unsure } from './validate-fast-runtime.ts';

type Reference = typeof import('./validate.ts');
let reference: Promise<Reference> | undefined;

/**
 * The reference validator, imported on first use and memoised. A failed import is not
 * memoised, so a later call tries again.
 */
export function loadReference(): Promise<Reference> {
  reference ??= import('./validate.ts').catch((e: unknown) => {
    reference = undefined;
    throw e;
  });
  return reference;
}

/** Whether the reference validator has been asked for (by a fallback or {@link loadReference}). */
export const referenceRequested = (): boolean => reference !== undefined;

type Validator = (o: Obj, cx: FastContext) => void;
const PROFILES = profiles as Record<string, Validator>;
const EXTENSIONS = extensions as Record<string, Validator>;
const BUNDLE = (types as Record<string, Validator>).Bundle as Validator;
const extension = (url: string): Validator | undefined => (Object.hasOwn(EXTENSIONS, url) ? EXTENSIONS[url] : undefined);

const MAX_REASONS = 32;

/** How often the fast path decided, how often it fell back to the reference, and why (at most 32 distinct reasons, then "other"). */
export const fastPathStats = { fast: 0, fallback: 0, reasons: new Map<string, number>() };

/** Resets {@link fastPathStats}. */
export function resetFastPathStats(): void {
  fastPathStats.fast = 0;
  fastPathStats.fallback = 0;
  fastPathStats.reasons.clear();
}

/**
 * Validates like `validateFhir` (same OperationOutcome), deciding valid resources and
 * Bundles with the generated validators and leaving everything else to the reference.
 * https://hl7.org/fhir/R4/validation.html
 */
export async function validateFast(resource: Resource): Promise<OperationOutcome> {
  const why = undecided(resource);
  if (why === undefined) {
    fastPathStats.fast++;
    return allOk();
  }
  fastPathStats.fallback++;
  // Reasons can quote the input (an unknown element's name): bounded in number and length.
  const key = fastPathStats.reasons.has(why) || fastPathStats.reasons.size < MAX_REASONS ? why.slice(0, 120) : 'other';
  fastPathStats.reasons.set(key, (fastPathStats.reasons.get(key) ?? 0) + 1);
  const { validateFhir } = await loadReference();
  return validateFhir(resource);
}

/**
 * Undefined when the generated validators find `resource` certainly valid; otherwise why not.
 * Exported for the differential tests.
 */
export function undecided(resource: unknown): string | undefined {
  try {
    if (!isObj(resource) || typeof resource.resourceType !== 'string') return 'not a resource';
    if (resource.resourceType === 'Bundle') checkBundle(resource as unknown as Bundle);
    else checkResource(resource, { resources: [resource], root: resource, localRefs: [], extension });
    return undefined;
  } catch (e) {
    if (e instanceof Unsure) return e.message;
    // A shape the generated code did not expect (it runs on untrusted JSON): not decided.
    return `error: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/** The profile validator of a resource: every meta.profile must be one of ours, none other. */
function profileOf(resource: Obj): Validator[] {
  const meta = resource.meta;
  const urls = isObj(meta) && Array.isArray(meta.profile) ? meta.profile : [];
  if (!urls.length) throw new Unsure(`${resource.resourceType} without one of our profiles`);
  return urls.map((url) => {
    const v = typeof url === 'string' && Object.hasOwn(PROFILES, url) ? PROFILES[url] : undefined;
    if (!v) throw new Unsure(`profile ${String(url)}`);
    return v;
  });
}

function checkResource(resource: Obj, cx: FastContext): void {
  for (const validate of profileOf(resource)) validate(resource, cx);
  if (cx.localRefs.length && !cx.localType) throw new Unsure('urn: reference outside a Bundle');
}

function checkBundle(bundle: Bundle): void {
  if (bundle.meta?.profile !== undefined) throw new Unsure('Bundle with a profile');
  const entries = bundle.entry;
  if (entries !== undefined && !Array.isArray(entries)) throw new Unsure('Bundle.entry not an array');
  const fullUrls = new Map<string, string>();
  const byFullUrl = new Map<string, Resource>();
  const byTypeAndId = new Map<string, Resource>();
  for (const e of entries ?? []) {
    const r = isObj(e) ? (e.resource as Resource | undefined) : undefined;
    if (!isObj(e) || !isObj(r) || typeof r.resourceType !== 'string') throw new Unsure('entry without a resource');
    if (typeof e.fullUrl === 'string') {
      fullUrls.set(e.fullUrl, r.resourceType);
      byFullUrl.set(e.fullUrl, r);
    }
    if (typeof r.id === 'string') byTypeAndId.set(`${r.resourceType}/${r.id}`, r);
    const tail = /\/([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})$/.exec(typeof e.fullUrl === 'string' ? e.fullUrl : '')?.[1];
    if (tail && !byTypeAndId.has(tail)) byTypeAndId.set(tail, r);
  }
  const localType = (ref: string): string | null => fullUrls.get(ref) ?? null;
  const find = (ref: string): unknown => byFullUrl.get(ref) ?? byTypeAndId.get(ref.replace(/\/_history\/[^/]*$/, ''));
  // The Bundle as validate.ts validates it: each entry resource replaced by a stub.
  const shell = {
    ...bundle,
    ...(entries ? { entry: entries.map((e) => ({ ...e, resource: stub(e.resource as Resource) })) } : {}),
  } as unknown as Obj;
  const bundleCx: FastContext = { resources: [shell], root: shell, localRefs: [], extension, localType, find };
  BUNDLE(shell, bundleCx);
  for (const e of entries ?? []) {
    const r = e.resource as unknown as Obj;
    const cx: FastContext = { resources: [r], root: r, localRefs: [], extension, localType, find };
    checkResource(r, cx);
    // Unresolved urn: references are errors in a transaction or batch and warnings otherwise.
    for (const ref of cx.localRefs) if (!fullUrls.has(ref)) throw new Unsure(`unresolved ${ref}`);
  }
}

function stub(resource: Resource): Resource {
  const versionId = resource.meta?.versionId;
  return { resourceType: resource.resourceType, ...(versionId !== undefined ? { meta: { versionId } } : {}) } as Resource;
}
