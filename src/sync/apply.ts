/**
 * Writing one transaction Bundle to a target: as a FHIR transaction where the server has
 * them, otherwise as ordered conditional writes with the same guarantees (every write is
 * conditional, so a repeat after a lost response updates or finds rather than duplicates).
 *
 * Entries come in the two forms src/fhir/write-semantics.ts gives them: conditional
 * updates for what the episode owns, conditional creates for master data. Master data that
 * already existed is then supplemented (supplementMasterData): what it lacks is added with
 * JSON Patch, nothing it has is removed or replaced.
 */
import type { Operation } from '@medplum/core';
import type { Bundle, BundleEntry, CapabilityStatement, Resource } from '@medplum/fhirtypes';
import { MASTER_DATA_TYPES } from '../fhir/write-semantics.ts';
import { type FhirTargetClient, TargetError } from './client.ts';

/** Where one bundle entry landed on the server. */
export interface WrittenResource {
  /** Stable key of the entry: its conditional URL (or `Type/id` for direct PUTs). */
  key: string;
  type: string;
  id: string;
  versionId?: string;
}

/** One entry as the server answered it. */
export interface AppliedEntry extends WrittenResource {
  /** The entry's fullUrl in the bundle. */
  fullUrl: string;
  /** HTTP status of the write: 201 when it created the resource. */
  status: number;
  /** Written create-if-absent (master data): never replaced. */
  createOnly: boolean;
  /** Master data that existed, to which the bridge added what it lacked (JSON Patch). */
  supplemented?: boolean;
  /** The server's representation in its answer, when it sent one. */
  current?: Resource;
}

