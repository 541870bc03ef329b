/** Population queries over vBMD Observations. See README.md in this folder. */
export { runCohort, parseCohortQuery, cohortQuerySchema, rowMatches, exclusiveEndMs } from './query.js';
export type { CohortQuery, ParsedCohortQuery, CohortResult, CohortSummary, RunCohortOptions } from './query.js';
export { CohortAccumulator, CATEGORIES } from './aggregate.js';
export type { CohortRow, MonthCounts, TherapyOnRecord } from './aggregate.js';
export { extractResource, extractObservation, extractMedication, patientKey, fhirDateTimeToMs, COHORT_RESOURCE_TYPES } from './resources.js';
export type { VbmdScan, TherapyRecord, SkipReason, CohortResourceType } from './resources.js';
export { cohortTrend, MIN_TREND_SPAN_YEARS, MIN_TREND_SCANS, MS_PER_YEAR, RATE_WINDOW_YEARS } from './trend.js';
export type { Trend } from './trend.js';
export {
  compileTherapyValueSet,
  defaultTherapyValueSet,
  loadTherapyValueSet,
  therapyValueSetSchema,
  RXNORM_SYSTEM,
  ATC_SYSTEM,
} from './therapy-value-set.js';
export type { TherapyValueSet, TherapyMatcher, TherapyMatch, TherapyClass } from './therapy-value-set.js';
export type { ResourceSource, SourceReadOptions } from './sources/types.js';
export { resourcesOf } from './sources/types.js';
export { FhirSearchSource } from './sources/fhir-search.js';
export { BulkExportSource } from './sources/bulk-export.js';
export { NdjsonDirectorySource } from './sources/ndjson-dir.js';
export { parseSourceSpec } from './sources/parse-source.js';
export { cohortAuthFromConfig, cohortBackendServicesFromConfig, COHORT_SCOPES } from './source-auth.js';
export * from './output/index.js';
export { createCohortRouter } from './http.js';
export type { CohortRouterOptions } from './http.js';
export { VIEW_DEFINITIONS, evaluateView } from './view-definitions.js';
export { runCohortWith, engineFor, COHORT_ENGINES } from './engine.js';
export type { CohortEngine, CohortEngineChoice, CohortRunRequest } from './engine.js';
export { runCohortSql } from './sql/run-cohort-sql.js';
export type { SqlCohortInput, RunCohortSqlOptions } from './sql/run-cohort-sql.js';
