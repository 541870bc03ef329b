import type { Command } from 'commander';
import type { VertebraLevel } from '../bmd/report.js';
import { generatePhantom, writePhantom, type FractureRequest, type LesionKind, type LesionRequest, type PhantomOptions } from '../research/phantom/index.js';
import { HARD_FEATURES, type HardFeature, type HardRequest } from '../research/phantom/hard/spec.js';
import { PHANTOM_PRESETS, type PhantomPreset } from '../research/phantom/types.js';
import { VbmdError } from '../util/errors.js';
import { COMMAND_SUMMARIES } from './summaries.js';

interface PhantomFlags {
  out: string;
  levels?: string;
  vbmd?: string;
  seed?: string;
  kvp?: string;
  noise?: string;
  slice?: string;
  spacing?: string;
  pixel?: string;
  size?: string;
  contrast?: boolean;
  lesion?: string;
  fracture?: string;
  ribAnomalies?: boolean;
  json?: boolean;
  preset?: string;
  features?: string;
  always?: string;
  arms?: string;
}

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new VbmdError('bad-input', `--${flag} must be a number, got "${v}".`);
  return n;
}

function list(v: string | undefined): string[] {
  return v ? v.split(',').map((s) => s.trim()).filter(Boolean) : [];
}

/** "L1=95,L2=90" */
export function parseVbmdFlag(v: string | undefined): Partial<Record<VertebraLevel, number>> {
  const out: Partial<Record<VertebraLevel, number>> = {};
  for (const item of list(v)) {
    const m = /^([A-Za-z]\d{1,2})\s*=\s*([0-9.]+)$/.exec(item);
    if (!m) throw new VbmdError('bad-input', `--vbmd item "${item}" is not LEVEL=mg/cm3 (e.g. L1=95).`);
    out[m[1].toUpperCase() as VertebraLevel] = Number(m[2]);
  }
  return out;
}

/** "T11,L2:lytic" */
export function parseLesionFlag(v: string | undefined): LesionRequest[] {
  return list(v).map((item) => {
    const [level, kind] = item.split(':').map((s) => s.trim());
    if (kind !== undefined && kind !== 'blastic' && kind !== 'lytic') {
      throw new VbmdError('bad-input', `--lesion kind "${kind}" must be blastic or lytic (e.g. T11:lytic).`);
    }
    return { level: level.toUpperCase() as VertebraLevel, ...(kind ? { kind: kind as LesionKind } : {}) };
  });
}

/** "L1,T12:0.3" (anterior height loss fraction) */
export function parseFractureFlag(v: string | undefined): FractureRequest[] {
  return list(v).map((item) => {
    const [level, loss] = item.split(':').map((s) => s.trim());
    const f: FractureRequest = { level: level.toUpperCase() as VertebraLevel };
    if (loss !== undefined) {
      const n = Number(loss);
      if (!Number.isFinite(n)) throw new VbmdError('bad-input', `--fracture height loss "${loss}" must be a fraction (e.g. L1:0.3).`);
      f.heightLossFraction = n;
    }
    return f;
  });
}

export function parsePresetFlag(v: string | undefined): PhantomPreset {
  const p = v ?? 'default';
  if (!(PHANTOM_PRESETS as readonly string[]).includes(p)) throw new VbmdError('bad-input', `--preset "${p}" must be one of: ${PHANTOM_PRESETS.join(', ')}.`);
  return p as PhantomPreset;
}

/** "--features girdle,fractures --always screws --arms down" */
export function parseHardFlags(only: string | undefined, always: string | undefined, arms?: string): HardRequest {
  const check = (flag: string, items: string[]): HardFeature[] => {
    for (const f of items) {
      if (!(HARD_FEATURES as readonly string[]).includes(f)) throw new VbmdError('bad-input', `--${flag} item "${f}" is not a hard feature (${HARD_FEATURES.join(', ')}).`);
    }
    return items as HardFeature[];
  };
  if (arms !== undefined && arms !== 'up' && arms !== 'down') throw new VbmdError('bad-input', `--arms "${arms}" must be up or down.`);
  return {
    ...(only ? { only: check('features', list(only)) } : {}),
    ...(always ? { always: check('always', list(always)) } : {}),
    ...(arms ? { arms: arms as 'up' | 'down' } : {}),
  };
}

