import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLASS_ORDER } from '../../model/contract.js';
import { DISAGREEMENT_MARGIN_MG_CM3 } from '../../model/enrich-report.js';
import type { ModelIdentity } from '../../model/model-file.js';
import type { CalibrationMode, EvalRow } from './collect.js';
import { methodStats, OSTEOPOROSIS_BELOW_MG_CM3, type MethodStats, type WithCi } from './method-stats.js';
import { blandAltmanSvg, rocSvg, scatterSvg } from './svg-plots.js';

/**
 * The paper's evaluation table (Wang et al. 2024) for the model and the geometric ROI on the same vertebrae, per
 * calibration mode and subset, with the model acceptance checks (targets in models/MODEL_CARD.md), as Markdown, JSON
 * and SVG plots.
 */
export type MethodName = 'model' | 'regression' | 'geometric' | 'reported';
export const METHOD_LABEL: Record<MethodName, string> = {
  model: 'model (mean over predicted ROI)',
  regression: 'model regression head',
  geometric: 'geometric ROI (engine)',
  reported: 'reported vBMD (pipeline rule)',
};

export interface SubsetResult {
  name: string;
  description: string;
  /** Rows in the subset before pairing; rows where a method gave no value are left out of every method. */
  rows: number;
  droppedNoValue: number;
  methods: Partial<Record<MethodName, MethodStats>>;
}

export interface CalibrationResultSet {
  calibration: CalibrationMode;
  /** Engine calibration methods seen, with counts. */
  methodsUsed: Record<string, number>;
  subsets: SubsetResult[];
  /** 95th and 99th percentile of |model - geometric| on levels without lesion, fracture or contrast. */
  disagreementP95MgCm3: number | null;
  disagreementP99MgCm3: number | null;
  /** Share of those levels where model and geometric ROI agree within DISAGREEMENT_MARGIN_MG_CM3. */
  agreeWithinMarginFraction: number | null;
}

export interface AcceptanceCheck {
  what: string;
  target: string;
  value: string;
  holds: boolean;
}

export interface EvaluationResult {
  model: ModelIdentity;
  set: string;
  generatedAt: string;
  bootstrapResamples: number;
  results: CalibrationResultSet[];
  acceptance: AcceptanceCheck[];
}

interface SubsetDef {
  name: string;
  description: string;
  keep: (r: EvalRow) => boolean;
}

export const SUBSETS: SubsetDef[] = [
  { name: 'held-out, non-contrast', description: 'every matched vertebra of the non-contrast studies (primary: contrast scans are flagged and read high by design)', keep: (r) => !r.contrast },
  { name: 'lesion-bearing', description: 'vertebrae with a blastic or lytic lesion, non-contrast', keep: (r) => !r.contrast && r.lesion !== null },
  { name: 'fractured', description: 'vertebrae with a compression fracture, non-contrast', keep: (r) => !r.contrast && r.fracture },
  { name: 'kept by QC', description: 'vertebrae the engine QC keeps for the summary, non-contrast', keep: (r) => !r.contrast && r.included },
  { name: 'contrast-enhanced', description: 'vertebrae of contrast-enhanced studies (flagged in reports)', keep: (r) => r.contrast },
  { name: 'all', description: 'every matched vertebra, contrast included', keep: () => true },
];

function percentile(v: number[], p: number): number | null {
  if (!v.length) return null;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.round(p * (s.length - 1)))];
}

export function evaluateRows(rows: EvalRow[], calibration: CalibrationMode, options: { resamples?: number } = {}): CalibrationResultSet {
  const mine = rows.filter((r) => r.calibration === calibration);
  const methodsUsed: Record<string, number> = {};
  for (const r of mine) methodsUsed[r.calibrationMethod] = (methodsUsed[r.calibrationMethod] ?? 0) + 1;
  const subsets: SubsetResult[] = [];
  for (const def of SUBSETS) {
    const inSet = mine.filter(def.keep);
    const paired = inSet.filter((r) => r.model !== null && r.geometric !== null && r.regression !== null && r.reported !== null);
    const ref = paired.map((r) => r.reference);
    const methods: SubsetResult['methods'] = {};
    if (paired.length >= 2) {
      const probs = paired.every((r) => r.probabilities) ? paired.map((r) => r.probabilities!) : null;
      const o = { resamples: options.resamples };
      methods.model = methodStats(ref, paired.map((r) => r.model!), probs, o);
      methods.regression = methodStats(ref, paired.map((r) => r.regression!), null, o);
      methods.geometric = methodStats(ref, paired.map((r) => r.geometric!), null, o);
      methods.reported = methodStats(ref, paired.map((r) => r.reported!), null, o);
    }
    subsets.push({ name: def.name, description: def.description, rows: inSet.length, droppedNoValue: inSet.length - paired.length, methods });
  }
  const clean = mine.filter((r) => !r.contrast && !r.lesion && !r.fracture && r.model !== null && r.geometric !== null);
  const gaps = clean.map((r) => Math.abs(r.model! - r.geometric!));
  return {
    calibration,
    methodsUsed,
    subsets,
    disagreementP95MgCm3: percentile(gaps, 0.95),
    disagreementP99MgCm3: percentile(gaps, 0.99),
    agreeWithinMarginFraction: gaps.length ? gaps.filter((g) => g <= DISAGREEMENT_MARGIN_MG_CM3).length / gaps.length : null,
  };
}

