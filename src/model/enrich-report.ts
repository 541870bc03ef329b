import type { LoadedVolume } from '../imaging/volume.js';
import { categoryForVbmd, type LevelResult, type VbmdReport } from '../bmd/report.js';
import { summarize } from '../bmd/summary.js';
import { inferLevels, type LevelInference } from './infer-levels.js';
import type { ModelIdentity } from './model-file.js';
import type { ModelInference } from './model-runner.js';

/**
 * Which value a level's `vbmd` (and so the summary, the category and the FHIR Observation) takes when a model
 * ran: the model's (mean calibrated density over its predicted trabecular ROI, roiSource "model") or the
 * engine's geometric ROI (roiSource "geometric").
 */
export type VbmdSource = 'model' | 'geometric';

/**
 * Decision, from the held-out evaluation (models/evaluation/evaluation.md: `vbmd evaluate --phantoms 70 --seed
 * 900000`, site calibration, non-contrast): the model's ROI readout is more accurate than the geometric ROI on
 * every subset, including the levels QC keeps for the summary (the only ones whose value reaches a patient),
 * where its MAE and 95% limits of agreement are both smaller. So `vbmd` is the model's value ("model").
 *
 * Not bounded by the geometric value: a rule "geometric where the two disagree by more than the margin" was
 * measured (commit 0b89b7b) and was worse: on the QC-kept levels where they disagreed, the geometric ROI had
 * caught a lytic lesion the lesion screen missed and the model was right every time. Disagreement instead puts
 * a QC warning with both values on the level. The network has seen only phantoms (models/MODEL_CARD.md): a site
 * validates it on its own QCT-labelled scans (`vbmd evaluate --manifest`) or runs with VBMD_MODEL=false.
 */
export const VBMD_SOURCE_DECISION: VbmdSource = 'model';

/**
 * The model readout: the mask readout (mean calibrated density over the predicted ROI) is auditable, a mean over
 * voxels one can show on the key image; the regression head adds a learned correction of up to 20 mg/cm3
 * (models/MODEL_CARD.md "Architecture") and cross-checks it (READOUT_CROSS_CHECK_MG_CM3 below). Chosen on the
 * validation split, not on the test set (models/train/results/validation2-g2-b8.json: 34 training-seed studies never
 * trained on, non-contrast, model 0.3.0): mask MAE 1.07, bias -0.43 mg/cm3 (a perfect truth-mask readout: 1.20,
 * -0.19); head MAE 0.83, bias -0.06. The head is 0.2 mg/cm3 closer, but part of what it learned is the simulator's
 * own physics (beam-hardening cupping at the spine, the phantoms' fixed marrow enhancement under contrast): a
 * correction learned from a simulator is not one to apply unseen to patients, and the mask readout already meets
 * every acceptance limit on the held-out set (models/evaluation/), so the auditable mask readout is used.
 */
export const MODEL_READOUT: 'mask' | 'regression' = 'mask';

/**
 * Model and geometric ROI values further apart than this get a QC warning on the level. Two measurements each within
 * the model's acceptance limits of agreement (+-12 mg/cm3 at 95 %, SD 6.1; models/MODEL_CARD.md "`vbmd evaluate`
 * table") differ by more than 1.96 * sqrt(2) * 6.1 = 17 mg/cm3 in fewer than 5 % of bodies even if their errors were
 * independent; a larger gap means one ROI caught something the other did not (a lesion, an endplate, the
 * basivertebral vein, a misplaced centre), and it can move a level across an ACR band (80-120 mg/cm3 is 40 wide).
 * Measured on the held-out set (models/evaluation/, model 0.3.0, site calibration, levels without lesion, fracture
 * or contrast): 95th percentile of |model - geometric| 5 mg/cm3 on the clinical-resolution studies (96 % within this
 * margin), but 173 mg/cm3 on the coarse 2.5-3 mm ones (87 %), where the geometric ROI is the one that fails (MAE 21
 * vs the model's 3 mg/cm3).
 */
export const DISAGREEMENT_MARGIN_MG_CM3 = 17;

/**
 * The regression head cross-checks the mask readout: further apart than this (the same margin as
 * above) the network is outside what it learned, and the level gets a QC warning. On the held-out set the two
 * never differ by more than it (0 of 618 site-calibrated levels with both; 10 by more than 10 mg/cm3,
 * models/evaluation/rows.csv, model 0.3.0), so on a real scan it is a sign of inputs unlike the training phantoms.
 */
export const READOUT_CROSS_CHECK_MG_CM3 = DISAGREEMENT_MARGIN_MG_CM3;

/**
 * The class head cross-checks the value too: when it gives the ACR band of the level's reported vBMD less than
 * this probability, the two disagree about the category. On the held-out set (model 0.3.0, both calibrations,
 * models/evaluation/rows.csv) that happened on 35 of 1246 level readings, 31 of them within 8 mg/cm3 of an ACR
 * cut-off (80 or 120), where a few mg/cm3 decide the band; the other 4 were levels with a contrast or lesion
 * problem. A reader should look at such a level: its band is not settled.
 */
