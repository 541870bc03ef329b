import type { CodeableConcept, Coding, Meta, Observation, ObservationComponent, Reference } from 'fhir/r4.js';
import type { LevelResult, VbmdReport } from '../bmd/report.js';
import { categoryForVbmd } from '../bmd/report.js';
import {
  AI_ASSERTED_SECURITY,
  DATA_ABSENT_REASON_SYSTEM,
  IMAGING_CATEGORY,
  INTERPRETATION_BY_CATEGORY,
  LUMBAR_SPINE_SNOMED,
  SNOMED,
  THORACIC_SPINE_SNOMED,
  UCUM_MG_PER_CM3,
  VBMD_BASIS_CODES,
  VBMD_LEVEL_CODE,
  VBMD_STATUS_UNCALIBRATED,
  VBMD_SUMMARY_CODE,
  VERTEBRA_SNOMED,
} from './codes.js';
import type { AnalysisContext } from './context.js';
import { toFhirDateTime } from './datetime.js';
import { analysisIdentifier } from './identifiers.js';
import { cleanDetail, observationNotes, roundTenth } from './observation-notes.js';
import { imagingStudyReference, patientReference, serviceRequestReference } from './references.js';

export const VBMD_SUMMARY_TEXT = 'Vertebral trabecular vBMD (QCT from CT)';
export const ACR_REFERENCE_TEXT =
  'ACR QCT (mean trabecular vBMD of two lumbar vertebrae): >120 mg/cm3 normal; 80-120 low bone density (osteopenia); <80 osteoporosis';

/** Status shared by the Observation and the RiskAssessment. */
export function resultStatus(report: VbmdReport): 'final' | typeof VBMD_STATUS_UNCALIBRATED {
  return report.calibration.uncalibrated || report.calibration.method === 'nominal' ? VBMD_STATUS_UNCALIBRATED : 'final';
}

/** Labels for content an algorithm asserted (HL7 AI Transparency on FHIR) plus the caller's tags. */
export function resultMeta(report: VbmdReport, ctx: AnalysisContext): Meta | undefined {
  const meta: Meta = {};
  if (report.model) meta.security = [{ ...AI_ASSERTED_SECURITY }];
  if (ctx.tags?.length) meta.tag = [...ctx.tags];
  return Object.keys(meta).length ? meta : undefined;
}

function quantity(vMgCm3: number): Observation['valueQuantity'] {
  return { value: roundTenth(vMgCm3), ...UCUM_MG_PER_CM3 };
}

function levelCode(level: LevelResult['level']): CodeableConcept {
  const snomed = VERTEBRA_SNOMED[level];
  const coding: Coding[] = [{ ...VBMD_LEVEL_CODE }];
  if (snomed) coding.push({ system: SNOMED, code: snomed, display: `${level} vertebra` });
  return { coding, text: level };
}

/**
 * One component per vertebral level. Why components rather than member Observations (hasMember + bodySite):
 * the per-level values only mean something together with the summary (same ROI method, same calibration,
 * same exclusions), and consumers (CDS prefetch, SMART app, population queries) fetch results per study:
 * one resource per study gives them everything in one search hit, keeps the transaction at 4 entries, and
 * cannot be half-read. The cost is that R4 components have no bodySite, so the level goes into
 * component.code (VBMD_LEVEL_CODE + the SNOMED vertebra code, text "L1").
 * Excluded or unmeasurable levels keep their component with no value and a dataAbsentReason saying why, so
 * nobody averages a fractured or metastatic vertebra back in; their measured value is in the note.
 */
