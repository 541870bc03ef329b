import type { Vec3 } from '../../../imaging/volume.js';
import type { Vertebra } from '../anatomy.js';
import { toBody, type Placement, type SliceGrid } from '../frame.js';
import { round3, worldOf } from '../truth.js';
import type { HardTruth, PhantomLevelTruth } from '../types.js';
import type { HardScene } from './scene.js';
import { worldDir } from './scene.js';
import type { HardFeature } from './spec.js';

const r3 = (p: Vec3): Vec3 => p.map(round3) as Vec3;

/** Whether every corner of the body's box falls on a reconstructed voxel. */
function inPlane(v: Vertebra, place: Placement, grid: SliceGrid, inFov: Uint8Array): boolean {
  const toWorld = worldOf(place);
  for (const su of [-1, 1]) {
    for (const sv of [-1, 1]) {
      for (const sw of [-1, 1]) {
        const p = toWorld(toBody(v, [su * v.halfWidth, sv * v.halfDepth, (sw * v.heightPost) / 2]));
        const i = Math.round((p[0] - grid.ox) / grid.pixelMm);
        const j = Math.round((p[1] - grid.oy) / grid.pixelMm);
        if (i < 0 || j < 0 || i >= grid.cols || j >= grid.rows || !inFov[j * grid.cols + i]) return false;
      }
    }
  }
  return true;
}

/** Adds the hard preset's per-level truth to the default level truth (same order as `vertebrae`). */
export function addHardLevelTruth(levels: PhantomLevelTruth[], scene: HardScene, place: Placement, grid: SliceGrid, inFov: Uint8Array): void {
  const { spec, anatomy } = scene;
  const spine = anatomy.spine.spine;
  const toWorld = worldOf(place);
  for (const t of levels) {
    const i = spine.findIndex((v) => v.level === t.level && v !== anatomy.spine.s2);
    const v = spine[i];
    const ew = worldDir(place, v.ew);
    t.bodyAxes = { u: r3(worldDir(place, v.eu)), v: r3(worldDir(place, v.ev)), w: r3(ew) };
    t.endplates = {
      superior: { centerMm: r3(toWorld(toBody(v, [0, 0, v.heightAnt / 2]))), normal: r3(ew) },
      inferior: { centerMm: r3(toWorld(toBody(v, [0, 0, -v.heightPost / 2]))), normal: r3([-ew[0], -ew[1], -ew[2]]) },
    };
    const ip = inPlane(v, place, grid, inFov);
    t.inPlaneCovered = ip;
    t.fullyCovered = t.fullyCovered && ip;
    const fr = spec.fractures.find((f) => f.level === t.level);
    if (t.fracture && fr) t.fracture = { ...t.fracture, shape: fr.shape, genantGrade: fr.genantGrade };
    t.hardware = { cement: spec.cement.some((c) => c.level === t.level), screws: spec.screws?.levels.includes(t.level) ?? false };
    if ((spec.transitional === 'sacralised-L5' && t.level === 'L5') || (spec.transitional === 'lumbarised-S1' && t.level === 'S1')) t.transitional = spec.transitional;
    const d = spec.degeneration.find((q) => q.upper === t.level);
    t.discBelow = {
      heightMm: round3(anatomy.spine.discBelowMm[i]),
      vacuum: d?.vacuum ?? false,
      calcified: d?.calcified ?? false,
      osteophyteMm: round3(d?.osteophyteMm ?? 0),
      bridging: d?.bridging ?? false,
      sclerosisMm: round3(d?.sclerosisMm ?? 0),
    };
  }
}

/** Which present features have their anatomy inside the scanned body-frame z-range. */
function featuresInView(scene: HardScene, levels: PhantomLevelTruth[], zBot: number, zTop: number): HardFeature[] {
  const { spec, anatomy } = scene;
  const seen = new Set(levels.map((l) => l.level as string));
  const overlaps = (z0: number, z1: number): boolean => z1 >= zBot && z0 <= zTop;
  const st = anatomy.sternum;
  const g = anatomy.girdle;
  const girdleZ = g ? [...g.scapulaBars, ...g.clavicles].flatMap((c) => [c.a[2], c.b[2]]) : [];
  const inView: Record<HardFeature, boolean> = {
    curvature: true,
    scoliosis: true,
    cartilage: anatomy.cage.cartilage.length + anatomy.cage.calcified.length > 0 && (st ? overlaps(st.zTip - 60, st.zTop) : true),
    'rib-count': seen.has('T12') || seen.has('L1') || seen.has('T1'),
    girdle: g !== null && (g.arms === 'down' ? girdleZ.some((z) => z > zBot) : overlaps(Math.min(...girdleZ), Math.max(...girdleZ))),
    sternum: st !== null && overlaps(st.zTip, st.zTop),
    degeneration: spec.degeneration.some((d) => seen.has(d.upper)),
    fractures: spec.fractures.some((f) => seen.has(f.level)),
    cement: spec.cement.some((c) => seen.has(c.level)),
    screws: spec.screws?.levels.some((l) => seen.has(l)) ?? false,
    lesions: spec.lesions.some((l) => seen.has(l.level)),
    contrast: true,
    transitional: seen.has('L5') || seen.has('S1'),
    'aortic-calcification': anatomy.plaques.some((p) => overlaps(p.z0, p.z1)),
    table: true,
    fov: true,
    clip: true,
  };
  return spec.features.filter((f) => inView[f]);
}

export function hardTruthOf(scene: HardScene, levels: PhantomLevelTruth[], zBot: number, zTop: number, centerMm: [number, number]): HardTruth {
  const { spec, acq } = scene;
  const c = spec.curvature;
  return {
    features: [...spec.features],
    featuresInView: featuresInView(scene, levels, zBot, zTop),
    arms: spec.arms,
    contrastPhase: spec.contrast?.phase ?? null,
    range: {
      kind: acq.range.kind,
      top: `${acq.range.top.level}${acq.range.top.f >= 0 ? '+' : ''}${acq.range.top.f}`,
      bottom: `${acq.range.bottom.level}${acq.range.bottom.f >= 0 ? '+' : ''}${acq.range.bottom.f}`,
    },
    fov: { kind: acq.fov.kind, matrix: acq.fov.matrix, pixelMm: round3(acq.fov.pixelMm), centerMm: [round3(centerMm[0]), round3(centerMm[1])] },
    clipMaxHu: acq.clipMaxHu,
    noise2mmHu: round3(acq.noise2mmHu),
    transitional: spec.transitional,
    curvature: { kyphosisCobbDeg: round3(c.kyphosisCobbDeg), lordosisCobbDeg: round3(c.lordosisCobbDeg), sacralSlopeDeg: round3(c.sacralSlopeDeg), scoliosisCobbDeg: round3(c.scoliosisCobbDeg) },
    screwLevels: spec.screws ? [...spec.screws.levels] : [],
    cementLevels: spec.cement.map((q) => q.level),
  };
}