/** What one delivery did, per resource (https://hl7.org/fhir/R4/http.html#transaction-response). */
export interface WriteCounts {
  created: number;
  updated: number;
  unchanged: number;
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

/**
 * Stable key of an entry across sends: its conditional URL (`Type?identifier=…`, for a
 * conditional create the URL it searches), or `Type/id` for a direct PUT.
 */
export const entryKey = (e: BundleEntry): string => {
  const { url, ifNoneExist } = e.request ?? {};
  return ifNoneExist ? `${url}?${ifNoneExist}` : (url as string);
};

const isCreateOnly = (e: BundleEntry): boolean => e.request?.method === 'POST' && !!e.request.ifNoneExist;

const httpStatus = (status: string | undefined): number => Number.parseInt(status ?? '', 10) || 0;

/** Applies the bundle as one transaction. */
export async function applyTransaction(client: FhirTargetClient, bundle: Bundle): Promise<AppliedEntry[]> {
  const { body } = await client.request<Bundle>('POST', '', bundle);
  const responses = body?.entry ?? [];
  const entries = bundle.entry ?? [];
  if (body?.resourceType !== 'Bundle' || responses.length !== entries.length) {
    throw new TargetError('http', 'transaction response does not match the request', { status: 502 });
  }
  return entries.map((e, i) => {
    const r = responses[i] as BundleEntry;
    const loc =
      parseLocation(r.response?.location) ??
      (r.resource?.id ? { type: r.resource.resourceType, id: r.resource.id, versionId: r.resource.meta?.versionId } : undefined);
    if (!loc) throw new TargetError('http', `transaction response entry ${i} has no location`, { status: 502 });
    const versionId = loc.versionId ?? etagVersion(r.response?.etag);
    return {
      key: entryKey(e),
      type: loc.type,
      id: loc.id,
      ...(versionId ? { versionId } : {}),
      fullUrl: e.fullUrl as string,
      status: httpStatus(r.response?.status),
      createOnly: isCreateOnly(e),
      ...(r.resource?.resourceType === loc.type && r.resource.id === loc.id ? { current: r.resource } : {}),
    };
  });
}

const etagVersion = (etag: string | null | undefined): string | undefined => (etag ? (/W\/"([^"]+)"/.exec(etag)?.[1] ?? undefined) : undefined);

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
export async function applyOrdered(client: FhirTargetClient, bundle: Bundle): Promise<AppliedEntry[]> {
  const resolved = new Map<string, string>();
  const written = new Map<string, AppliedEntry>();
  for (const e of dependencyOrder(bundle.entry ?? [])) {
    const text = JSON.stringify(e.resource).replace(/"reference":"(urn:uuid:[0-9a-f-]{36})"/g, (all, urn: string) => {
      const target = resolved.get(urn);
      return target ? `"reference":"${target}"` : all;
    });
    const createOnly = isCreateOnly(e);
    const method = e.request?.method ?? 'PUT';
    // A conditional create outside a transaction carries its condition in If-None-Exist.
    const { status, headers, body } = createOnly
      ? await client.request<Resource>('POST', e.request?.url as string, JSON.parse(text), { 'if-none-exist': e.request?.ifNoneExist as string })
      : await client.request<Resource>(method, entryKey(e), JSON.parse(text));
    let loc =
      parseLocation(headers.get('location') ?? headers.get('content-location')) ??
      (body?.id ? { type: body.resourceType, id: body.id, versionId: body.meta?.versionId } : undefined);
    // "200 OK" to a conditional create may come without a body or location: find what it matched.
    if (!loc && createOnly) loc = await findOne(client, entryKey(e));
    if (!loc) throw new TargetError('http', 'write response has no location', { status: 502 });
    const versionId = loc.versionId ?? etagVersion(headers.get('etag'));
    resolved.set(e.fullUrl as string, `${loc.type}/${loc.id}`);
    written.set(e.fullUrl as string, {
      key: entryKey(e),
      type: loc.type,
      id: loc.id,
      ...(versionId ? { versionId } : {}),
      fullUrl: e.fullUrl as string,
      status,
      createOnly,
      ...(body?.resourceType === loc.type && body.id === loc.id ? { current: body } : {}),
    });
  }
  // Report in bundle order.
  return (bundle.entry ?? []).map((e) => written.get(e.fullUrl as string) as AppliedEntry);
}

/** The one resource a search URL finds, or undefined when it finds none or several. */
export async function findOne(client: FhirTargetClient, searchUrl: string): Promise<{ type: string; id: string; versionId?: string } | undefined> {
  const type = searchUrl.split('?')[0];
  const { body } = await client.request<Bundle>('GET', searchUrl);
  // Only matches count (a server may add included or outcome entries).
  const found = (body?.entry ?? []).filter(
    (x) => x.search?.mode !== 'include' && x.search?.mode !== 'outcome' && x.resource?.resourceType === type && x.resource?.id,
  );
  if (found.length !== 1) return undefined;
  const r = found[0]?.resource as Resource;
  return { type: r.resourceType, id: r.id as string, ...(r.meta?.versionId ? { versionId: r.meta.versionId } : {}) };
}

/** Every resource a search URL finds (matches only, not included or outcome entries). */
export async function findMatches<T extends Resource = Resource>(client: FhirTargetClient, searchUrl: string): Promise<(T & { id: string })[]> {
  const type = searchUrl.split('?')[0];
  const { body } = await client.request<Bundle>('GET', searchUrl);
  return (body?.entry ?? [])
    .filter((x) => x.search?.mode !== 'include' && x.search?.mode !== 'outcome' && x.resource?.resourceType === type && x.resource?.id)
    .map((x) => x.resource as T & { id: string });
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

/**
 * Types whose disappearance from a later send is written back as entered-in-error. Never
 * master data: it is shared with other episodes and systems, whatever the table above says.
 */
export const RETRACTABLE_TYPES: ReadonlySet<string> = new Set(Object.keys(RETRACT).filter((t) => !MASTER_DATA_TYPES.has(t)));

/**
 * Marks a resource entered-in-error: read, change the status, write back with If-Match so
 * a concurrent change is never overwritten (412 → read again). Gone already → nothing to do.
 */
export async function retract(
  client: FhirTargetClient,
  type: string,
  id: string,
  /** Another status to set in the same careful way (a replaced document version: `superseded`). */
  to?: { field: string; value: string },
): Promise<WrittenResource | undefined> {
  const rule = to ?? (RETRACTABLE_TYPES.has(type) ? RETRACT[type] : undefined);
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
      const { body, headers } = await client.request<Resource>(
        'PUT',
        `${type}/${id}`,
        { ...current, [rule.field]: rule.value },
        version ? { 'if-match': `W/"${version}"` } : {},
      );
      const v = body?.meta?.versionId ?? etagVersion(headers.get('etag'));
      return { key: `${type}/${id}`, type, id, ...(v ? { versionId: v } : {}) };
    } catch (e) {
      if (e instanceof TargetError && e.status === 412 && tries < 3) continue;
      throw e;
    }
  }
}

/** Elements never added to existing master data: identity, bookkeeping, and the record keeper's own status. */
const NOT_SUPPLEMENTED = new Set(['resourceType', 'id', 'meta', 'text', 'contained', 'implicitRules', 'language', 'modifierExtension', 'active']);