export function levelComponent(l: LevelResult): ObservationComponent {
  const code = levelCode(l.level);
  if (l.included && l.vbmd !== null) {
    const cat = categoryForVbmd(l.vbmd);
    return {
      code,
      valueQuantity: quantity(l.vbmd),
      ...(cat !== 'indeterminate' ? { interpretation: [{ coding: [{ ...INTERPRETATION_BY_CATEGORY[cat] }] }] } : {}),
    };
  }
  const detail = cleanDetail(l.level, l.exclusionDetail);
  const why = l.exclusionReason ? `Excluded: ${l.exclusionReason}${detail ? ` (${detail})` : ''}` : 'Not measured';
  return {
    code,
    dataAbsentReason: { coding: [{ system: DATA_ABSENT_REASON_SYSTEM, code: 'unknown', display: 'Unknown' }], text: why },
  };
}

function bodySite(report: VbmdReport): CodeableConcept | undefined {
  const levels = report.summary.levels;
  if (levels.length === 0) return undefined;
  const text = levels.length > 1 ? `${levels[0]}-${levels[levels.length - 1]}` : levels[0];
  if (levels.every((l) => l.startsWith('L'))) return { coding: [{ ...LUMBAR_SPINE_SNOMED }], text };
  if (levels.every((l) => l.startsWith('T'))) return { coding: [{ ...THORACIC_SPINE_SNOMED }], text };
  return { text };
}

export interface ObservationRefs {
  /** fullUrl (urn:uuid) or literal reference of the algorithm Device. */
  device: string;
}

/**
 * The summary vBMD Observation of one study analysis. When the summary is indeterminate it is still written
 * (the study was analysed; saying so stops re-ordering and lets the app explain why) with dataAbsentReason
 * and no value.
 */
export function buildVbmdObservation(report: VbmdReport, ctx: AnalysisContext, refs: ObservationRefs): Observation {
  const s = report.summary;
  const effective = toFhirDateTime(report.input.acquisitionDateTime);
  const study = imagingStudyReference(report, ctx);
  const order = serviceRequestReference(report, ctx);
  const site = bodySite(report);
  const meta = resultMeta(report, ctx);
  const device: Reference = { reference: refs.device, type: 'Device' };
  const hasValue = s.category !== 'indeterminate' && s.vbmd !== null;
  const extraNotes = effective.remark
    ? [`Acquisition time: ${effective.remark}.`]
    : effective.value
      ? []
      : ['Acquisition time: not recorded in the images; this result has no effective date and cannot be placed on a trend.'];

  return {
    resourceType: 'Observation',
    ...(meta ? { meta } : {}),
    identifier: [analysisIdentifier(report, 'observation')],
    ...(order ? { basedOn: [order] } : {}),
    ...(study ? { partOf: [study] } : {}),
    status: resultStatus(report),
    category: [{ coding: [{ ...IMAGING_CATEGORY }], text: 'Imaging' }],
    code: { coding: [{ ...VBMD_SUMMARY_CODE }], text: VBMD_SUMMARY_TEXT },
    subject: patientReference(ctx),
    ...(effective.value ? { effectiveDateTime: effective.value } : {}),
    issued: ctx.issued ?? new Date().toISOString(),
    ...(hasValue
      ? {
          valueQuantity: quantity(s.vbmd as number),
          interpretation: [
            { coding: [{ ...INTERPRETATION_BY_CATEGORY[s.category as Exclude<typeof s.category, 'indeterminate'>] }], text: s.category },
          ],
        }
      : {
          dataAbsentReason: {
            coding: [{ system: DATA_ABSENT_REASON_SYSTEM, code: 'unknown', display: 'Unknown' }],
            text: 'Indeterminate: no vertebral level could be measured reliably (see note)',
          },
        }),
    note: observationNotes(report, extraNotes),
    ...(site ? { bodySite: site } : {}),
    method: { coding: [{ ...VBMD_BASIS_CODES[s.basis] }], text: VBMD_BASIS_CODES[s.basis].display },
    device,
    referenceRange: [{ text: ACR_REFERENCE_TEXT }],
    ...(study ? { derivedFrom: [study] } : {}),
    ...(report.levels.length ? { component: report.levels.map(levelComponent) } : {}),
  };
}
