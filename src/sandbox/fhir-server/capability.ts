import type { CapabilityStatement } from '@medplum/fhirtypes';

/** Resource types the sandbox and tests use; the server accepts any R4 type, this is what it advertises. */
const ADVERTISED_TYPES = [
  'Patient', 'Observation', 'RiskAssessment', 'Device', 'Provenance', 'ImagingStudy', 'ServiceRequest',
  'MedicationRequest', 'MedicationStatement', 'Condition', 'Encounter', 'Practitioner',
] as const;

/**
 * A minimal, honest CapabilityStatement for the in-process server (R4 `metadata`): what it really supports,
 * including the search parameters vbmd's own clients use. The SMART security extension is added when the
 * sandbox's authorization server is mounted in front of it.
 */
export function capabilityStatement(baseUrl: string, oauth?: { token: string; authorize?: string }): CapabilityStatement {
  const interactions = ['read', 'vread', 'search-type', 'create', 'update', 'delete', 'history-instance'] as const;
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-01-01',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    software: { name: 'vbmd in-process FHIR server (@medplum/fhir-router MemoryRepository)', version: '4.5.2' },
    implementation: { description: 'vbmd test/sandbox FHIR R4 server; in memory, no quantity search', url: baseUrl },
    rest: [
      {
        mode: 'server',
        ...(oauth
          ? {
              security: {
                service: [
                  {
                    coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }],
                  },
                ],
                extension: [
                  {
                    url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
                    extension: [
                      { url: 'token', valueUri: oauth.token },
                      ...(oauth.authorize ? [{ url: 'authorize', valueUri: oauth.authorize }] : []),
                    ],
                  },
                ],
              },
            }
          : {}),
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        operation: [{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' }],
        resource: ADVERTISED_TYPES.map((type) => ({
          type,
          interaction: interactions.map((code) => ({ code })),
          conditionalCreate: true,
          searchParam: [
            { name: '_id', type: 'token' },
            { name: '_lastUpdated', type: 'date' },
            { name: 'identifier', type: 'token' },
            ...(type === 'Observation'
              ? ([
                  { name: 'patient', type: 'reference' },
                  { name: 'subject', type: 'reference' },
                  { name: 'code', type: 'token' },
                  { name: 'category', type: 'token' },
                  { name: 'date', type: 'date' },
                  { name: 'status', type: 'token' },
                ] as const)
              : []),
            ...(type === 'RiskAssessment' || type === 'MedicationRequest' || type === 'Condition'
              ? ([{ name: 'patient', type: 'reference' }] as const)
              : []),
          ],
        })),
      },
    ],
  };
}