const escapePointer = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * JSON Patch (RFC 6902) that adds to `current` what the bridge's `desired` version has and
 * `current` lacks, and nothing else: each identifier whose system `current` has no
 * identifier of (a server's own value for a system wins), and each top-level element
 * `current` does not have at all. Only `add` ops that append to an array or create an absent
 * member, so applying it can never remove or replace anything. Elements that hold a
 * reference `resolve` cannot turn into a server reference are left out.
 */
export function additionsPatch(current: Resource, desired: Resource, resolve: (reference: string) => string | undefined = () => undefined): Operation[] {
  const ops: Operation[] = [];
  const have = current as unknown as Record<string, unknown>;
  const want = desired as unknown as Record<string, unknown>;
  const rewrite = (value: unknown): unknown => {
    let unresolved = false;
    const text = JSON.stringify(value).replace(/"reference":"(urn:uuid:[0-9a-f-]{36})"/g, (all, urn: string) => {
      const target = resolve(urn);
      if (!target) unresolved = true;
      return target ? `"reference":${JSON.stringify(target)}` : all;
    });
    return unresolved ? undefined : JSON.parse(text);
  };

  const ids = (v: unknown): { system?: string; value?: string }[] => (Array.isArray(v) ? v : []);
  const haveSystems = new Set(ids(have.identifier).map((i) => i.system));
  const missing = ids(want.identifier).filter((i) => i.system && i.value && !haveSystems.has(i.system));
  if (missing.length) {
    if (have.identifier === undefined) ops.push({ op: 'add', path: '/identifier', value: missing });
    else if (Array.isArray(have.identifier)) for (const i of missing) ops.push({ op: 'add', path: '/identifier/-', value: i });
  }

  for (const [k, v] of Object.entries(want)) {
    if (NOT_SUPPLEMENTED.has(k) || k === 'identifier' || v === undefined || have[k] !== undefined) continue;
    const value = rewrite(v);
    if (value !== undefined) ops.push({ op: 'add', path: `/${escapePointer(k)}`, value });
  }
  return ops;
}

const CONFLICT = new Set([409, 412, 422]);

/**
 * For each master-data entry that matched an existing resource, adds what the resource
 * lacks (additionsPatch) with PATCH `application/json-patch+json`, guarded by If-Match on
 * the version it read (https://hl7.org/fhir/R4/http.html#patch). A concurrent change (412,
 * or 409/422 for a failed guard) means read again and recompute; what is already there is
 * not added twice, so a repeat after a lost answer patches nothing. A server without PATCH,
 * or that does not let the bridge patch (403, 405, 501), is left as it is. Marks patched
 * entries `supplemented` and takes their new version.
 */
export async function supplementMasterData(client: FhirTargetClient, bundle: Bundle, applied: AppliedEntry[]): Promise<AppliedEntry[]> {
  const serverRef = new Map(applied.map((a) => [a.fullUrl, `${a.type}/${a.id}`]));
  const desiredBy = new Map((bundle.entry ?? []).map((e) => [e.fullUrl as string, e.resource as Resource]));
  const out: AppliedEntry[] = [];
  for (const a of applied) {
    const desired = desiredBy.get(a.fullUrl);
    if (!a.createOnly || !MASTER_DATA_TYPES.has(a.type) || a.status === 201 || !desired) {
      out.push(a);
      continue;
    }
    out.push(await supplementOne(client, a, desired, (urn) => serverRef.get(urn)));
  }
  return out;
}

async function supplementOne(
  client: FhirTargetClient,
  a: AppliedEntry,
  desired: Resource,
  resolve: (urn: string) => string | undefined,
): Promise<AppliedEntry> {
  const path = `${a.type}/${a.id}`;
  let current = a.current?.meta?.versionId ? a.current : undefined;
  for (let tries = 0; ; tries++) {
    current ??= (await client.request<Resource>('GET', path)).body;
    const version = current?.meta?.versionId;
    let ops = additionsPatch(current, desired, resolve);
    // Without a version to guard on, only appends the server can check with `test` are safe.
    if (!version) {
      const appends = ops.filter((o) => o.path === '/identifier/-');
      ops = appends.length ? [{ op: 'test', path: '/identifier', value: (current as { identifier?: unknown }).identifier }, ...appends] : [];
    }
    if (!ops.length) return { ...a, ...(version ? { versionId: version } : {}) };
    try {
      const { body, headers } = await client.request<Resource>('PATCH', path, ops, {
        'content-type': 'application/json-patch+json',
        ...(version ? { 'if-match': `W/"${version}"` } : {}),
      });
      const v = body?.meta?.versionId ?? etagVersion(headers.get('etag'));
      return { ...a, supplemented: true, ...(v ? { versionId: v } : {}) };
    } catch (e) {
      if (!(e instanceof TargetError) || e.status === undefined) throw e;
      // No PATCH here, or not for the bridge: the resource stays as the server has it.
      if (e.status === 403 || e.status === 405 || e.status === 501) return a;
      if (CONFLICT.has(e.status) && tries < 3) {
        current = undefined;
        continue;
      }
      throw e;
    }
  }
}

/**
 * Created, updated or unchanged, per entry: 201 is created; master data that matched is
 * unchanged unless supplemented; an update whose version equals the one `previous` (the
 * ledger) holds for its key is unchanged, any other success updated.
 */
export function countWrites(applied: AppliedEntry[], previous: ReadonlyMap<string, string | undefined> = new Map()): WriteCounts {
  const counts: WriteCounts = { created: 0, updated: 0, unchanged: 0 };
  for (const a of applied) {
    if (a.status === 201) counts.created++;
    else if (a.createOnly) counts[a.supplemented ? 'updated' : 'unchanged']++;
    else if (a.versionId !== undefined && previous.get(a.key) === a.versionId) counts.unchanged++;
    else counts.updated++;
  }
  return counts;
}
