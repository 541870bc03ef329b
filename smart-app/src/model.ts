import type { BmdCategory } from '../../src/bmd/report.js';

/** One vBMD result as the app shows it: the summary Observation of one CT study, flattened. */
export interface VbmdStudy {
  observationId: string;
  /** Acquisition time (Observation.effectiveDateTime), ISO string and epoch ms. */
  effective: string;
  effectiveMs: number;
  /** Summary trabecular vBMD in mg/cm3, or null when no level was measurable. */
  vbmdMgCm3: number | null;
  /** The unit as written by the server (expected `mg/cm3`); shown next to every number. */
  unit: string;
  category: BmdCategory;
  basis: 'lumbar' | 'thoracic-extrapolated' | 'single-level' | 'none' | 'unknown';
  basisText: string;
  levels: LevelValue[];
  /** The levels the summary value is the mean of (e.g. ["L1", "L2"]), when the result says so. */
  summaryLevels: string[];
  /** The ImagingStudy this came from: literal reference and/or StudyInstanceUID. */
  imagingStudy?: { reference?: string; studyUid?: string; display?: string };
  /** Algorithm Device as referenced (display carries name and version). */
  device?: string;
  /** Observation.note texts: calibration method, QC warnings, contrast, caveats. */
  notes: string[];
  /** Calibration method and fit in words (from the structured field), when the result has it. */
  calibration?: string;
  /** Not traceable to any calibration (nominal default): drawn hollow, flagged. */
  uncalibrated: boolean;
  /** Contrast-enhanced scan (vBMD reads higher). */
  contrastEnhanced: boolean;
  status: string;
}

export interface LevelValue {
  /** "L1", "T12", ... */
  level: string;
  vbmdMgCm3: number | null;
  /** Counted in the summary (false: excluded, see reason). */
  included: boolean;
  /** Why it was excluded (fracture, lesion, ...) in plain words. */
  exclusionReason?: string;
}

export interface RiskSummary {
  id: string;
  occurrence?: string;
  outcome: string;
  /** 0..1 */
  probability?: number;
  qualitativeRisk?: string;
  basis?: string;
  status: string;
}

export interface PatientSummary {
  id: string;
  name: string;
  gender?: string;
  birthDate?: string;
  identifier?: string;
}
