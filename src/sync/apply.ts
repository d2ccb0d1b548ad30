/**
 * Writing one transaction Bundle to a target: as a FHIR transaction where the server has
 * them, otherwise as ordered conditional writes with the same guarantees (every write is
 * a conditional PUT, so a repeat after a lost response updates rather than duplicates).
 */
import type { Bundle, BundleEntry, CapabilityStatement, Resource } from '@medplum/fhirtypes';
import { type FhirTargetClient, TargetError } from './client.ts';

/** Where one bundle entry landed on the server. */
export interface WrittenResource {
  /** Stable key of the entry: its conditional URL (or `Type/id` for direct PUTs). */
  key: string;
  type: string;
  id: string;
  versionId?: string;
}

export interface Capabilities {
  transaction: boolean;
}

const capabilityCache = new Map<string, { at: number; caps: Capabilities }>();
const CAPABILITY_TTL_MS = 60 * 60_000;

/** Reads (and caches for an hour) whether the server takes transactions. */
export async function capabilities(client: FhirTargetClient, nowMs: number): Promise<Capabilities> {
  const hit = capabilityCache.get(client.baseUrl);
  if (hit && nowMs - hit.at < CAPABILITY_TTL_MS) return hit.caps;
  let caps: Capabilities;
  try {
    const { body } = await client.request<CapabilityStatement>('GET', 'metadata');
    const interactions = (body?.rest ?? []).filter((r) => r.mode === 'server').flatMap((r) => r.interaction ?? []);
    caps = { transaction: interactions.some((i) => i.code === 'transaction') };
  } catch (e) {
    // A server that cannot describe itself is asked for a transaction; its answer decides.
    if (e instanceof TargetError && e.kind === 'http' && e.status !== undefined && e.status < 500 && e.status !== 429) caps = { transaction: true };
    else throw e;
  }
  capabilityCache.set(client.baseUrl, { at: nowMs, caps });
  return caps;
}

/** Forgets cached capabilities (tests, and after a target's configuration changes). */
export function clearCapabilityCache(): void {
  capabilityCache.clear();
}

/** `Type/id/_history/v` or an absolute URL ending so → parts. */
export function parseLocation(location: string | undefined | null): { type: string; id: string; versionId?: string } | undefined {
  if (!location) return undefined;
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?\/?$/.exec(location.split('?')[0] ?? '');
  return m ? { type: m[1] as string, id: m[2] as string, ...(m[3] ? { versionId: m[3] } : {}) } : undefined;
}

const entryKey = (e: BundleEntry): string => e.request?.url as string;

/** Applies the bundle as one transaction. */
export async function applyTransaction(client: FhirTargetClient, bundle: Bundle): Promise<WrittenResource[]> {
  const { body } = await client.request<Bundle>('POST', '', bundle);
  const responses = body?.entry ?? [];
  const entries = bundle.entry ?? [];
  if (body?.resourceType !== 'Bundle' || responses.length !== entries.length) {
    throw new TargetError('http', 'transaction response does not match the request', { status: 502 });
  }
  return entries.map((e, i) => {
    const r = responses[i] as BundleEntry;
    const loc = parseLocation(r.response?.location) ?? (r.resource?.id ? { type: r.resource.resourceType, id: r.resource.id, versionId: r.resource.meta?.versionId } : undefined);
    if (!loc) throw new TargetError('http', `transaction response entry ${i} has no location`, { status: 502 });
    const versionId = loc.versionId ?? etagVersion(r.response?.etag);
    return { key: entryKey(e), type: loc.type, id: loc.id, ...(versionId ? { versionId } : {}) };
  });
}

const etagVersion = (etag: string | null | undefined): string | undefined => (etag ? /W\/"([^"]+)"/.exec(etag)?.[1] ?? undefined : undefined);

