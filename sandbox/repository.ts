/**
 * Medplum's MemoryRepository with two additions the sandbox needs:
 *
 * - An identifier index. MemoryRepository answers every search by evaluating the search
 *   parameter's FHIRPath on every resource of the type; for `identifier` that expression is
 *   the 40-type union `AllergyIntolerance.identifier | CarePlan.identifier | …`, and a
 *   conditional PUT resolves through such a search twice (transaction preprocessing, then
 *   the update). Bundle application was therefore quadratic. Searches whose filters include
 *   `identifier=system|value` now start from the index, which matches exactly as core's
 *   token matcher does; other filters of the same search are checked on the candidates with
 *   the matcher the scan uses (`matchesSearchRequest`), so results are identical.
 * - No new version for an update that changes nothing. As Medplum's server and HAPI do, an
 *   update (PUT, conditional PUT, PATCH) whose result equals the stored resource apart from
 *   `meta.versionId`/`meta.lastUpdated` answers with the stored version instead of writing a
 *   new one, so a client can tell an unchanged resource by its version.
 * - Undo journal for transactions. MemoryRepository.withTransaction just runs the callback;
 *   here a failed callback puts back every resource and history it touched, so a failed
 *   FHIR transaction leaves nothing behind (https://hl7.org/fhir/R4/http.html#trules).
 *
 * Writes in MemoryRepository funnel through createResource (create, update, patch) and its
 * own conditionalCreate; both are overridden, as are delete, expunge and clear.
 */
import type { Filter, SearchRequest, WithId } from '@medplum/core';
import {
  allOk,
  badRequest,
  created,
  deepClone,
  deepEquals,
  globalSchema,
  matchesSearchRequest,
  multipleMatches,
  OperationOutcomeError,
  Operator,
  tryGetDataType,
} from '@medplum/core';
import type { CreateResourceOptions, DeleteResourceOptions, UpdateResourceOptions } from '@medplum/fhir-router';
import { MemoryRepository } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, Identifier, OperationOutcome, Resource } from '@medplum/fhirtypes';

/** MemoryRepository's private stores, reached for the journal, the index and `has()`. */
interface Stores {
  resources: Map<string, Map<string, Resource>>;
  history: Map<string, Map<string, Resource[]>>;
}

interface JournalEntry {
  type: string;
  id: string;
  /** The stored resource before the transaction touched it; undefined when it did not exist. */
  before: Resource | undefined;
  /** Length of its history before; undefined when it had none. */
  historyLength: number | undefined;
}

const SEP = '\u0000';
const key = (system: string, value: string) => `${system.toLowerCase()}${SEP}${value.toLowerCase()}`;
const ref = (type: string, id: string) => `${type}/${id}`;
const PLAIN_PATH = /^[A-Z][A-Za-z]+\.[a-z][A-Za-z]*$/;

/**
 * The elements `identifier` reads on `type` when its expression, restricted to `type`, is a
 * union of plain paths to Identifier elements (`Patient.identifier`; DocumentReference adds
 * `masterIdentifier`): then the index is built from those elements directly. Otherwise
 * (no such parameter, or a computed expression) undefined, and searches on that type fall
 * back to MemoryRepository's scan.
 */
const identifierFields = new Map<string, string[] | undefined>();
function identifierElements(type: string): string[] | undefined {
  if (identifierFields.has(type)) return identifierFields.get(type);
  // Not known yet (definitions not indexed): scan, and decide again next time.
  if (!globalSchema.types[type]?.searchParams) return undefined;
  const param = globalSchema.types[type]?.searchParams?.identifier;
  const parts = (param?.expression ?? '').split('|').map((p) => p.trim());
  // On a resource of `type`, the `Other.identifier` parts of a shared union evaluate to nothing.
  const own = parts.filter((p) => p.startsWith(`${type}.`)).map((p) => p.slice(type.length + 1));
  const elements = tryGetDataType(type)?.elements;
  const plain =
    param?.type === 'token' &&
    parts.every((p) => PLAIN_PATH.test(p)) &&
    own.length > 0 &&
    own.every((f) => elements?.[f]?.type?.length === 1 && elements[f]?.type?.[0]?.code === 'Identifier');
  identifierFields.set(type, plain ? own : undefined);
  return plain ? own : undefined;
}