/** Model acceptance (models/MODEL_CARD.md "`vbmd evaluate` table") on the primary subset with site calibration (or
 * the first calibration run). */
export function acceptanceChecks(results: CalibrationResultSet[]): AcceptanceCheck[] {
  const res = results.find((r) => r.calibration === 'site') ?? results[0];
  if (!res) return [];
  const main = res.subsets.find((s) => s.name === SUBSETS[0].name);
  const lesion = res.subsets.find((s) => s.name === 'lesion-bearing');
  const m = main?.methods.model;
  const g = main?.methods.geometric;
  const checks: AcceptanceCheck[] = [];
  const f = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  const vertebrae = main?.rows ?? 0;
  checks.push({ what: `held-out vertebrae (${res.calibration} calibration, non-contrast)`, target: '>= 300, lesion and fracture cases included', value: `${vertebrae} (lesion ${lesion?.rows ?? 0}, fracture ${res.subsets.find((s) => s.name === 'fractured')?.rows ?? 0})`, holds: vertebrae >= 300 && (lesion?.rows ?? 0) > 0 && (res.subsets.find((s) => s.name === 'fractured')?.rows ?? 0) > 0 });
  if (!m || !g) return checks;
  checks.push({ what: 'model Spearman r', target: '>= 0.97', value: f(m.spearman.value), holds: m.spearman.value >= 0.97 });
  checks.push({ what: 'model Bland-Altman |bias|', target: '<= 1 mg/cm3', value: f(m.biasMgCm3.value, 2), holds: Math.abs(m.biasMgCm3.value) <= 1 });
  checks.push({ what: 'model 95% limits of agreement', target: 'within +-12 mg/cm3', value: `${f(m.loaLowerMgCm3.value, 2)} to ${f(m.loaUpperMgCm3.value, 2)}`, holds: m.loaLowerMgCm3.value >= -12 && m.loaUpperMgCm3.value <= 12 });
  checks.push({ what: `model AUC (osteoporosis, < ${OSTEOPOROSIS_BELOW_MG_CM3})`, target: '>= 0.98', value: f(m.aucOsteoporosis.value), holds: m.aucOsteoporosis.value >= 0.98 });
  checks.push({
    what: 'model no worse than geometric ROI overall (MAE)',
    target: 'MAE model <= MAE geometric',
    value: `${f(m.maeMgCm3.value, 2)} vs ${f(g.maeMgCm3.value, 2)}`,
    holds: m.maeMgCm3.value <= g.maeMgCm3.value,
  });
  const lm = lesion?.methods.model;
  const lg = lesion?.methods.geometric;
  checks.push({
    what: 'model better than geometric ROI on lesion-bearing levels (MAE)',
    target: 'MAE model < MAE geometric',
    value: lm && lg ? `${f(lm.maeMgCm3.value, 2)} vs ${f(lg.maeMgCm3.value, 2)} (n=${lm.n})` : 'no lesion-bearing levels',
    holds: !!lm && !!lg && lm.maeMgCm3.value < lg.maeMgCm3.value,
  });
  return checks;
}

function ci(x: WithCi, d = 3): string {
  const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  return `${f(x.value)} [${f(x.lower)}, ${f(x.upper)}]`;
}

function confusionText(c: number[][]): string {
  return c.map((row, i) => `${CLASS_ORDER[i]}: ${row.join('/')}`).join('; ');
}

