/**
 * Bundle assembly, the building block of every transaction Bundle the bridge writes
 * (https://hl7.org/fhir/R4/http.html#transaction): deterministic identities (name-based UUIDs
 * from business identifiers), conditional writes (write-semantics.ts), and the profile and
 * security labels that every emitted resource carries. Shared by episode mapping, SDC
 * extraction and coordination, so it sits below all three.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { BundleEntry, Coding, Identifier, Reference, Resource } from '@medplum/fhirtypes';
import { businessIdSystem, DEV_IDENTITY, type IdentityOptions, pseudonym } from './identity.ts';
import { profileUrl, SECURITY } from './systems.ts';
import { writeRequest } from './write-semantics.ts';

/** Namespace of every name-based UUID the bridge derives (RFC 9562 §5.5). */
export const UUID_NAMESPACE = '5f2b8c4e-3d1a-5e7b-9c60-2a4d8e1f7b93';

const NAMESPACE_BYTES = Buffer.from(UUID_NAMESPACE.replaceAll('-', ''), 'hex');

/**
 * Name-based UUID for a string key (version 5, RFC 9562 §5.5: SHA-1 of namespace + UTF-8 name,
 * version and variant bits set). Same key, same UUID, on every run and runtime. Computed with
 * node:crypto (synchronous; workerd provides it with nodejs_compat) rather than a UUID package,
 * whose import cost a fresh process several milliseconds before its first mapping.
 */
export function nameUuid(key: string): string {
  const b = createHash('sha1').update(NAMESPACE_BYTES).update(key, 'utf8').digest();
  b[6] = ((b[6] as number) & 0x0f) | 0x50;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = b.toString('hex', 0, 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * A UUID (RFC 9562 version 8) from a keyed pseudonym of `key`: for identities derived from
 * keys that contain national ids, which a name-based UUID would let anyone recompute.
 */
export function keyedUuid(identity: IdentityOptions, key: string): string {
  const h = pseudonym(identity, key);
  const variant = ((parseInt(h[16] as string, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Reference between entries of the bundle (urn:uuid). */
// biome-ignore lint/suspicious/noExplicitAny: an entry may reference a resource of any type
export type Ref = Reference<any>;

const CLINICAL_LABELS: Coding[] = [{ ...SECURITY.restricted }, { ...SECURITY.psychiatry }];

export interface AddOptions {
  /** Our profile id (StructureDefinition id); none for resources that claim no profile of ours. */
  profile?: string;
  /** The business identifier that gives the resource its identity. */
  identifier: Identifier;
  /** Carries mental-health information: add confidentiality and sensitivity labels. */
  clinical: boolean;
  /** Labels that replace the clinical ones (psychotherapy notes carry stricter labels). */
  security?: Coding[];
}

/**
 * Bundle assembly for one episode's scope (clinic + episodeId). The episode path uses
 * MappingContext (mapping/context.ts, which also carries the parsed episode); the
 * questionnaire path, which has only a QuestionnaireResponse, uses this scope directly.
 */
export class BundleScope {
  readonly clinicOrg: string;
  readonly scopeEpisodeId: string;
  readonly identity: IdentityOptions;
  private readonly entries = new Map<string, BundleEntry>();

  constructor(clinicOrg: string, episodeId: string, identity: IdentityOptions = DEV_IDENTITY) {
    this.clinicOrg = clinicOrg;
    this.scopeEpisodeId = episodeId;
    this.identity = identity;
  }

  /** Identifier in one of the bridge's business id systems for this clinic. */
  id(kind: string, value: string): Identifier {
    return { system: businessIdSystem(this.identity, this.clinicOrg, kind), value };
  }

  /** Keyed pseudonym (see fhir/identity.ts) of a key that contains a national id. */
  pseudonym(key: string): string {
    return pseudonym(this.identity, key);
  }

  /** Episode-scoped identifier, e.g. `VG-2026-0042/S3`. */
  episodeId(kind: string, ...parts: string[]): Identifier {
    return this.id(kind, [this.scopeEpisodeId, ...parts].join('/'));
  }

  /**
   * The entry's fullUrl: a keyed UUID of its identity, since identifiers may be national ids
   * (a Patient's) and a fullUrl travels wherever the Bundle does.
   */
  fullUrl(resourceType: string, identifier: Identifier): string {
    return `urn:uuid:${keyedUuid(this.identity, `${resourceType}|${identifier.system}|${identifier.value}`)}`;
  }

  /** Reference to the resource with this identity (whether or not it is added yet). */
  ref(resourceType: string, identifier: Identifier): Ref {
    return { reference: this.fullUrl(resourceType, identifier) };
  }

  has(resourceType: string, identifier: Identifier): boolean {
    return this.entries.has(this.fullUrl(resourceType, identifier));
  }

  /**
   * Adds a resource, written conditionally on its business identifier as its type calls for
   * (write-semantics.ts), and returns a reference to it. Adding the same identity twice
   * keeps the first (callers add the fullest version first).
   */
  add<T extends Resource>(resource: T, opts: AddOptions): Ref {
    const fullUrl = this.fullUrl(resource.resourceType, opts.identifier);
    if (!this.entries.has(fullUrl)) {
      const meta = {
        ...(opts.profile ? { profile: [profileUrl(opts.profile)] } : {}),
        ...(opts.security ? { security: opts.security.map((c) => ({ ...c })) } : opts.clinical ? { security: CLINICAL_LABELS.map((c) => ({ ...c })) } : {}),
      };
      const { resourceType, ...rest } = resource;
      // An empty meta would break R4's ele-1 (every element has a value or children).
      const full = { resourceType, ...(Object.keys(meta).length ? { meta } : {}), ...withoutUndefined(rest) } as T;
      this.entries.set(fullUrl, { fullUrl, resource: full, request: writeRequest(resource.resourceType, opts.identifier) });
    }
    return { reference: fullUrl };
  }

  /** Adds a resource that has no identifier element, written by PUT to a derived id. */
  addById<T extends Resource>(resource: T, key: string, profile: string | undefined, clinical: boolean): Ref {
    const id = nameUuid(`${resource.resourceType}|${key}`);
    const fullUrl = `urn:uuid:${id}`;
    const { resourceType, ...rest } = resource;
    this.entries.set(fullUrl, {
      fullUrl,
      resource: {
        resourceType,
        id,
        meta: { ...(profile ? { profile: [profileUrl(profile)] } : {}), ...(clinical ? { security: CLINICAL_LABELS.map((c) => ({ ...c })) } : {}) },
        ...withoutUndefined(rest),
      } as T,
      request: { method: 'PUT', url: `${resource.resourceType}/${id}` },
    });
    return { reference: fullUrl };
  }

  list(): BundleEntry[] {
    return [...this.entries.values()];
  }
}

/** Drops top-level properties whose value is undefined, so output has no empty keys. */
export function withoutUndefined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}
