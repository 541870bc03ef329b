import type { CodeableConcept, Coding, Meta, Observation, ObservationComponent, ObservationReferenceRange, Reference } from 'fhir/r4.js';
import type { BmdCategory, LevelResult, VbmdReport } from '../bmd/report.js';
import { categoryForVbmd } from '../bmd/report.js';
import { algorithmDisplay, analysisExtension } from './analysis-extension.js';
import {
  ACR_BAND_CODES,
  AI_ASSERTED_SECURITY,
  DATA_ABSENT_REASON_SYSTEM,
  IMAGING_CATEGORY,
  INTERPRETATION_BY_CATEGORY,
  LUMBAR_SPINE_SNOMED,
  REFERENCE_RANGE_MEANING_SYSTEM,
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
import { resultIdentifier } from './identifiers.js';
import { CATEGORY_TERM, categoryRange } from './result-words.js';
import { cleanDetail, observationNotes, roundTenth } from './observation-notes.js';
import { imagingStudyReference, patientReference, serviceRequestReference } from './references.js';

export const VBMD_SUMMARY_TEXT = 'Vertebral trabecular vBMD (QCT from CT)';
export const ACR_REFERENCE_TEXT =
  'ACR QCT (mean trabecular vBMD of two lumbar vertebrae): >120 mg/cm3 normal; 80-120 low bone density (osteopenia); <80 osteoporosis';

/** The statuses a result resource can carry through its lifecycle (see lifecycle.ts). */
export type ResultStatus = 'preliminary' | 'final' | 'amended' | 'corrected';

/** Status of a first write: 'preliminary' when the calibration is the nominal default, 'final' otherwise. */
export function resultStatus(report: VbmdReport): 'final' | typeof VBMD_STATUS_UNCALIBRATED {
  return report.calibration.uncalibrated || report.calibration.method === 'nominal' ? VBMD_STATUS_UNCALIBRATED : 'final';
}

/**
 * The ACR category of the summary value as written (to 0.1 mg/cm3), so that every reader recomputing it from
 * the stored number (result-reader.ts) gets the category the writer coded; 'indeterminate' when no value.
 */
export function writtenCategory(report: VbmdReport): BmdCategory {
  const s = report.summary;
  if (s.category === 'indeterminate' || s.vbmd === null) return 'indeterminate';
  return categoryForVbmd(roundTenth(s.vbmd));
}

/**
 * Labels for content an algorithm asserted, plus the caller's tags. AIAST (HL7 AI Transparency on FHIR:
 * "asserted by an Artificial Intelligence (e.g. Clinical Decision Support, Machine Learning, Algorithm)") goes
 * on every resource this algorithm derives, with or without the network: the spine finding, ROI, calibration
 * and height measurement are automated too.
 */
export function resultMeta(ctx: AnalysisContext): Meta {
  return { security: [{ ...AI_ASSERTED_SECURITY }], ...(ctx.tags?.length ? { tag: [...ctx.tags] } : {}) };
}

function mgCm3(value: number): NonNullable<ObservationReferenceRange['low']> {
  return { value, ...UCUM_MG_PER_CM3 };
}

/**
 * The three ACR QCT bands as coded reference ranges (ACR-SPR-SSR QCT practice parameter 2018). FHIR low/high
 * are inclusive and values are written to 0.1 mg/cm3, so "> 120" is low 120.1 and "< 80" is high 79.9:
 * exactly the ACR categories at the written precision. appliesTo says whom the thresholds were made for.
 */
export function acrReferenceRanges(): ObservationReferenceRange[] {
  const appliesTo = [{ text: 'Adults (ACR thresholds defined for postmenopausal women and older men), mean trabecular vBMD of two lumbar vertebrae' }];
  return [
    {
      low: mgCm3(120.1),
      type: { coding: [{ system: REFERENCE_RANGE_MEANING_SYSTEM, code: 'normal', display: 'Normal Range' }, { ...ACR_BAND_CODES.normal }], text: 'Normal (ACR QCT)' },
      appliesTo,
      text: '> 120 mg/cm3: normal (ACR QCT)',
    },
    {
      low: mgCm3(80),
      high: mgCm3(120),
      type: { coding: [{ ...ACR_BAND_CODES.osteopenia }], text: `${CATEGORY_TERM.osteopenia} (ACR QCT)` },
      appliesTo,
      text: `80-120 mg/cm3: ${CATEGORY_TERM.osteopenia} (ACR QCT)`,
    },
    {
      high: mgCm3(79.9),
      type: { coding: [{ ...ACR_BAND_CODES.osteoporosis }], text: 'Osteoporosis (ACR QCT)' },
      appliesTo,
      text: '< 80 mg/cm3: osteoporosis (ACR QCT)',
    },
  ];
}

/** The interpretation's text, in the words the card and the SMART app use (result-words.ts). */
const CATEGORY_WORDS: Record<Exclude<BmdCategory, 'indeterminate'>, string> = {
  normal: `vBMD in the ${categoryRange('normal')} (ACR QCT)`,
  osteopenia: `vBMD in the ${categoryRange('osteopenia')} (ACR QCT)`,
  osteoporosis: `vBMD in the ${categoryRange('osteoporosis')} (ACR QCT)`,
};

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
    const cat = categoryForVbmd(roundTenth(l.vbmd));
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
  status: ResultStatus;
  /** Analysis keys this result set replaced (lifecycle.ts), kept in the analysis extension. */
  superseded?: readonly string[];
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
  const device: Reference = { reference: refs.device, type: 'Device', display: algorithmDisplay(report) };
  const category = writtenCategory(report);
  const extraNotes = effective.remark
    ? [`Acquisition time: ${effective.remark}.`]
    : effective.value
      ? []
      : ['Acquisition time: not recorded in the images; this result has no effective date and cannot be placed on a trend.'];

  return {
    resourceType: 'Observation',
    meta: resultMeta(ctx),
    extension: [analysisExtension(report, refs.superseded)],
    identifier: [resultIdentifier(report, 'observation')],
    ...(order ? { basedOn: [order] } : {}),
    ...(study ? { partOf: [study] } : {}),
    status: refs.status,
    category: [{ coding: [{ ...IMAGING_CATEGORY }], text: 'Imaging' }],
    code: { coding: [{ ...VBMD_SUMMARY_CODE }], text: VBMD_SUMMARY_TEXT },
    subject: patientReference(ctx),
    ...(effective.value ? { effectiveDateTime: effective.value } : {}),
    issued: ctx.issued ?? new Date().toISOString(),
    ...(category !== 'indeterminate' && s.vbmd !== null
      ? {
          valueQuantity: quantity(s.vbmd),
          interpretation: [{ coding: [{ ...INTERPRETATION_BY_CATEGORY[category] }], text: CATEGORY_WORDS[category] }],
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
    referenceRange: acrReferenceRanges(),
    ...(study ? { derivedFrom: [study] } : {}),
    ...(report.levels.length ? { component: report.levels.map(levelComponent) } : {}),
  };
}