/** The table as Markdown. */
export function evaluationMarkdown(e: EvaluationResult): string {
  const L: string[] = [];
  L.push(`# vBMD model evaluation: ${e.model.name} ${e.model.version}`);
  L.push('');
  L.push(`Model sha256 \`${e.model.sha256}\`. Set: ${e.set}. Generated ${e.generatedAt} by \`vbmd evaluate\` (src/research/evaluation/).`);
  L.push('');
  L.push('Per vertebra, model and geometric ROI on the same vertebrae, centres and calibration. Bland-Altman = measured - reference.');
  L.push('AUCs score -vBMD against the reference class (osteoporosis < 80, low BMD <= 120 mg/cm3, ACR 2018); class accuracy from vBMD with the ACR thresholds.');
  L.push(`95% CIs: percentile bootstrap over vertebrae (${e.bootstrapResamples} resamples; vertebrae of one study are not independent, so the intervals are optimistic).`);
  L.push('');
  if (e.acceptance.length) {
    L.push('## Model acceptance (models/MODEL_CARD.md)');
    L.push('');
    L.push('| check | target | value | holds |');
    L.push('|---|---|---|---|');
    for (const a of e.acceptance) L.push(`| ${a.what} | ${a.target} | ${a.value} | ${a.holds ? 'yes' : '**no**'} |`);
    L.push('');
  }
  for (const r of e.results) {
    L.push(`## Calibration: ${r.calibration} (${Object.entries(r.methodsUsed).map(([k, v]) => `${k} x${v}`).join(', ')} level readings)`);
    L.push('');
    if (r.disagreementP95MgCm3 !== null) {
      L.push(
        `|model - geometric| on levels without lesion, fracture or contrast: 95th percentile ${r.disagreementP95MgCm3.toFixed(1)}, 99th ${r.disagreementP99MgCm3!.toFixed(1)} mg/cm3; within the ${DISAGREEMENT_MARGIN_MG_CM3} mg/cm3 QC margin on ${((r.agreeWithinMarginFraction ?? NaN) * 100).toFixed(1)} %.`,
      );
      L.push('');
    }
    for (const s of r.subsets) {
      L.push(`### ${s.name}: ${s.description}`);
      L.push('');
      L.push(`${s.rows} vertebrae${s.droppedNoValue ? `, ${s.droppedNoValue} left out because a method gave no value` : ''}.`);
      L.push('');
      const ms = Object.entries(s.methods) as [MethodName, MethodStats][];
      if (!ms.length) {
        L.push('Too few vertebrae for statistics.');
        L.push('');
        continue;
      }
      L.push('| method | n | Spearman r | Pearson r | MAE | bias | 95% LoA | AUC < 80 | AUC <= 120 | accuracy (3 classes) |');
      L.push('|---|---|---|---|---|---|---|---|---|---|');
      for (const [name, m] of ms) {
        L.push(
          `| ${METHOD_LABEL[name]} | ${m.n} | ${ci(m.spearman)} | ${ci(m.pearson)} | ${ci(m.maeMgCm3, 2)} | ${ci(m.biasMgCm3, 2)} | ${ci(m.loaLowerMgCm3, 1)} to ${ci(m.loaUpperMgCm3, 1)} | ${ci(m.aucOsteoporosis)} | ${ci(m.aucLowBmd)} | ${ci(m.accuracy)} |`,
        );
      }
      const mm = s.methods.model;
      if (mm?.aucOsteoporosisClassHead && mm.aucLowBmdClassHead && mm.classHeadAccuracy) {
        L.push(`| model class head (probabilities) | ${mm.n} | | | | | | ${ci(mm.aucOsteoporosisClassHead)} | ${ci(mm.aucLowBmdClassHead)} | ${ci(mm.classHeadAccuracy)} |`);
      }
      L.push('');
      L.push(`Confusion matrices (rows = reference class, counts predicted ${CLASS_ORDER.join('/')}):`);
      for (const [name, m] of ms) L.push(`- ${METHOD_LABEL[name]}: ${confusionText(m.confusion)}`);
      if (mm?.classHeadConfusion) L.push(`- model class head: ${confusionText(mm.classHeadConfusion)}`);
      L.push('');
    }
  }
  return L.join('\n') + '\n';
}

/**
 * The short form for models/MODEL_CARD.md: acceptance, then per calibration the primary, lesion-bearing and
 * QC-kept subsets, one line per method (values with 95% CIs). Generated, never retyped.
 */