/** `vbmd phantom --out DIR ...`: writes a synthetic CT series (DIR/dicom) and its truth (DIR/truth.json). */
export function registerPhantom(program: Command): void {
  program
    .command('phantom')
    .description(COMMAND_SUMMARIES.phantom)
    .requiredOption('--out <dir>', 'output folder: DIR/dicom/*.dcm and DIR/truth.json')
    .option('--preset <name>', `default, or hard: real-CT anatomy and acquisitions drawn per seed (${HARD_FEATURES.join(', ')})`, 'default')
    .option('--features <list>', 'hard preset: only these features may appear (comma-separated)')
    .option('--always <list>', 'hard preset: these features appear in every study (comma-separated)')
    .option('--arms <position>', 'hard preset: arms up or down (default: drawn, mostly up)')
    .option('--levels <range>', 'levels covered, e.g. T8-L3 (chest T1-L2, abdomen T10-L5, T10-S1); default T8-L3, or a drawn clinical range with --preset hard')
    .option('--vbmd <list>', 'per-level trabecular vBMD in mg/cm3, e.g. L1=95,L2=90')
    .option('--seed <n>', 'random seed (same seed and options, same phantom)', '1')
    .option('--kvp <kv>', 'tube voltage (default: drawn by the seed, mostly 120)')
    .option('--noise <hu>', 'image noise SD in HU (default: drawn 12-30)')
    .option('--slice <mm>', 'slice thickness in mm (default 1.0; hard: drawn 0.625-5)')
    .option('--spacing <mm>', 'slice spacing in mm (default: = thickness)')
    .option('--pixel <mm>', 'in-plane pixel spacing in mm (default: field of view / size)')
    .option('--size <n>', 'rows = columns (default 512; hard: 512, or ~360 for a small field)')
    .option('--contrast', 'intravenous contrast (enhanced blood and organs)')
    .option('--lesion <list>', 'lesion level(s), optional kind: T11 or T11:lytic,L2:blastic')
    .option('--fracture <list>', 'anterior wedge fracture level(s), optional height loss: L1 or L1:0.3')
    .option('--no-rib-anomalies', 'always 12 rib pairs (default allows the rare 11 or 13)')
    .option('--json', 'print the truth JSON on stdout')
    .action(async (flags: PhantomFlags) => {
      const options: PhantomOptions = {
        seed: num('seed', flags.seed),
        preset: parsePresetFlag(flags.preset),
        ...(flags.features || flags.always || flags.arms ? { hard: parseHardFlags(flags.features, flags.always, flags.arms) } : {}),
        levels: flags.levels,
        vbmdMgCm3: parseVbmdFlag(flags.vbmd),
        kvp: num('kvp', flags.kvp),
        noiseHu: num('noise', flags.noise),
        sliceThicknessMm: num('slice', flags.slice),
        sliceSpacingMm: num('spacing', flags.spacing),
        pixelSpacingMm: num('pixel', flags.pixel),
        size: num('size', flags.size),
        contrast: Boolean(flags.contrast),
        lesions: parseLesionFlag(flags.lesion),
        fractures: parseFractureFlag(flags.fracture),
        ribAnomalies: flags.ribAnomalies !== false,
      };
      const t0 = performance.now();
      const phantom = generatePhantom(options);
      const t1 = performance.now();
      const written = await writePhantom(flags.out, phantom);
      const t2 = performance.now();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(phantom.truth, null, 2)}\n`);
        return;
      }
      const t = phantom.truth;
      const lv = t.levels.filter((l) => l.fullyCovered).map((l) => `${l.level} ${l.vbmdMgCm3.toFixed(0)}${l.lesion ? ` (${l.lesion.kind} lesion)` : ''}${l.fracture ? ' (fracture)' : ''}`);
      process.stdout.write(
        `Wrote ${written.files.length} slices (${t.volume.dims.join('x')}, ${t.volume.spacingMm.map((s) => s.toFixed(2)).join('/')} mm) to ${written.dicomDir} and truth to ${written.truthPath} ` +
          `in ${((t2 - t0) / 1000).toFixed(1)} s (generate ${((t1 - t0) / 1000).toFixed(1)} s).\n` +
          `Scanner ${t.scanner.manufacturer} ${t.scanner.model} ${t.scanner.kvp} kVp; calibration HU = ${t.calibration.intercept.toFixed(2)} + ${t.calibration.slope.toFixed(4)} * vBMD; noise ${t.noise.sdHu.toFixed(1)} HU${t.contrast.enabled ? '; contrast' : ''}.\n` +
          `vBMD (mg/cm3): ${lv.join(', ')}.\n` +
          (t.hard
            ? `Hard preset: ${t.hard.range.kind} range ${t.hard.range.top} to ${t.hard.range.bottom}, ${t.hard.fov.kind} field, arms ${t.hard.arms}` +
              `${t.hard.contrastPhase ? `, ${t.hard.contrastPhase} contrast` : ''}, clipped at ${t.hard.clipMaxHu} HU; features in view: ${t.hard.featuresInView.join(', ')}.\n`
            : ''),
      );
    });
}
