import type { VertebraLevel } from '../../bmd/report.js';
import type { LoadedVolume, Vec3, Volume } from '../../imaging/volume.js';
import { VbmdError } from '../../util/errors.js';
import { MODELLED_LEVELS, buildPerson, type Person } from './anatomy.js';
import { Rng, mulberry32, subSeed } from './random.js';
import { inscribedCircle, reconstructSlices } from './reconstruct.js';
import { SliceRenderer, makePalette, type Palette, type Placement, type SliceGrid } from './render.js';
import { bodyBounds, levelTruths, round3, round6 } from './truth.js';
import { hardGrid, hardRendering, hardZRange, prepareHardScene, type HardScene } from './hard/scene.js';
import { addHardLevelTruth, hardTruthOf } from './hard/truth.js';
import { ENHANCEMENT_FRACTION, SCANNER_MODELS, drawScannerState, enhancementHu, type ScannerModel, type ScannerState } from './scanner.js';
import {
  PHANTOM_GENERATOR_VERSION,
  PHANTOM_PRESETS,
  PHANTOM_TRUTH_SCHEMA,
  type LesionKind,
  type Phantom,
  type PhantomOptions,
  type PhantomTruth,
} from './types.js';

/** Parses "T8-L3" (or a single level "L1") into the ordered list of levels, checked against what is modelled. */
export function parseLevelRange(range: string): VertebraLevel[] {
  const m = /^\s*([CTLS]\d{1,2})\s*(?:-\s*([CTLS]\d{1,2}))?\s*$/i.exec(range);
  const from = m ? (m[1].toUpperCase() as VertebraLevel) : undefined;
  const to = m ? ((m[2] ?? m[1]).toUpperCase() as VertebraLevel) : undefined;
  const i0 = from ? MODELLED_LEVELS.indexOf(from) : -1;
  const i1 = to ? MODELLED_LEVELS.indexOf(to) : -1;
  if (i0 < 0 || i1 < 0 || i1 < i0) {
    throw new VbmdError('bad-input', `Level range "${range}" is not valid: give cranial-caudal levels between C7 and S1, e.g. "T8-L3".`);
  }
  return MODELLED_LEVELS.slice(i0, i1 + 1);
}

interface Resolved {
  seed: number;
  levels: VertebraLevel[];
  kvp: number;
  noiseHu: number;
  sliceThicknessMm: number;
  sliceSpacingMm: number;
  size: number;
  pixelSpacingMm: number;
  contrast: boolean;
  lesions: { level: VertebraLevel; kind: LesionKind }[];
  fractures: { level: VertebraLevel; heightLossFraction: number }[];
  ribAnomalies: boolean;
  scanner: ScannerModel;
  vbmdMgCm3: Partial<Record<VertebraLevel, number>>;
}

function checkLevel(level: string, what: string): VertebraLevel {
  const l = level.toUpperCase() as VertebraLevel;
  if (!MODELLED_LEVELS.includes(l)) throw new VbmdError('bad-input', `${what} level "${level}" is not a modelled vertebra (C7-S1).`);
  return l;
}

function positive(name: string, v: number | undefined, lo: number, hi: number): void {
  if (v === undefined) return;
  if (!Number.isFinite(v) || v < lo || v > hi) throw new VbmdError('bad-input', `Phantom option ${name}=${v} is out of range (${lo}-${hi}).`);
}

