import type { Observation, ObservationComponent, Reference } from 'fhir/r4.js';
import type { LevelResult, VbmdReport, VertebraLevel } from '../bmd/report.js';
import { heightLoss } from '../bmd/qc/level-qc.js';
import { algorithmDisplay } from './analysis-extension.js';
import {
  DATA_ABSENT_REASON_SYSTEM,
  GENANT_GRADE_CODES,
  HEIGHT_LOSS_CODE,
  IMAGING_CATEGORY,
  SNOMED,
  UCUM_PERCENT,
  VERTEBRA_SNOMED,
  VERTEBRAL_COMPRESSION_FRACTURE_SNOMED,
} from './codes.js';
import type { AnalysisContext } from './context.js';
import { toFhirDateTime } from './datetime.js';
import { resultIdentifier } from './identifiers.js';
import type { ResultStatus } from './observation.js';
import { resultMeta } from './observation.js';
import { imagingStudyReference, patientReference, serviceRequestReference } from './references.js';

/**
 * Vertebral fractures as coded findings: one Observation per fractured level. The engine already calls a
 * level fractured when its anterior or middle height is > 20% below the posterior height (Genant grade >= 1
 * deformity, src/bmd/qc/level-qc.ts) and excludes it from the density; here that finding is graded and
 * written so the chart has it: a compression fracture is often more actionable than the density itself.
 */
export type GenantGrade = 0 | 1 | 2 | 3;

/** Genant semiquantitative grade from the height reduction (Genant et al., J Bone Miner Res 1993;8:1137):
 * < 20% grade 0, 20-25% grade 1 (mild), 25-40% grade 2 (moderate), > 40% grade 3 (severe). */
export function genantGrade(reductionFraction: number): GenantGrade {
  if (!(reductionFraction >= 0.2)) return 0;
  if (reductionFraction <= 0.25) return 1;
  if (reductionFraction <= 0.4) return 2;
  return 3;
}

export interface FractureFinding {
  level: VertebraLevel;
  grade: Exclude<GenantGrade, 0>;
  reductionPct: number;
  where: 'anterior' | 'middle';
  heightsMm: NonNullable<LevelResult['heightsMm']>;
}

/** The levels the engine excluded as fractured, graded from their measured heights. */
export function fractureFindings(report: VbmdReport): FractureFinding[] {
  const out: FractureFinding[] = [];
  for (const l of report.levels) {
    if (l.exclusionReason !== 'fracture' || !l.heightsMm) continue;
    const loss = heightLoss(l.heightsMm);
    const grade = genantGrade(loss.fraction);
    // The QC rule and the grading read the same heights; a grade 0 here would mean they disagree.
    if (grade === 0) continue;
    out.push({ level: l.level, grade, reductionPct: Math.round(loss.fraction * 1000) / 10, where: loss.where, heightsMm: l.heightsMm });
  }
  return out;
}

export function fractureKind(level: string): `fracture-${string}` {
  return `fracture-${level}`;
}

function vertebra(level: string): Observation['bodySite'] {
  const code = VERTEBRA_SNOMED[level as VertebraLevel];
  return { ...(code ? { coding: [{ system: SNOMED, code, display: `${level} vertebra` }] } : {}), text: level };
}

function heightComponents(f: FractureFinding): ObservationComponent[] {
  const mm = (v: number) => ({ value: Math.round(v * 10) / 10, unit: 'mm', system: 'http://unitsofmeasure.org', code: 'mm' });
  return [
    { code: { coding: [{ ...HEIGHT_LOSS_CODE }], text: `${f.where} height reduction vs posterior` }, valueQuantity: { value: f.reductionPct, ...UCUM_PERCENT } },
    { code: { text: 'Anterior height' }, valueQuantity: mm(f.heightsMm.anterior) },
    { code: { text: 'Middle height' }, valueQuantity: mm(f.heightsMm.middle) },
    { code: { text: 'Posterior height' }, valueQuantity: mm(f.heightsMm.posterior) },
  ];
}

export interface FractureRefs {
  device: string;
  status: ResultStatus;
}