/** The `identifier=system|value` filter an index lookup can answer, if the request has one. */
function indexableFilter(req: SearchRequest): Filter | undefined {
  if (req.include?.length || req.revInclude?.length || req.sortRules?.length || req.types?.length) return undefined;
  if (!identifierElements(req.resourceType)) return undefined;
  const filters = req.filters ?? [];
  // Chained filters are resolved by MemoryRepository outside matchesSearchRequest.
  if (filters.some((f) => f.code.includes('.') || f.code.startsWith('_has'))) return undefined;
  return filters.find((f) => {
    if (f.code !== 'identifier' || f.operator !== Operator.EQUALS) return false;
    const bar = f.value.indexOf('|');
    // One system|value pair: no second bar, no comma (OR), both sides present.
    return bar > 0 && bar < f.value.length - 1 && f.value.indexOf('|', bar + 1) < 0 && !f.value.includes(',');
  });
}

/** A copy without the version bookkeeping (and without `meta` when that was all it held). */
function withoutVersion(r: Resource): Resource {
  const { meta, ...rest } = r;
  if (!meta) return rest as Resource;
  const { versionId: _v, lastUpdated: _l, ...m } = meta;
  return (Object.keys(m).length ? { ...rest, meta: m } : rest) as Resource;
}

export class SandboxRepository extends MemoryRepository {
  /** type → key(system, value) → ids */
  private readonly identifierIndex = new Map<string, Map<string, Set<string>>>();
  /** type/id → its index keys, to unindex on update and delete */
  private readonly indexedKeys = new Map<string, string[]>();
  private journal: Map<string, JournalEntry> | undefined;

  constructor() {
    super();
    const { resources, history } = this.stores;
    if (!(resources instanceof Map) || !(history instanceof Map)) {
      throw new Error('SandboxRepository: MemoryRepository no longer keeps `resources` and `history` Maps; check @medplum/fhir-router');
    }
  }

  private get stores(): Stores {
    return this as unknown as Stores;
  }

  /** True when `type/id` currently exists (not deleted). */
  has(type: string, id: string): boolean {
    return this.stores.resources.get(type)?.has(id) ?? false;
  }

  /** Every current resource (copies), for tests that scan what a server holds. */
  allResources(): Resource[] {
    const out: Resource[] = [];
    for (const byId of this.stores.resources.values()) for (const r of byId.values()) out.push(deepClone(r));
    return out;
  }