function resolve(o: PhantomOptions): Resolved {
  const seed = o.seed ?? 1;
  if (!Number.isInteger(seed)) throw new VbmdError('bad-input', `Phantom seed ${seed} must be an integer.`);
  positive('kvp', o.kvp, 70, 150);
  positive('noiseHu', o.noiseHu, 0, 200);
  positive('sliceThicknessMm', o.sliceThicknessMm, 0.25, 10);
  positive('sliceSpacingMm', o.sliceSpacingMm, 0.25, 10);
  positive('size', o.size, 32, 1024);
  positive('pixelSpacingMm', o.pixelSpacingMm, 0.2, 20);
  const rng = new Rng(subSeed(seed, 'options'));
  const levels = parseLevelRange(o.levels ?? 'T8-L3');
  const kvpDraw = rng.uniform();
  const kvp = o.kvp ?? (kvpDraw < 0.6 ? 120 : kvpDraw < 0.8 ? 100 : kvpDraw < 0.95 ? 140 : 80);
  const noiseDraw = rng.range(12, 30);
  const noiseHu = o.noiseHu ?? noiseDraw;
  const sliceThicknessMm = o.sliceThicknessMm ?? 1.0;
  const sliceSpacingMm = o.sliceSpacingMm ?? sliceThicknessMm;
  const size = o.size ?? 512;
  const fovMm = rng.range(360, 430);
  const pixelSpacingMm = o.pixelSpacingMm ?? fovMm / size;
  let scanner = rng.pick(SCANNER_MODELS);
  if (o.manufacturer || o.manufacturerModelName) {
    const hit = SCANNER_MODELS.find(
      (s) => (!o.manufacturer || s.manufacturer === o.manufacturer) && (!o.manufacturerModelName || s.model === o.manufacturerModelName),
    );
    scanner = hit ?? { ...scanner, manufacturer: o.manufacturer ?? scanner.manufacturer, model: o.manufacturerModelName ?? scanner.model };
  }
  const lesions = (o.lesions ?? []).map((l) => ({
    level: checkLevel(l.level, 'Lesion'),
    kind: l.kind ?? (rng.chance(0.5) ? 'blastic' : 'lytic'),
  })) as { level: VertebraLevel; kind: LesionKind }[];
  const fractures = (o.fractures ?? []).map((f) => {
    positive('fracture heightLossFraction', f.heightLossFraction, 0.05, 0.8);
    return { level: checkLevel(f.level, 'Fracture'), heightLossFraction: f.heightLossFraction ?? rng.range(0.25, 0.4) };
  });
  const vbmdMgCm3: Partial<Record<VertebraLevel, number>> = {};
  for (const [k, v] of Object.entries(o.vbmdMgCm3 ?? {})) {
    const l = checkLevel(k, 'vBMD');
    if (v === undefined || !Number.isFinite(v) || v < 0 || v > 400) throw new VbmdError('bad-input', `vBMD for ${k} must be 0-400 mg/cm3, got ${v}.`);
    vbmdMgCm3[l] = v;
  }
  return {
    seed,
    levels,
    kvp,
    noiseHu,
    sliceThicknessMm,
    sliceSpacingMm,
    size,
    pixelSpacingMm,
    contrast: o.contrast ?? false,
    lesions,
    fractures,
    ribAnomalies: o.ribAnomalies ?? true,
    scanner,
    vbmdMgCm3,
  };
}