export const MIN_CLASS_PROBABILITY_OF_REPORTED_BAND = 0.2;

export interface EnrichOptions {
  source?: VbmdSource;
  readout?: 'mask' | 'regression';
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

function readoutOf(r: LevelInference, readout: 'mask' | 'regression'): number | null {
  const v = readout === 'mask' ? r.maskVbmdMgCm3 : r.regressionVbmdMgCm3;
  return v === null || !Number.isFinite(v) ? null : v;
}

/**
 * Adds the model's reading to an engine report (a hook after analyzeVolume; src/bmd knows nothing of the
 * model): per level modelVbmd, modelClassProbabilities, roiSource, the geometric value kept in geometricVbmd,
 * a QC warning where model and geometric ROI disagree by more than DISAGREEMENT_MARGIN_MG_CM3, and the model's
 * identity. Exclusions stay the engine's: a level with a lesion or fracture is still not used in the summary,
 * whatever the model reads there. Returns a new report; the input is not changed.
 */
export async function enrichReportWithModel(
  report: VbmdReport,
  loaded: LoadedVolume,
  runner: ModelInference,
  options: EnrichOptions = {},
): Promise<VbmdReport> {
  const inferred = report.levels.length
    ? await inferLevels(runner, loaded.volume, report.levels.map((l) => l.centerMm), report.calibration)
    : [];
  return applyInferences(report, inferred, runner.model, options);
}

/** The pure part of enrichReportWithModel: one inference per report level, in order. */
export function applyInferences(report: VbmdReport, inferred: readonly LevelInference[], model: ModelIdentity, options: EnrichOptions = {}): VbmdReport {
  if (inferred.length !== report.levels.length) throw new RangeError(`${inferred.length} inferences for ${report.levels.length} levels`);
  const source = options.source ?? VBMD_SOURCE_DECISION;
  const readout = options.readout ?? MODEL_READOUT;
  const warnings = [...report.qc.warnings];
  const levels: LevelResult[] = report.levels.map((l, i) => {
    const r = inferred[i];
    const value = readoutOf(r, readout);
    const geometric = l.vbmd;
    const next: LevelResult = {
      ...l,
      modelVbmd: value === null ? null : round1(value),
      modelRegressionVbmd: Number.isFinite(r.regressionVbmdMgCm3) ? round1(r.regressionVbmdMgCm3) : null,
      modelRoiVoxels: r.maskVoxels,
      modelClassProbabilities: {
        normal: round4(r.classProbabilities.normal),
        osteopenia: round4(r.classProbabilities.osteopenia),
        osteoporosis: round4(r.classProbabilities.osteoporosis),
      },
      geometricVbmd: geometric,
      roiSource: 'geometric',
      ...(r.mask ? { modelRoiMask: r.mask } : {}),
    };
    const disagree = value !== null && geometric !== null && Math.abs(value - geometric) > DISAGREEMENT_MARGIN_MG_CM3;
    if (value === null) {
      if (l.included) warnings.push(`${l.level}: the model found no measurable trabecular region (${r.maskVoxels} voxels); the geometric ROI value is reported.`);
    } else if (disagree) {
      warnings.push(
        `${l.level}: model ROI ${round1(value)} and geometric ROI ${geometric} mg/cm3 differ by more than ${DISAGREEMENT_MARGIN_MG_CM3} mg/cm3 (a lesion, endplate or misplaced ROI in one of them; the ${source === 'model' ? 'model' : 'geometric'} value is reported); check this level on the images.`,
      );
    }
    const mask = r.maskVbmdMgCm3;
    const head = r.regressionVbmdMgCm3;
    if (mask !== null && Number.isFinite(head) && Math.abs(mask - head) > READOUT_CROSS_CHECK_MG_CM3) {
      warnings.push(
        `${l.level}: the model's ROI mean ${round1(mask)} and its regression head ${round1(head)} mg/cm3 differ by more than ${READOUT_CROSS_CHECK_MG_CM3} mg/cm3 (never seen on the held-out phantoms): the scan may be unlike what the model was trained on; check this level on the images.`,
      );
    }
    if (source === 'model' && value !== null) {
      next.vbmd = round1(value);
      next.roiSource = 'model';
      next.included = l.exclusionReason === null;
    }
    const band = categoryForVbmd(next.vbmd);
    if (band !== 'indeterminate' && r.classProbabilities[band] < MIN_CLASS_PROBABILITY_OF_REPORTED_BAND) {
      warnings.push(
        `${l.level}: the model's class head gives ${band} (the band of ${next.vbmd} mg/cm3) a probability of only ${r.classProbabilities[band].toFixed(2)}: its class and the value disagree (on the held-out phantoms mostly within a few mg/cm3 of an ACR cut-off), so the band is not settled; check this level on the images.`,
      );
    }
    return next;
  });
  return {
    ...report,
    levels,
    summary: source === 'model' ? summarize(levels) : report.summary,
    qc: { ...report.qc, warnings },
    model: { ...model },
  };
}

function round4(v: number): number {
  return Math.round(v * 10000) / 10000;
}
