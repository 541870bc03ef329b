import type { OsteoporosisRisk as StoredRisk } from '../src/fhir/finding-reader.js';
import { readOsteoporosisRisks } from '../src/fhir/finding-reader.js';
import type { VbmdResult as StoredResult } from '../src/fhir/result-reader.js';
import { bundleResources, measuredResults, readVbmdResults as readResults } from '../src/fhir/result-reader.js';

/**
 * The CDS service's view of vBMD results: src/fhir/result-reader.ts (the one reader the SMART app and the
 * cohort use too, with one rule for status, units, time and superseded results), narrowed to what a card
 * can state: results with a value, newest first. Indeterminate scans say nothing a card could act on.
 */
export type VbmdResult = StoredResult & { vbmdMgCm3: number };
export type OsteoporosisRisk = Pick<StoredRisk, 'qualitativeRisk' | 'probability' | 'basisObservationId'> & { effectiveMs?: number };

export function readVbmdResults(resources: readonly unknown[]): VbmdResult[] {
  return measuredResults(readResults(resources).results);
}

/** The osteoporosis RiskAssessment resting on `observationId` (or the newest one when none is given). */
export function readOsteoporosisRisk(resources: readonly unknown[], observationId: string | undefined | null): OsteoporosisRisk | undefined {
  const risks = readOsteoporosisRisks(resources);
  const r = observationId ? risks.find((x) => x.basisObservationId === observationId) : risks[0];
  if (!r) return undefined;
  return {
    ...(r.qualitativeRisk ? { qualitativeRisk: r.qualitativeRisk } : {}),
    ...(r.probability !== undefined ? { probability: r.probability } : {}),
    ...(r.basisObservationId ? { basisObservationId: r.basisObservationId } : {}),
    ...(r.occurrenceMs !== null ? { effectiveMs: r.occurrenceMs } : {}),
  };
}

export { bundleResources };
