import type { VertebraLevel } from '../../../bmd/report.js';
import type { Vec3 } from '../../../imaging/volume.js';
import { MODELLED_LEVELS, type Person, type Vertebra } from '../anatomy.js';
import type { Placement, SliceGrid } from '../frame.js';
import { makePalette, type Palette } from '../palette.js';
import { Rng, subSeed } from '../random.js';
import { inscribedCircle } from '../reconstruct.js';
import type { ScannerState } from '../scanner.js';
import { bodyBounds, worldOf } from '../truth.js';
import type { PhantomOptions } from '../types.js';
import { drawAcquisition, type HardAcquisition, type RangeEnd } from './acquisition.js';
import { applyHardAnatomy, type HardAnatomy } from './anatomy.js';
import { phasePalette, type PhaseHu } from './contrast.js';
import { drawHardSpec } from './draw.js';
import { metalStreaks } from './hardware.js';
import { PaintContext } from './paint.js';
import { HardPainter } from './painter.js';
import { installBodyChanges } from './pathology.js';
import { checkHardRequest, type HardSpec } from './spec.js';

/** Levels from C6 (drawn by the hard preset above the modelled C7) to S1. */
const HARD_LEVELS: readonly VertebraLevel[] = ['C6', ...MODELLED_LEVELS];

/** A hard study before its slices are rendered: what generatePhantom needs beyond the default path. */
export interface HardScene {
  spec: HardSpec;
  acq: HardAcquisition;
  anatomy: HardAnatomy;
  /** Levels the drawn range spans (inclusive, cranial first). */
  levelsText: string;
}

function levelsBetween(top: VertebraLevel, bottom: VertebraLevel): VertebraLevel[] {
  return HARD_LEVELS.slice(HARD_LEVELS.indexOf(top), HARD_LEVELS.indexOf(bottom) + 1);
}

/** Body-frame z of a range end on a spine (see RangeEnd). */
function zOfEnd(spine: Vertebra[], e: RangeEnd): number {
  const i = spine.findIndex((v) => v.level === e.level);
  const v = spine[Math.max(0, i)];
  const up = spine[i - 1];
  const lo = spine[i + 1];
  const discUp = up ? up.c[2] - up.heightPost / 2 - (v.c[2] + v.heightPost / 2) : 6;
  const discLo = lo ? v.c[2] - v.heightPost / 2 - (lo.c[2] + lo.heightPost / 2) : 6;
  return v.c[2] + e.f * (e.f > 0 ? v.heightPost / 2 + discUp / 2 : v.heightPost / 2 + discLo / 2);
}

/**
 * Draws the acquisition and the hard anatomy and re-shapes `person` (in place). `requestedLevels`, when the
 * caller gave levels, replaces the drawn clinical range by those levels fully covered.
 */
export function prepareHardScene(options: PhantomOptions, seed: number, person: Person, requestedLevels: VertebraLevel[] | null): HardScene {
  checkHardRequest(options.hard);
  const given = { sliceThicknessMm: options.sliceThicknessMm, sliceSpacingMm: options.sliceSpacingMm, size: options.size, pixelSpacingMm: options.pixelSpacingMm, noiseHu: options.noiseHu };
  const rangeMm = (r: HardAcquisition['range']): number => {
    const z = (l: VertebraLevel): number => (l === 'C6' ? person.vertebrae[0].c[2] + 20 : person.vertebrae[MODELLED_LEVELS.indexOf(l)].c[2]);
    return z(r.top.level) - z(r.bottom.level) + 40;
  };
  const acq = drawAcquisition(seed, options.hard, given, requestedLevels, rangeMm);
  const inView = levelsBetween(acq.range.top.level, acq.range.bottom.level);
  const spec = drawHardSpec(seed, options.hard, inView);
  const anatomy = applyHardAnatomy(person, spec);
  const levelsText = `${acq.range.top.level}-${acq.range.bottom.level}`;
  return { spec, acq, anatomy, levelsText };
}

/** Scanned body-frame z-range: the drawn clinical range, or the requested levels fully with a 4 mm margin. */
export function hardZRange(scene: HardScene, requestedLevels: VertebraLevel[] | null): { zTop: number; zBot: number } {
  const spine = scene.anatomy.spine.spine;
  if (requestedLevels) {
    const first = spine.find((v) => v.level === requestedLevels[0])!;
    const last = spine.find((v) => v.level === requestedLevels[requestedLevels.length - 1])!;
    return { zTop: bodyBounds(first).max[2] + 4, zBot: bodyBounds(last).min[2] - 4 };
  }
  return { zTop: zOfEnd(spine, scene.acq.range.top), zBot: zOfEnd(spine, scene.acq.range.bottom) };
}