function deterministicUid(seed: number, salt: string): string {
  let n = 0n;
  for (let q = 0; q < 4; q++) n = (n << 32n) | BigInt(subSeed(seed, `${salt}/${q}`));
  return `2.25.${n.toString()}`;
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

/**
 * Generates a synthetic chest/abdomen CT with known truth, in memory. Deterministic in (seed, options).
 * Speed: a 512x512x300 1 mm volume takes a few seconds; 128x128 test volumes well under one.
 * Each part draws from its own named stream (subSeed), so the steps below only read what earlier ones made.
 */
export function generatePhantom(options: PhantomOptions = {}): Phantom {
  const o = resolve(options);
  const preset = checkPreset(options.preset ?? 'default');
  const person: Person = buildPerson(new Rng(subSeed(o.seed, 'person')), {
    vbmdOverrides: o.vbmdMgCm3,
    lesions: o.lesions,
    fractures: o.fractures,
    ribAnomalies: o.ribAnomalies,
    pediclesAtCranialBody: preset === 'hard',
  });
  const scannerRng = new Rng(subSeed(o.seed, 'scanner'));
  const waterEquivalentDiameterMm = waterEquivalentDiameterAtL1(person);
  // The hard preset re-shapes the person and draws its own acquisition (src/research/phantom/hard), from its own streams.
  const requested = options.levels !== undefined ? o.levels : null;
  const hard = preset === 'hard' ? prepareHardScene(options, o.seed, person, requested) : null;
  if (hard) applyHardAcquisition(o, hard);
  const state = drawScannerState(scannerRng, o.kvp, o.contrast, o.scanner, waterEquivalentDiameterMm);
  if (hard?.spec.contrast) state.contrast = { ...state.contrast, enabled: true, iodineMgMl: hard.spec.contrast.aortaIodineMgMl };
  const place = drawPlacement(o.seed);
  const { zTop, zBot } = hard ? hardZRange(hard, requested) : defaultZRange(person, o.levels);
  const scan = renderScan(o, person, state, place, hard, zTop, zBot);

  const truthSpine = hard ? hard.anatomy.spine.spine.filter((v) => v !== hard.anatomy.spine.s2) : person.vertebrae;
  const levels = levelTruths(person, scan.palette, place, zBot, zTop, truthSpine);
  if (hard) addHardLevelTruth(levels, hard, place, scan.grid, scan.inFov);
  const resolvedOptions = resolvedOptionsOf(o, options, hard);
  const truth: PhantomTruth = {
    ...truthOf(o, resolvedOptions, scan, state, waterEquivalentDiameterMm, levels),
    ribPairs: person.ribPairs,
    levels,
    ...(hard ? { preset: 'hard' as const, hard: hardTruthOf(hard, levels, zBot, zTop, scan.fovGrid!.centerMm) } : {}),
  };
  const loaded: LoadedVolume = { volume: scan.volume, meta: phantomMeta(o, resolvedOptions) };
  return { loaded, truth, anatomy: { person, placement: place, ...(hard ? { spine: hard.anatomy.spine.spine, hard: hard.anatomy } : {}) } };
}

function checkPreset(preset: NonNullable<PhantomOptions['preset']>): NonNullable<PhantomOptions['preset']> {
  if (!(PHANTOM_PRESETS as readonly string[]).includes(preset)) {
    throw new VbmdError('bad-input', `Phantom preset "${String(preset)}" is not one of: ${PHANTOM_PRESETS.join(', ')}.`);
  }
  return preset;
}

/** Water-equivalent diameter at L1 (AAPM Report 220 style, from the torso outline): drives residual beam hardening. */
function waterEquivalentDiameterAtL1(person: Person): number {
  const l1t = person.torsoAt(person.vertebrae[MODELLED_LEVELS.indexOf('L1')].c[2]);
  return 2 * Math.sqrt(l1t.a * ((l1t.bAnt + l1t.bPost) / 2)) * 0.95;
}

/** The hard preset's drawn acquisition replaces the resolved one (in place). */
function applyHardAcquisition(o: Resolved, hard: HardScene): void {
  o.noiseHu = hard.acq.noiseHu;
  o.sliceThicknessMm = hard.acq.sliceThicknessMm;
  o.sliceSpacingMm = hard.acq.sliceSpacingMm;
  o.size = hard.acq.fov.matrix;
  o.pixelSpacingMm = hard.acq.fov.pixelMm;
  if (hard.spec.contrast) o.contrast = true;
}

/** The patient's placement on the table: a small rotation about z and a shift. */
function drawPlacement(seed: number): Placement {
  const placeRng = new Rng(subSeed(seed, 'placement'));
  return {
    rotationRad: (placeRng.range(-3, 3) * Math.PI) / 180,
    tx: placeRng.range(-12, 12),
    ty: placeRng.range(-10, 25),
    tz: -placeRng.range(150, 700),
  };
}

/** Scan z-range (body frame): the requested levels fully, plus half the neighbouring discs and a margin. */
function defaultZRange(person: Person, levels: VertebraLevel[]): { zTop: number; zBot: number } {
  const vIndex = (l: VertebraLevel): number => MODELLED_LEVELS.indexOf(l);
  const fb = bodyBounds(person.vertebrae[vIndex(levels[0])]);
  const lb = bodyBounds(person.vertebrae[vIndex(levels[levels.length - 1])]);
  return { zTop: fb.max[2] + 4, zBot: lb.min[2] - 4 };
}

interface RenderedScan {
  volume: Volume;
  grid: SliceGrid;
  inFov: Uint8Array;
  palette: Palette;
  /** The hard preset's reconstruction grid (null on default phantoms). */
  fovGrid: ReturnType<typeof hardGrid> | null;
}

/** Renders and reconstructs every slice between zBot and zTop into the volume. */
function renderScan(o: Resolved, person: Person, state: ScannerState, place: Placement, hard: HardScene | null, zTop: number, zBot: number): RenderedScan {
  const sz = o.sliceSpacingMm;
  const slices = Math.max(1, Math.ceil((zTop - zBot) / sz) + 1);
  const cols = o.size;
  const rows = o.size;
  const px = o.pixelSpacingMm;
  const fovGrid = hard ? hardGrid(hard, person, place, (zTop + zBot) / 2) : null;
  const grid: SliceGrid = fovGrid?.grid ?? { cols, rows, pixelMm: px, ox: (-(cols - 1) / 2) * px, oy: (-(rows - 1) / 2) * px };
  const inFov = fovGrid?.inFov ?? inscribedCircle(grid);
  const originMm: Vec3 = [grid.ox, grid.oy, zBot + place.tz];
  // Hard studies are stored as int16 (every value is an integer HU), as a DICOM series loads.
  const hu = hard ? new Int16Array(cols * rows * slices) : new Float32Array(cols * rows * slices);
  const look = hard ? hardRendering(hard, person, state, grid, place) : null;
  const palette = look?.palette ?? makePalette(state, person.visceralFatFraction);

  const renderer = new SliceRenderer(person, palette, grid, place, look?.painter);
  reconstructSlices({
    renderer,
    grid,
    slices,
    zBot,
    sliceSpacingMm: sz,
    sliceThicknessMm: o.sliceThicknessMm,
    psfSigmaMm: state.scanner.psfSigmaMm,
    noiseHu: o.noiseHu,
    noise: mulberry32(subSeed(o.seed, 'noise')),
    inFov,
    hu,
    ...(hard ? { huMax: hard.acq.clipMaxHu, noiseFactorAt: look!.noiseFactorAt, artefacts: look!.artefacts } : {}),
  });

  const volume: Volume = {
    hu,
    dims: [cols, rows, slices],
    spacingMm: [px, px, sz],
    originMm,
    direction: [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ],
  };
  return { volume, grid, inFov, palette, fovGrid };
}

/** The options as resolved (drawn values filled in), as the truth records them and the UIDs hash them. */
function resolvedOptionsOf(o: Resolved, options: PhantomOptions, hard: HardScene | null): Record<string, unknown> {
  const resolvedOptions: Record<string, unknown> = {
    levels: hard ? hard.levelsText : `${o.levels[0]}-${o.levels[o.levels.length - 1]}`,
    kvp: o.kvp,
    noiseHu: round3(o.noiseHu),
    sliceThicknessMm: o.sliceThicknessMm,
    sliceSpacingMm: o.sliceSpacingMm,
    size: o.size,
    pixelSpacingMm: round3(o.pixelSpacingMm),
    contrast: o.contrast,
    lesions: o.lesions,
    fractures: o.fractures.map((f) => ({ level: f.level, heightLossFraction: round3(f.heightLossFraction) })),
    ribAnomalies: o.ribAnomalies,
    vbmdMgCm3: o.vbmdMgCm3,
    manufacturer: o.scanner.manufacturer,
    manufacturerModelName: o.scanner.model,
  };
  if (hard) {
    resolvedOptions.preset = 'hard';
    if (options.hard) resolvedOptions.hard = options.hard;
  }
  return resolvedOptions;
}

/** The truth's acquisition part: volume geometry, scanner, calibration, tissue HUs, contrast, noise and cupping. */
function truthOf(
  o: Resolved,
  resolvedOptions: Record<string, unknown>,
  scan: RenderedScan,
  state: ScannerState,
  waterEquivalentDiameterMm: number,
  levels: PhantomTruth['levels'],
): Omit<PhantomTruth, 'ribPairs' | 'levels' | 'preset' | 'hard'> {
  const { volume, palette } = scan;
  const trabDelta = enhancementHu(state, ENHANCEMENT_FRACTION.trabecular);
  const spineCup = levels.length ? levels.reduce((s, l) => s + (l.trabecularHu - palette.trabIntercept - palette.trabSlope * l.vbmdMgCm3), 0) / levels.length : 0;
  const tissueHu: Record<string, number> = {};
  for (const [k, v] of Object.entries(state.tissue)) tissueHu[k] = round3(v);
  return {
    schema: PHANTOM_TRUTH_SCHEMA,
    generatorVersion: PHANTOM_GENERATOR_VERSION,
    seed: o.seed,
    options: resolvedOptions,
    volume: { dims: volume.dims, spacingMm: volume.spacingMm, originMm: volume.originMm.map(round3) as Vec3, sliceThicknessMm: o.sliceThicknessMm },
    scanner: {
      manufacturer: o.scanner.manufacturer,
      model: o.scanner.model,
      kvp: o.kvp,
      effectiveEnergyKev: round3(state.energyKev),
      boneEffectiveEnergyKev: round3(state.boneEnergyKev),
      waterEquivalentDiameterMm: round3(waterEquivalentDiameterMm),
      psfSigmaMm: o.scanner.psfSigmaMm,
    },
    calibration: {
      slope: round6(state.slope),
      intercept: round6(state.intercept),
      kvp: o.kvp,
      manufacturer: o.scanner.manufacturer,
      model: o.scanner.model,
    },
    tissueHu,
    contrast: {
      enabled: o.contrast,
      iodineMgMl: round3(state.contrast.iodineMgMl),
      aortaHu: round3(palette.aorta),
      trabecularDeltaHu: round3(trabDelta),
    },
    noise: { sdHu: round3(o.noiseHu), psfSigmaMm: o.scanner.psfSigmaMm },
    cuppingAtSpineHu: round3(spineCup),
  };
}

/** DICOM-style metadata: UIDs from the seed and the resolved options, a study date drawn from the seed. */
function phantomMeta(o: Resolved, resolvedOptions: Record<string, unknown>): LoadedVolume['meta'] {
  const uidSeed = (o.seed ^ hashString(JSON.stringify(resolvedOptions))) >>> 0;
  const dateRng = new Rng(subSeed(o.seed, 'date'));
  const day = new Date(Date.UTC(2020, 0, 1) + Math.floor(dateRng.range(0, 6 * 365)) * 86400000 + Math.floor(dateRng.range(7, 19)) * 3600000);
  return {
    kind: 'phantom',
    source: `phantom:seed=${o.seed}`,
    studyInstanceUid: deterministicUid(uidSeed, 'study'),
    seriesInstanceUid: deterministicUid(uidSeed, 'series'),
    seriesDescription: `vbmd phantom ${resolvedOptions.levels as string}${o.contrast ? ' contrast' : ''}`,
    patientId: `PHANTOM-${o.seed}`,
    accessionNumber: `PH${String(o.seed).padStart(8, '0')}`,
    acquisitionDateTime: day.toISOString().slice(0, 19),
    manufacturer: o.scanner.manufacturer,
    manufacturerModelName: o.scanner.model,
    kvp: o.kvp,
    ...(o.contrast ? { contrastAgent: 'IOHEXOL 350 MG/ML' } : {}),
  };
}
