/**
 * The sandbox's CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement.html):
 * what FhirRouter + SandboxRepository actually do, for every R4 resource type.
 */
import { getResourceTypes, globalSchema } from '@medplum/core';
import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';

const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'] as const;

/** Built per base URL; the server caches the result. */
export function capabilityStatement(baseUrl: string, date: string, transactions = true, patch = true): CapabilityStatement {
  const resource = getResourceTypes()
    .slice()
    .sort()
    .map(
      (type): CapabilityStatementRestResource => ({
        type,
        interaction: TYPE_INTERACTIONS.filter((code) => patch || code !== 'patch').map((code) => ({ code })),
        versioning: 'versioned',
        readHistory: true,
        updateCreate: true,
        conditionalCreate: true,
        conditionalUpdate: true,
        conditionalDelete: 'single',
        searchParam: Object.values(globalSchema.types[type]?.searchParams ?? {})
          .filter((p) => p.code && p.type)
          .map((p) => ({ name: p.code as string, type: p.type as NonNullable<CapabilityStatementRestResource['searchParam']>[number]['type'] }))
          .sort((a, b) => a.name.localeCompare(b.name)),
      }),
    );
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date,
    publisher: 'imh-bridge',
    kind: 'instance',
    software: { name: 'imh-bridge sandbox (Medplum FhirRouter + in-memory repository)' },
    implementation: { description: 'Local sandbox FHIR R4 server for tests and development; data lives in memory', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    ...(patch ? { patchFormat: ['application/json-patch+json'] } : {}),
    rest: [
      {
        mode: 'server',
        interaction: transactions ? [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }] : [{ code: 'search-system' }],
        resource,
      },
    ],
  };
}