/** The reconstruction grid: its centre by field kind (world LPS) and the voxels it reconstructs. */
export function hardGrid(scene: HardScene, person: Person, place: Placement, zMid: number): { grid: SliceGrid; inFov: Uint8Array; centerMm: [number, number] } {
  const { fov } = scene.acq;
  const toWorld = worldOf(place);
  let centre: [number, number] = [fov.shiftMm[0], fov.shiftMm[1]];
  if (fov.kind === 'small-spine') {
    const spine = scene.anatomy.spine.spine;
    const v = spine.reduce((b, q) => (Math.abs(q.c[2] - zMid) < Math.abs(b.c[2] - zMid) ? q : b));
    const c = toWorld([v.c[0] + v.ev[0] * 10, v.c[1] + v.ev[1] * 10, v.c[2]]);
    centre = [c[0] + fov.shiftMm[0], c[1] + fov.shiftMm[1]];
  } else if (fov.kind === 'small-heart' && person.heart) {
    const c = toWorld(person.heart.c);
    centre = [c[0] + fov.shiftMm[0], c[1] + fov.shiftMm[1]];
  }
  const n = fov.matrix;
  const px = fov.pixelMm;
  const grid: SliceGrid = { cols: n, rows: n, pixelMm: px, ox: centre[0] - ((n - 1) / 2) * px, oy: centre[1] - ((n - 1) / 2) * px };
  // Full fields keep the reconstruction circle; a targeted reconstruction fills its square.
  const inFov = fov.kind === 'full' || fov.kind === 'off-centre' ? circleInGrid(grid) : new Uint8Array(n * n).fill(1);
  return { grid, inFov, centerMm: centre };
}

/** The circle inscribed in a grid, about the grid's own centre. */
function circleInGrid(grid: SliceGrid): Uint8Array {
  const cx = grid.ox + ((grid.cols - 1) / 2) * grid.pixelMm;
  const cy = grid.oy + ((grid.rows - 1) / 2) * grid.pixelMm;
  return inscribedCircle({ ...grid, ox: grid.ox - cx, oy: grid.oy - cy });
}

/** The hard study's palette (contrast phase), the body changes that need HUs, and the painter and slice hooks. */
export function hardRendering(
  scene: HardScene,
  person: Person,
  state: ScannerState,
  grid: SliceGrid,
  place: Placement,
): { palette: Palette; painter: HardPainter; phase: PhaseHu | null; noiseFactorAt: (z: number) => number; artefacts: ((z: number, acc: Float32Array) => void) | undefined } {
  const { spec, anatomy } = scene;
  const rng = new Rng(subSeed(spec.detailSeed, 'rendering'));
  const urineMgMl = rng.range(15, 50);
  const svcMgMl = rng.range(30, 60);
  const { pal, phase } = phasePalette(makePalette(state, person.visceralFatFraction), state, spec.contrast, urineMgMl, svcMgMl);
  const leaks = installBodyChanges(anatomy.spine.spine, spec, pal, new Rng(subSeed(spec.detailSeed, 'bodies')));
  const painter = new HardPainter(new PaintContext(grid, place, pal), person, anatomy, phase, leaks, spec.features.includes('table'));
  const g = anatomy.girdle;
  // Photon starvation through the shoulders (more with the arms down, and beside the trunk below them).
  const noiseFactorAt = (z: number): number => {
    if (!g) return 1;
    const k = g.arms === 'down' ? 0.7 : 0.35;
    return 1 + k * Math.exp(-(((z - g.zHumeralHead) / 45) ** 2)) + (g.arms === 'down' && z < g.zHumeralHead ? 0.15 : 0);
  };
  const artefacts = anatomy.hardware.metal.length ? metalStreaks(anatomy.hardware.metal, grid, place, spec.detailSeed, (s) => new Rng(s)) : undefined;
  return { palette: pal, painter, phase, noiseFactorAt, artefacts };
}

/** Unit vector rotated from the body frame into LPS (placement rotates about z only). */
export function worldDir(place: Placement, d: Vec3): Vec3 {
  const c = Math.cos(place.rotationRad);
  const s = Math.sin(place.rotationRad);
  return [c * d[0] - s * d[1], s * d[0] + c * d[1], d[2]];
}
