/**
 * Bundle assembly state for one episode: deterministic identities (name-based UUIDs from
 * business identifiers), conditional writes, and the profile and security labels that
 * every emitted resource carries.
 */
import type { BundleEntry, Coding, Identifier, Reference, Resource } from '@medplum/fhirtypes';
import { v5 as uuidv5 } from 'uuid';
import type { Episode } from '../domain/episode.ts';
import { SECURITY, businessIdSystem, profileUrl } from '../fhir/systems.ts';
import { writeRequest } from './write-semantics.ts';

/** Namespace of every name-based UUID the bridge derives (RFC 9562 §5.5). */
export const UUID_NAMESPACE = '5f2b8c4e-3d1a-5e7b-9c60-2a4d8e1f7b93';

/** Name-based UUID for a string key. Same key, same UUID, on every run and runtime. */
export const nameUuid = (key: string): string => uuidv5(key, UUID_NAMESPACE);

/** Reference between entries of the bundle (urn:uuid). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Ref = Reference<any>;

const CLINICAL_LABELS: Coding[] = [{ ...SECURITY.restricted }, { ...SECURITY.psychiatry }];

export interface AddOptions {
  /** Our profile id (StructureDefinition id). */
  profile: string;
  /** The business identifier that gives the resource its identity. */
  identifier: Identifier;
  /** Carries mental-health information: add confidentiality and sensitivity labels. */
  clinical: boolean;
}

/**
 * Bundle assembly for one episode's scope (clinic + episodeId). The episode path uses
 * MappingContext (which also carries the parsed episode); the questionnaire path, which
 * has only a QuestionnaireResponse, uses this scope directly.
 */
export class BundleScope {
  readonly clinicOrg: string;
  readonly scopeEpisodeId: string;
  private readonly entries = new Map<string, BundleEntry>();

  constructor(clinicOrg: string, episodeId: string) {
    this.clinicOrg = clinicOrg;
    this.scopeEpisodeId = episodeId;
  }

  /** Identifier in one of the bridge's business id systems for this clinic. */
  id(kind: string, value: string): Identifier {
    return { system: businessIdSystem(this.clinicOrg, kind), value };
  }

  /** Episode-scoped identifier, e.g. `VG-2026-0042/S3`. */
  episodeId(kind: string, ...parts: string[]): Identifier {
    return this.id(kind, [this.scopeEpisodeId, ...parts].join('/'));
  }

  static fullUrl(resourceType: string, identifier: Identifier): string {
    return `urn:uuid:${nameUuid(`${resourceType}|${identifier.system}|${identifier.value}`)}`;
  }

  /** Reference to the resource with this identity (whether or not it is added yet). */
  ref(resourceType: string, identifier: Identifier): Ref {
    return { reference: BundleScope.fullUrl(resourceType, identifier) };
  }

  has(resourceType: string, identifier: Identifier): boolean {
    return this.entries.has(BundleScope.fullUrl(resourceType, identifier));
  }

  /**
   * Adds a resource, written conditionally on its business identifier as its type calls for
   * (write-semantics.ts), and returns a reference to it. Adding the same identity twice
   * keeps the first (callers add the fullest version first).
   */
  add<T extends Resource>(resource: T, opts: AddOptions): Ref {
    const fullUrl = BundleScope.fullUrl(resource.resourceType, opts.identifier);
    if (!this.entries.has(fullUrl)) {
      const meta = {
        profile: [profileUrl(opts.profile)],
        ...(opts.clinical ? { security: CLINICAL_LABELS.map((c) => ({ ...c })) } : {}),
      };
      const { resourceType, ...rest } = resource;
      const full = { resourceType, meta, ...withoutUndefined(rest) } as T;
      this.entries.set(fullUrl, { fullUrl, resource: full, request: writeRequest(resource.resourceType, opts.identifier) });
    }
    return { reference: fullUrl };
  }

  /** Adds a resource that has no identifier element, written by PUT to a derived id. */
  addById<T extends Resource>(resource: T, key: string, profile: string, clinical: boolean): Ref {
    const id = nameUuid(`${resource.resourceType}|${key}`);
    const fullUrl = `urn:uuid:${id}`;
    const { resourceType, ...rest } = resource;
    this.entries.set(fullUrl, {
      fullUrl,
      resource: {
        resourceType,
        id,
        meta: { profile: [profileUrl(profile)], ...(clinical ? { security: CLINICAL_LABELS.map((c) => ({ ...c })) } : {}) },
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

/** The scope of one parsed episode. */
export class MappingContext extends BundleScope {
  readonly episode: Episode;

  constructor(episode: Episode) {
    super(episode.clinic.orgNumber, episode.episodeId);
    this.episode = episode;
  }
}

/** Drops top-level properties whose value is undefined, so output has no empty keys. */
export function withoutUndefined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

/** Adds minutes to an ISO date-time and writes the result in the same UTC offset. */
export function addMinutes(dateTime: string, minutes: number): string {
  const m = /(Z|[+-]\d{2}:\d{2})$/.exec(dateTime);
  const offset = m?.[1] ?? 'Z';
  const offsetMin = offset === 'Z' ? 0 : (offset.startsWith('-') ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  const local = new Date(Date.parse(dateTime) + (minutes + offsetMin) * 60_000);
  const iso = local.toISOString().slice(0, 19);
  return `${iso}${offset === 'Z' ? 'Z' : offset}`;
}