  /** Number of current resources of each type. */
  countByType(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [type, byId] of this.stores.resources) if (byId.size) out[type] = byId.size;
    return out;
  }

  override clear(): void {
    super.clear();
    this.identifierIndex.clear();
    this.indexedKeys.clear();
    this.journal = undefined;
  }

  override async createResource<T extends Resource>(resource: T, options?: CreateResourceOptions, update = false): Promise<WithId<T>> {
    if (resource.id) this.record(resource.resourceType, resource.id);
    const result = await super.createResource(resource, options, update);
    // A server-assigned id did not exist before.
    if (!resource.id) this.record(result.resourceType, result.id, true);
    this.reindex(result.resourceType, result.id);
    return result;
  }

  /** As MemoryRepository's (If-Match included), but an update that changes nothing keeps the stored version. */
  override async updateResource<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    const stored = resource.id ? this.stores.resources.get(resource.resourceType)?.get(resource.id) : undefined;
    const versionMatches = !options?.ifMatch || stored?.meta?.versionId === options.ifMatch;
    if (stored && versionMatches && deepEquals(withoutVersion(stored), withoutVersion(resource))) return deepClone(stored) as WithId<T>;
    return super.updateResource(resource, options);
  }

  /** As MemoryRepository's, but resolving through the index and writing through createResource. */
  override async conditionalCreate<T extends Resource>(
    resource: T,
    search: SearchRequest<T>,
    options?: CreateResourceOptions,
  ): Promise<{ resource: WithId<T>; outcome: OperationOutcome }> {
    if (search.resourceType !== resource.resourceType) {
      throw new OperationOutcomeError(badRequest('Search type must match resource type for conditional update'));
    }
    search.count = 2;
    search.sortRules = undefined;
    const matches = await this.searchResources(search);
    if (matches.length > 1) throw new OperationOutcomeError(multipleMatches);
    const existing = matches[0];
    if (existing) {
      if (!options?.assignedId && resource.id && resource.id !== existing.id) {
        throw new OperationOutcomeError(badRequest('Resource ID did not match resolved ID', resource.resourceType + '.id'));
      }
      return { resource: existing, outcome: allOk };
    }
    return { resource: await this.createResource(resource, options), outcome: created };
  }

  override async deleteResource(resourceType: string, id: string, options?: DeleteResourceOptions): Promise<void> {
    this.record(resourceType, id);
    await super.deleteResource(resourceType, id, options);
    this.reindex(resourceType, id);
  }

  override async expungeResources(resourceType: string, ids: string[]): Promise<void> {
    for (const id of ids) this.record(resourceType, id);
    await super.expungeResources(resourceType, ids);
    for (const id of ids) this.reindex(resourceType, id);
  }

  /** MemoryRepository reverses its stored history array in place on every read. */
  override async readHistory<T extends Resource>(resourceType: string, id: string): Promise<Bundle<T>> {
    await this.readResource(resourceType, id);
    const versions = (this.stores.history.get(resourceType)?.get(id) ?? []) as T[];
    const entry = versions
      .slice()
      .reverse()
      .map((version): BundleEntry<T> => ({ resource: deepClone(version) }));
    return { resourceType: 'Bundle', type: 'history', ...(entry.length ? { entry } : {}) };
  }

  override async search<T extends Resource>(searchRequest: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    const filter = indexableFilter(searchRequest);
    if (!filter) return super.search(searchRequest);
    const bar = filter.value.indexOf('|');
    const ids = this.identifierIndex.get(searchRequest.resourceType)?.get(key(filter.value.slice(0, bar), filter.value.slice(bar + 1)));
    const stored = this.stores.resources.get(searchRequest.resourceType);
    // The index answers its filter exactly (token match: system and value, case-insensitive,
    // as @medplum/core's matchesTokenValue); any other filters go through the scan's matcher.
    const rest = (searchRequest.filters ?? []).filter((f) => f !== filter);
    const restRequest = rest.length ? { ...searchRequest, filters: rest } : undefined;
    const matched: Resource[] = [];
    for (const id of ids ?? []) {
      const r = stored?.get(id);
      if (r && (!restRequest || matchesSearchRequest(r, restRequest))) matched.push(r);
    }
    const offset = searchRequest.offset ?? 0;
    const page = matched.slice(offset, searchRequest.count === undefined ? undefined : offset + searchRequest.count);
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      ...(page.length ? { entry: page.map((r): BundleEntry<WithId<T>> => ({ search: { mode: 'match' }, resource: deepClone(r) as WithId<T> })) } : {}),
      total: matched.length,
    };
  }

  /**
   * Runs `callback`; if it throws, every resource it created, changed or deleted is put back
   * as it was. Nested calls join the outermost one. Callers must not interleave other writes
   * (the sandbox server runs one request at a time).
   */
  override async withTransaction<TResult>(callback: (repo: this) => Promise<TResult>): Promise<TResult> {
    if (this.journal) return callback(this);
    this.journal = new Map();
    try {
      const result = await callback(this);
      this.journal = undefined;
      return result;
    } catch (e) {
      this.rollback();
      throw e;
    }
  }

  private record(type: string, id: string, isNew = false): void {
    const journal = this.journal;
    const k = ref(type, id);
    if (!journal || journal.has(k)) return;
    const before = isNew ? undefined : this.stores.resources.get(type)?.get(id);
    const history = isNew ? undefined : this.stores.history.get(type)?.get(id);
    journal.set(k, { type, id, before, historyLength: history?.length });
  }

  private rollback(): void {
    const journal = this.journal;
    this.journal = undefined;
    if (!journal) return;
    const { resources, history } = this.stores;
    for (const { type, id, before, historyLength } of journal.values()) {
      if (before) resources.get(type)?.set(id, before);
      else resources.get(type)?.delete(id);
      const versions = history.get(type)?.get(id);
      if (historyLength === undefined) history.get(type)?.delete(id);
      else if (versions) versions.length = historyLength;
      this.reindex(type, id);
    }
  }

  /** Brings the index for `type/id` in line with what is stored now. */
  private reindex(type: string, id: string): void {
    const k = ref(type, id);
    const typeIndex = this.identifierIndex.get(type);
    for (const old of this.indexedKeys.get(k) ?? []) {
      const ids = typeIndex?.get(old);
      ids?.delete(id);
      if (ids?.size === 0) typeIndex?.delete(old);
    }
    this.indexedKeys.delete(k);
    const resource = this.stores.resources.get(type)?.get(id) as Record<string, Identifier | Identifier[] | undefined> | undefined;
    const fields = identifierElements(type);
    if (!resource || !fields) return;
    const keys = [
      ...new Set(
        fields
          .flatMap((f) => resource[f] ?? [])
          .filter((i) => typeof i?.system === 'string' && typeof i.value === 'string')
          .map((i) => key(i.system as string, i.value as string)),
      ),
    ];
    if (!keys.length) return;
    let index = typeIndex;
    if (!index) this.identifierIndex.set(type, (index = new Map()));
    for (const kk of keys) {
      let ids = index.get(kk);
      if (!ids) index.set(kk, (ids = new Set()));
      ids.add(id);
    }
    this.indexedKeys.set(k, keys);
  }
}