export function evaluationSummaryMarkdown(e: EvaluationResult): string {
  const L: string[] = [];
  L.push(`Model ${e.model.name} ${e.model.version} (sha256 \`${e.model.sha256.slice(0, 16)}...\`); ${e.set}.`);
  L.push('');
  if (e.acceptance.length) {
    L.push('| model acceptance check (models/MODEL_CARD.md) | target | value | holds |');
    L.push('|---|---|---|---|');
    for (const a of e.acceptance) L.push(`| ${a.what} | ${a.target} | ${a.value} | ${a.holds ? 'yes' : '**no**'} |`);
    L.push('');
  }
  const keep = new Set([SUBSETS[0].name, 'lesion-bearing', 'kept by QC']);
  L.push('| calibration | subset | method | n | Spearman r | MAE | bias | 95% LoA | AUC < 80 | accuracy |');
  L.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of e.results) {
    for (const s of r.subsets) {
      if (!keep.has(s.name)) continue;
      for (const [name, m] of Object.entries(s.methods) as [MethodName, MethodStats][]) {
        L.push(
          `| ${r.calibration} | ${s.name} | ${METHOD_LABEL[name]} | ${m.n} | ${ci(m.spearman)} | ${ci(m.maeMgCm3, 2)} | ${ci(m.biasMgCm3, 2)} | ${m.loaLowerMgCm3.value.toFixed(1)} to ${m.loaUpperMgCm3.value.toFixed(1)} | ${ci(m.aucOsteoporosis)} | ${ci(m.accuracy)} |`,
        );
      }
    }
  }
  L.push('');
  L.push('Full tables (Pearson, AUC <= 120, confusion matrices, fracture and contrast subsets), per-vertebra rows and plots: models/evaluation/.');
  return L.join('\n') + '\n';
}

const COLOUR: Record<MethodName, string> = { model: '#1f6fb4', regression: '#2a9d3a', geometric: '#d9741a', reported: '#7b3fa0' };

/** Writes evaluation.md, evaluation.json, rows.csv and the SVG plots into `dir`; returns the file names. */
export async function writeEvaluation(dir: string, e: EvaluationResult, rows: EvalRow[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: [string, string][] = [
    ['evaluation.md', evaluationMarkdown(e)],
    ['evaluation.json', JSON.stringify(e, null, 2) + '\n'],
    ['summary.md', evaluationSummaryMarkdown(e)],
    [
      'rows.csv',
      'case,level,calibration,calibration_method,reference,geometric,reported,model,regression,p_normal,p_osteopenia,p_osteoporosis,included,exclusion,lesion,fracture,contrast\n' +
        rows
          .map((r) =>
            [
              r.caseId, r.level, r.calibration, r.calibrationMethod, r.reference.toFixed(2), r.geometric ?? '', r.reported ?? '', r.model ?? '', r.regression ?? '',
              r.probabilities?.normal ?? '', r.probabilities?.osteopenia ?? '', r.probabilities?.osteoporosis ?? '',
              r.included, r.exclusionReason ?? '', r.lesion ?? '', r.fracture, r.contrast,
            ].join(','),
          )
          .join('\n') +
        '\n',
    ],
  ];
  for (const r of e.results) {
    for (const subset of [SUBSETS[0], SUBSETS[1]]) {
      const res = r.subsets.find((s) => s.name === subset.name);
      const paired = rows.filter((x) => x.calibration === r.calibration && subset.keep(x) && x.model !== null && x.geometric !== null && x.regression !== null && x.reported !== null);
      if (!res || paired.length < 2) continue;
      const tag = `${r.calibration}${subset === SUBSETS[0] ? '' : '-lesion'}`;
      const ref = paired.map((x) => x.reference);
      const val = (m: MethodName): number[] => paired.map((x) => (m === 'model' ? x.model! : m === 'regression' ? x.regression! : m === 'reported' ? x.reported! : x.geometric!));
      const methods: MethodName[] = ['model', 'geometric'];
      files.push([
        `scatter-${tag}.svg`,
        scatterSvg(`${subset.name}, ${r.calibration} calibration (n=${paired.length})`, methods.map((m) => ({ name: METHOD_LABEL[m], colour: COLOUR[m], x: ref, y: val(m) }))),
      ]);
      for (const m of methods) {
        const st = res.methods[m];
        if (!st) continue;
        files.push([
          `bland-altman-${m}-${tag}.svg`,
          blandAltmanSvg(`Bland-Altman, ${METHOD_LABEL[m]}, ${subset.name}, ${r.calibration}`, { name: METHOD_LABEL[m], colour: COLOUR[m], x: ref, y: val(m) }, {
            bias: st.biasMgCm3.value,
            lower: st.loaLowerMgCm3.value,
            upper: st.loaUpperMgCm3.value,
          }),
        ]);
      }
      if (subset === SUBSETS[0]) {
        const positive = ref.map((v) => v < OSTEOPOROSIS_BELOW_MG_CM3);
        files.push([
          `roc-osteoporosis-${tag}.svg`,
          rocSvg(
            `ROC, osteoporosis (< 80 mg/cm3), ${r.calibration} calibration`,
            methods.map((m) => ({ name: METHOD_LABEL[m], colour: COLOUR[m], scores: val(m).map((v) => -v), positive, auc: res.methods[m]?.aucOsteoporosis.value ?? NaN })),
          ),
        ]);
      }
    }
  }
  for (const [name, text] of files) await writeFile(join(dir, name), text);
  return files.map(([n]) => n);
}