/** Orders entries so that every entry comes after the entries it references. */
export function dependencyOrder(entries: BundleEntry[]): BundleEntry[] {
  const byUrl = new Map(entries.map((e) => [e.fullUrl as string, e]));
  const deps = new Map(entries.map((e) => [e.fullUrl as string, referencedUrls(e.resource).filter((u) => byUrl.has(u) && u !== e.fullUrl)]));
  const out: BundleEntry[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (url: string) => {
    const s = state.get(url);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error('reference cycle between bundle entries');
    state.set(url, 'visiting');
    for (const d of deps.get(url) ?? []) visit(d);
    state.set(url, 'done');
    out.push(byUrl.get(url) as BundleEntry);
  };
  for (const e of entries) visit(e.fullUrl as string);
  return out;
}

function referencedUrls(resource: Resource | undefined): string[] {
  return [...JSON.stringify(resource ?? {}).matchAll(/"reference":"(urn:uuid:[0-9a-f-]{36})"/g)].map((m) => m[1] as string);
}

/** Applies the bundle as ordered conditional writes, rewriting urn:uuid references to server ids. */
export async function applyOrdered(client: FhirTargetClient, bundle: Bundle): Promise<WrittenResource[]> {
  const resolved = new Map<string, string>();
  const written = new Map<string, WrittenResource>();
  for (const e of dependencyOrder(bundle.entry ?? [])) {
    const text = JSON.stringify(e.resource).replace(/"reference":"(urn:uuid:[0-9a-f-]{36})"/g, (all, urn: string) => {
      const target = resolved.get(urn);
      return target ? `"reference":"${target}"` : all;
    });
    const method = e.request?.method ?? 'PUT';
    const { headers, body } = await client.request<Resource>(method, entryKey(e), JSON.parse(text));
    const loc = parseLocation(headers.get('location') ?? headers.get('content-location')) ?? (body?.id ? { type: body.resourceType, id: body.id, versionId: body.meta?.versionId } : undefined);
    if (!loc) throw new TargetError('http', 'write response has no location', { status: 502 });
    const versionId = loc.versionId ?? etagVersion(headers.get('etag'));
    resolved.set(e.fullUrl as string, `${loc.type}/${loc.id}`);
    written.set(e.fullUrl as string, { key: entryKey(e), type: loc.type, id: loc.id, ...(versionId ? { versionId } : {}) });
  }
  // Report in bundle order.
  return (bundle.entry ?? []).map((e) => written.get(e.fullUrl as string) as WrittenResource);
}

/** Status element and value that retract each kind of resource the bridge may have to withdraw. */
const RETRACT: Record<string, { field: string; value: string }> = {
  Encounter: { field: 'status', value: 'entered-in-error' },
  Procedure: { field: 'status', value: 'entered-in-error' },
  DocumentReference: { field: 'status', value: 'entered-in-error' },
  QuestionnaireResponse: { field: 'status', value: 'entered-in-error' },
  Observation: { field: 'status', value: 'entered-in-error' },
  Flag: { field: 'status', value: 'entered-in-error' },
  Goal: { field: 'lifecycleStatus', value: 'entered-in-error' },
};

/** Types whose disappearance from a later send is written back as entered-in-error. */
export const RETRACTABLE_TYPES = new Set(Object.keys(RETRACT));

/**
 * Marks a resource entered-in-error: read, change the status, write back with If-Match so
 * a concurrent change is never overwritten (412 → read again). Gone already → nothing to do.
 */
export async function retract(client: FhirTargetClient, type: string, id: string): Promise<WrittenResource | undefined> {
  const rule = RETRACT[type];
  if (!rule) throw new Error(`cannot retract ${type}`);
  for (let tries = 0; ; tries++) {
    let current: Resource & Record<string, unknown>;
    try {
      current = (await client.request<Resource & Record<string, unknown>>('GET', `${type}/${id}`)).body;
    } catch (e) {
      if (e instanceof TargetError && (e.status === 404 || e.status === 410)) return undefined;
      throw e;
    }
    if (current[rule.field] === rule.value) return { key: `${type}/${id}`, type, id, versionId: current.meta?.versionId };
    const version = current.meta?.versionId;
    try {
      const { body, headers } = await client.request<Resource>('PUT', `${type}/${id}`, { ...current, [rule.field]: rule.value }, version ? { 'if-match': `W/"${version}"` } : {});
      const v = body?.meta?.versionId ?? etagVersion(headers.get('etag'));
      return { key: `${type}/${id}`, type, id, ...(v ? { versionId: v } : {}) };
    } catch (e) {
      if (e instanceof TargetError && e.status === 412 && tries < 3) continue;
      throw e;
    }
  }
}
