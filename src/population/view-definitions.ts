import type { Resource, ViewDefinition } from '@medplum/fhirtypes';
import { evalSqlOnFhir } from '@medplum/core';
import medicationRequestView from './view-definitions/medication-request.json' with { type: 'json' };
import medicationStatementView from './view-definitions/medication-statement.json' with { type: 'json' };
import vbmdObservationLevelView from './view-definitions/vbmd-observation-level.json' with { type: 'json' };
import vbmdObservationView from './view-definitions/vbmd-observation.json' with { type: 'json' };

/**
 * HL7 SQL-on-FHIR v2 ViewDefinitions of the resources the cohort reads: the hand-off shape for data past one
 * machine (run them in any SQL-on-FHIR runner, or use the equivalent SQL in README.md). They are evaluated
 * here with @medplum/core's evalSqlOnFhir (a maintained implementation of the spec's FHIRPath subset:
 * getResourceKey, getReferenceKey, ofType, where, forEach/forEachOrNull), which the tests use to check the
 * flattening of real vbmd Observations.
 */
export const VIEW_DEFINITIONS = {
  vbmdObservation: vbmdObservationView as unknown as ViewDefinition,
  vbmdObservationLevel: vbmdObservationLevelView as unknown as ViewDefinition,
  medicationRequest: medicationRequestView as unknown as ViewDefinition,
  medicationStatement: medicationStatementView as unknown as ViewDefinition,
} as const;

export type ViewRow = Record<string, unknown>;

/** Rows of a view over a batch of resources (resources of other types yield nothing). */
export function evaluateView(view: ViewDefinition, resources: readonly unknown[]): ViewRow[] {
  const ofType = resources.filter((r): r is Resource => (r as { resourceType?: unknown } | null)?.resourceType === view.resource);
  return evalSqlOnFhir(view, ofType) as ViewRow[];
}
