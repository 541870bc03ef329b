import type { CodeableConcept, DiagnosticReport } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { analysisExtension } from './analysis-extension.js';
import {
  CONCLUSION_BY_CATEGORY,
  IMAGING_CATEGORY,
  RADIOLOGY_REPORT_CATEGORY,
  VBMD_REPORT_CODE,
  VERTEBRAL_COMPRESSION_FRACTURE_SNOMED,
} from './codes.js';
import type { AnalysisContext } from './context.js';
import { toFhirDateTime } from './datetime.js';
import type { FractureFinding } from './fracture.js';
import { resultIdentifier } from './identifiers.js';
import { formatMgCm3 } from './observation-notes.js';
import type { ResultStatus } from './observation.js';
import { resultMeta, writtenCategory } from './observation.js';
import { imagingStudyReference, patientReference, serviceRequestReference } from './references.js';

/**
 * One DiagnosticReport per study analysis, for EHRs that file results by report: category radiology/imaging,
 * the vbmd report code, the study (logical reference by StudyInstanceUID), the order, `result` -> the summary
 * Observation and the fracture findings, a conclusion in words a clinician reads, and coded conclusions
 * (osteoporosis / osteopenia SNOMED, the normal ACR band, compression fracture). R4 DiagnosticReport.performer
 * cannot be a Device: the algorithm is named by the Observations' `device` and by the Provenance.
 */
export interface DiagnosticReportRefs {
  /** fullUrls or literal references of the Observations, summary first. */
  results: string[];
  status: ResultStatus;
  superseded?: readonly string[];
}

const CATEGORY_SENTENCE = {
  normal: 'is in the normal range (ACR QCT > 120 mg/cm3)',
  osteopenia: 'is in the low bone density (osteopenia) range (ACR QCT 80-120 mg/cm3)',
  osteoporosis: 'is in the osteoporosis range (ACR QCT < 80 mg/cm3)',
} as const;

const CALIBRATION_WORDS = {
  phantom: 'in-scan phantom calibration',
  asynchronous: 'asynchronous phantom calibration',
  'phantomless-internal': 'phantomless calibration from the scan\'s own tissues',
  nominal: 'no calibration (nominal kVp default; the value may be off by 12-16 mg/cm3)',
} as const;

/** The conclusion: value and range, fractures, then what the number rests on and how to act on it. */
export function conclusionText(report: VbmdReport, fractures: readonly FractureFinding[]): string {
  const s = report.summary;
  const category = writtenCategory(report);
  const parts: string[] = [];
  if (category === 'indeterminate' || s.vbmd === null) {
    parts.push('Bone density could not be measured reliably on this CT (no vertebral level met the quality criteria).');
  } else {
    const levels = s.levels.length > 1 ? `mean of ${s.levels.join(' and ')}` : `${s.levels[0] ?? 'one level'} only`;
    parts.push(`Vertebral trabecular bone density ${formatMgCm3(s.vbmd)} (${levels}) ${CATEGORY_SENTENCE[category]}.`);
    if (s.basis === 'thoracic-extrapolated' || s.basis === 'single-level') {
      parts.push('The ACR thresholds are defined on two lumbar vertebrae; this category is an extrapolation.');
    }
  }
  if (fractures.length) {
    const list = fractures.map((f) => `${f.level} (Genant grade ${f.grade}, ${Math.round(f.reductionPct)}% ${f.where} height loss)`);
    parts.push(`Vertebral compression deformity consistent with fracture at ${list.join(', ')}.`);
  }
  if (report.input.contrast) parts.push('Contrast-enhanced scan: bone density reads higher than without contrast.');
  parts.push(
    `Opportunistic measurement from a routine CT by an algorithm, with ${CALIBRATION_WORDS[report.calibration.method]}; not a DXA. Confirm by DXA before starting treatment.`,
  );
  return parts.join(' ');
}

export function conclusionCodes(report: VbmdReport, fractures: readonly FractureFinding[]): CodeableConcept[] {
  const category = writtenCategory(report);
  const out: CodeableConcept[] = [];
  if (category !== 'indeterminate') out.push({ coding: [{ ...CONCLUSION_BY_CATEGORY[category] }] });
  if (fractures.length) {
    out.push({ coding: [{ ...VERTEBRAL_COMPRESSION_FRACTURE_SNOMED }], text: `Vertebral compression fracture: ${fractures.map((f) => f.level).join(', ')}` });
  }
  return out;
}

export function buildDiagnosticReport(
  report: VbmdReport,
  ctx: AnalysisContext,
  fractures: readonly FractureFinding[],
  refs: DiagnosticReportRefs,
): DiagnosticReport {
  const study = imagingStudyReference(report, ctx);
  const order = serviceRequestReference(report, ctx);
  const effective = toFhirDateTime(report.input.acquisitionDateTime).value;
  const codes = conclusionCodes(report, fractures);
  return {
    resourceType: 'DiagnosticReport',
    meta: resultMeta(ctx),
    extension: [analysisExtension(report, refs.superseded)],
    identifier: [resultIdentifier(report, 'diagnostic-report')],
    ...(order ? { basedOn: [order] } : {}),
    status: refs.status,
    category: [{ coding: [{ ...RADIOLOGY_REPORT_CATEGORY }, { ...IMAGING_CATEGORY }], text: 'Imaging' }],
    code: { coding: [{ ...VBMD_REPORT_CODE }], text: 'Bone density from CT (vBMD)' },
    subject: patientReference(ctx),
    ...(effective ? { effectiveDateTime: effective } : {}),
    issued: ctx.issued ?? new Date().toISOString(),
    result: refs.results.map((r) => ({ reference: r, type: 'Observation' })),
    ...(study ? { imagingStudy: [study] } : {}),
    conclusion: conclusionText(report, fractures),
    ...(codes.length ? { conclusionCode: codes } : {}),
  };
}