function common(report: VbmdReport, ctx: AnalysisContext, level: string, refs: FractureRefs): Omit<Observation, 'code'> & { resourceType: 'Observation' } {
  const study = imagingStudyReference(report, ctx);
  const order = serviceRequestReference(report, ctx);
  const effective = toFhirDateTime(report.input.acquisitionDateTime).value;
  const device: Reference = { reference: refs.device, type: 'Device', display: algorithmDisplay(report) };
  return {
    resourceType: 'Observation',
    meta: resultMeta(ctx),
    identifier: [resultIdentifier(report, fractureKind(level))],
    ...(order ? { basedOn: [order] } : {}),
    ...(study ? { partOf: [study] } : {}),
    status: refs.status,
    category: [{ coding: [{ ...IMAGING_CATEGORY }], text: 'Imaging' }],
    subject: patientReference(ctx),
    ...(effective ? { effectiveDateTime: effective } : {}),
    issued: ctx.issued ?? new Date().toISOString(),
    bodySite: vertebra(level),
    method: { text: 'Vertebral body heights on CT (anterior, middle, posterior), Genant semiquantitative grading' },
    device,
    ...(study ? { derivedFrom: [study] } : {}),
  };
}

const CODE = { coding: [{ ...VERTEBRAL_COMPRESSION_FRACTURE_SNOMED }], text: 'Vertebral compression fracture (CT height loss, Genant grade)' };

/** The finding at one fractured level: code = compression fracture (SNOMED), bodySite = the vertebra,
 * value = the Genant grade, components = the height reduction and the three heights. */
export function buildFractureObservation(report: VbmdReport, ctx: AnalysisContext, f: FractureFinding, refs: FractureRefs): Observation {
  const grade = GENANT_GRADE_CODES[f.grade];
  return {
    ...common(report, ctx, f.level, refs),
    code: CODE,
    valueCodeableConcept: { coding: [{ ...grade }], text: `${f.level}: ${grade.display}` },
    interpretation: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'A', display: 'Abnormal' }] }],
    component: heightComponents(f),
    note: [
      {
        text: `${f.level}: ${f.where} height ${f.reductionPct}% lower than posterior (anterior ${f.heightsMm.anterior.toFixed(1)} mm, middle ${f.heightsMm.middle.toFixed(1)} mm, posterior ${f.heightsMm.posterior.toFixed(1)} mm); heights are measured in whole slices, so about one slice of uncertainty. Excluded from the bone density.`,
      },
    ],
  };
}

/**
 * A level an earlier analysis called fractured that this re-analysis does not: the same Observation is
 * amended to what the re-analysis says (grade 0 when it measured the heights below 20% loss; no value with
 * the reason when it could not assess the level), so no stale fracture stays current in the chart.
 */
export function buildFractureRetraction(report: VbmdReport, ctx: AnalysisContext, level: string, refs: FractureRefs): Observation {
  const l = report.levels.find((x) => x.level === level);
  const base = { ...common(report, ctx, level, refs), code: CODE };
  if (l?.heightsMm && genantGrade(heightLoss(l.heightsMm).fraction) === 0) {
    return {
      ...base,
      valueCodeableConcept: { coding: [{ ...GENANT_GRADE_CODES[0] }], text: `${level}: ${GENANT_GRADE_CODES[0].display}` },
      note: [{ text: `Re-analysis: ${level} height reduction ${Math.round(heightLoss(l.heightsMm).fraction * 100)}%, below the 20% of a Genant grade 1 fracture.` }],
    };
  }
  const why = l ? (l.exclusionReason ? `excluded (${l.exclusionReason})` : 'heights not measured') : 'not in the re-analysed scan';
  return {
    ...base,
    dataAbsentReason: { coding: [{ system: DATA_ABSENT_REASON_SYSTEM, code: 'not-performed', display: 'Not Performed' }], text: `Re-analysis could not assess ${level}: ${why}` },
    note: [{ text: `Re-analysis: the earlier fracture finding at ${level} is not confirmed; the level could not be assessed (${why}).` }],
  };
}
