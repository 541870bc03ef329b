import { VERTEBRA_LEVELS, type VertebraLevel } from '../../bmd/report.js';
import type { Vec3 } from '../../imaging/volume.js';
import type { Capsule, PersonRequest, Vertebra } from './anatomy.js';
import type { Rng } from './random.js';

/**
 * One vertebra of the person (src/research/phantom/anatomy.ts): the level tables, the body's size, wedging and density,
 * its posterior elements, a requested lesion and the trabecular texture. Draw order matters: the person's Rng is
 * one stream, so every draw here stays in the order buildVertebra makes it.
 */

/** Levels modelled from C7 to S1 (the scan shows whatever part of them falls in its z-range). */
export const MODELLED_LEVELS: readonly VertebraLevel[] = VERTEBRA_LEVELS.slice(VERTEBRA_LEVELS.indexOf('C7'));

// Per level C7..S1: posterior body height, full width (L-R), full depth (A-P), disc below (mm).
export const HEIGHT = [14, 15.5, 16.5, 17, 17.5, 18, 18.5, 19, 19.5, 20, 21, 22, 23, 24.5, 25.5, 26, 26, 25.5, 27];
const WIDTH = [25, 27, 28, 28, 28, 29, 30, 31, 32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 50];
const DEPTH = [16, 16, 17, 19, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 33, 33, 32];
export const DISC_BELOW = [5, 4, 4, 4, 4, 4, 4.5, 5, 5, 5.5, 6, 6.5, 7.5, 8.5, 9.5, 10.5, 11, 10, 0];

export function isThoracic(level: VertebraLevel): boolean {
  return level.startsWith('T');
}
export function isLumbar(level: VertebraLevel): boolean {
  return level.startsWith('L');
}
export function thoracicNumber(level: VertebraLevel): number {
  return isThoracic(level) ? Number(level.slice(1)) : 0;
}

/** Relative vBMD by level: thoracic bodies are denser than lumbar (~1 % per level in QCT reference data). */
export function levelFactor(index: number, l1Index: number): number {
  return 1 + 0.012 * (l1Index - index);
}

/** The whole spine's draws and layout that each vertebra reads (drawn before any vertebra, in buildPerson). */
export interface SpineStack {
  widthScale: number;
  /** The person's vBMD mean before the per-level factor. */
  base: number;
  sacralTiltRad: number;
  /** Posterior body height per level (C7..S1). */
  heights: number[];
  /** Body centre z per level (C7..S1); z = 0 at the bottom of S1. */
  zc: number[];
  zOf(name: VertebraLevel): number;
  /** Sagittal offset (y, posterior +) and coronal offset (x) of the spine centre line at z. */
  ySag(z: number): number;
  xCor(z: number): number;
}

/** Builds level i (index into MODELLED_LEVELS); the spine's y is placed afterwards (placeSpine in anatomy.ts). */
export function buildVertebra(rng: Rng, req: PersonRequest, stack: SpineStack, ribPairs: number, i: number): Vertebra {
  const level = MODELLED_LEVELS[i];
  const isSacrum = level === 'S1';
  const z = stack.zc[i];
  const tilt = isSacrum ? -stack.sacralTiltRad : spineTilt(stack.ySag, z); // S1 endplate faces anterior-superior
  // Local axes: w along the spine tangent (tilted in the sagittal plane), v posterior, u left.
  const ew: Vec3 = [0, Math.sin(tilt), Math.cos(tilt)];
  const ev: Vec3 = [0, Math.cos(tilt), -Math.sin(tilt)];
  const eu: Vec3 = [1, 0, 0];
  const halfWidth = (WIDTH[i] / 2) * stack.widthScale * rng.range(0.97, 1.03);
  const halfDepth = (DEPTH[i] / 2) * stack.widthScale * rng.range(0.97, 1.03);
  const heightPost = stack.heights[i];
  const fr = req.fractures.find((f) => f.level === level);
  const heightAnt = drawHeightAnt(rng, level, heightPost, fr);
  const post = posteriorElements(level, halfWidth, halfDepth, heightPost, req.pediclesAtCranialBody === true ? pedicleRaise(level) : 0);
  const vbmd = drawVbmd(rng, req, stack.base, i);
  const tn = thoracicNumber(level);
  const hasRibs = (tn >= 1 && tn <= Math.min(12, ribPairs)) || (ribPairs === 13 && level === 'L1');
  const lesion = drawLesion(rng, req, level, vbmd, halfWidth, halfDepth, heightPost);
  const texture = drawTexture(rng);
  return {
    level,
    c: [stack.xCor(z), 0, z],
    eu,
    ev,
    ew,
    tiltRad: tilt,
    halfWidth,
    halfDepth,
    heightPost,
    heightAnt,
    cortexMm: rng.range(1.0, 1.5),
    endplateMm: rng.range(0.7, 1.1),
    notchRadius: 0.42 * halfWidth,
    vbmd,
    isSacrum,
    hasRibs,
    canal: post.canal,
    arch: post.arch,
    processes: post.processes,
    lesion,
    fractureLoss: fr ? fr.heightLossFraction : null,
    texture,
    vein: { halfU: rng.range(1.5, 2.2), v0: halfDepth * rng.range(0.35, 0.5), v1: halfDepth + 1, halfW: rng.range(1.8, 2.8) },
  };
}

/** Sagittal tilt of the spine tangent at z (central difference of the curve over +-1 mm). */
function spineTilt(ySag: (z: number) => number, z: number): number {
  const dz = 1;
  const slope = (ySag(z + dz) - ySag(z - dz)) / (2 * dz);
  return Math.atan(slope);
}

/** Natural wedging: thoracic bodies are ~5 % shorter anteriorly (kyphosis), L5 ~5 % taller; a fracture overrides. */
function drawHeightAnt(rng: Rng, level: VertebraLevel, heightPost: number, fr: PersonRequest['fractures'][number] | undefined): number {
  const drawn = heightPost * (isThoracic(level) ? rng.range(0.93, 0.97) : level === 'L5' ? 1.05 : rng.range(0.98, 1.01));
  return fr ? heightPost * (1 - fr.heightLossFraction) : drawn;
}

/** vBMD per level: the person's mean times the level factor plus noise, or the requested value; clamped 10-320. */
function drawVbmd(rng: Rng, req: PersonRequest, base: number, i: number): number {
  let vbmd = base * levelFactor(i, MODELLED_LEVELS.indexOf('L1')) + rng.normal(0, 3);
  const over = req.vbmdOverrides[MODELLED_LEVELS[i]];
  if (over !== undefined) vbmd = over;
  return Math.max(10, Math.min(320, vbmd));
}

type PosteriorElements = Pick<Vertebra, 'canal' | 'arch' | 'processes'>;

/** Canal, neural arch and the posterior elements as capsules in the body's local (u,v,w) coordinates. */
function posteriorElements(level: VertebraLevel, halfWidth: number, halfDepth: number, heightPost: number, raise: number): PosteriorElements {
  const isSacrum = level === 'S1';
  const lumbar = isLumbar(level);
  const canalHalfWidth = lumbar ? (level === 'L1' ? 10.5 : 11.5) : level === 'T12' ? 9 : level === 'C7' ? 12 : isSacrum ? 12 : 8;
  const canalHalfDepth = lumbar ? 8 : isSacrum ? 6 : 7.5;
  const canalV = halfDepth + canalHalfDepth - 1.5;
  const archThick = lumbar ? 6 : 5;
  const archHeight = 0.8 * heightPost;
  const archW = 0.05 * heightPost;
  const canal = { halfWidth: canalHalfWidth, halfDepth: canalHalfDepth, v: canalV };
  const arch = { thick: archThick, height: archHeight, w: archW };
  const backV = canalV + canalHalfDepth + archThick - 2;
  const processes = isSacrum ? sacralProcesses(halfWidth, backV) : vertebralProcesses(level, canal, arch, halfDepth, backV, raise * heightPost);
  return { canal, arch, processes };
}

/**
 * How far above the body's middle the pedicles and transverse processes lie, as a fraction of the body's height, in
 * the hard preset (PersonRequest.pediclesAtCranialBody; the default preset keeps them at the middle, unchanged).
 * The pedicles leave the body's cranial part (the inferior vertebral notch is the deep one), and the transverse
 * processes arise where they meet the laminae; in the thorax they carry the rib tubercle (Gray's Anatomy, vertebral
 * column). Measured in the engine's own frame (the straightened spine): on the Philips chest CT the thoracic
 * processes lie at 0.55-0.91 of their level from its caudal end (median 0.79) and the ribs of T1-T11 reach 40 mm
 * from the midline at 0.64-1.18 (median 0.87); on the TotalSegmentator example the lumbar processes lie at 0.5-0.77
 * and the twelfth ribs end at 0.69-0.77 of T12. With everything at the middle, as here before, the phantoms put
 * the processes at 0.5-0.55 and the rib ends at 0.55: easier than patients, for a disc then lay mid-way between two
 * process levels, as the engine assumed. With these values (hard seeds 20000-20007, quartiles): processes at
 * 0.74-0.84 (median 0.81) in the thorax and 0.67-0.76 (median 0.69) in the lumbar spine.
 * The floating ribs 11-12 have no costotransverse joint, so T11-T12 rise less. T1 stays: its first rib, short and
 * steep, already ends higher here (about 1.0 of T1) than on the Philips scan (0.67), and raised it ended in C7.
 */
function pedicleRaise(level: VertebraLevel): number {
  const tn = thoracicNumber(level);
  if (tn >= 2) return tn <= 10 ? 0.25 : 0.12;
  return isLumbar(level) ? 0.15 : 0;
}

/** Spinous, transverse and articular processes and the pedicles of a mobile vertebra (C7-L5). */
function vertebralProcesses(level: VertebraLevel, canal: Vertebra['canal'], arch: Vertebra['arch'], halfDepth: number, backV: number, raiseW: number): Capsule[] {
  const { halfWidth: canalHalfWidth, v: canalV } = canal;
  const { thick: archThick, height: archHeight, w: archW } = arch;
  const thoracic = isThoracic(level);
  const lumbar = isLumbar(level);
  const tn = thoracicNumber(level);
  const processes: Capsule[] = [];
  // Spinous process: long and steep in the thorax, horizontal and tall in the lumbar spine.
  if (thoracic && tn <= 10) processes.push({ a: [0, backV, archW], b: [0, backV + 26, archW - 20], r: 3.5 });
  else if (thoracic) processes.push({ a: [0, backV, archW], b: [0, backV + 28, archW - 10], r: 4 });
  else if (lumbar) {
    processes.push({ a: [0, backV, archW + 2], b: [0, backV + 27, archW], r: 4 });
    processes.push({ a: [0, backV, archW - 5], b: [0, backV + 25, archW - 7], r: 4 });
  } else processes.push({ a: [0, backV, archW], b: [0, backV + 32, archW - 8], r: 4 });
  // Transverse processes: posterolateral in the thorax (they carry the rib tubercle), lateral in the lumbar.
  const tpLen = thoracic ? (tn <= 10 ? 24 : tn === 11 ? 16 : 10) : lumbar ? [20, 25, 30, 27, 24][Number(level.slice(1)) - 1] : 18;
  const tpR = level === 'L5' ? 5 : thoracic ? 4 : 3.5;
  for (const s of [-1, 1]) {
    // Pedicle: from the arch's side to the body's posterolateral corner.
    processes.push({ a: [s * (canalHalfWidth + archThick / 2), canalV, archW + 1 + raiseW], b: [s * (canalHalfWidth + archThick / 2) * 0.95, halfDepth * 0.85, archW + 1 + raiseW], r: archThick / 2 + 0.5 });
    const root: Vec3 = [s * (canalHalfWidth + archThick - 1), canalV - 1, archW + 2 + raiseW];
    const tip: Vec3 = thoracic ? [s * (canalHalfWidth + tpLen), canalV + 10, archW + 2 + raiseW] : [s * (canalHalfWidth + tpLen), canalV - 3, archW + 1 + raiseW];
    processes.push({ a: root, b: tip, r: tpR });
    // Articular processes (facets): vertical pillars that meet the neighbours' arches.
    processes.push({ a: [s * (canalHalfWidth + archThick - 2), canalV + 3, archW - archHeight / 2 - 3], b: [s * (canalHalfWidth + archThick - 2), canalV + 3, archW + archHeight / 2 + 3], r: 3.5 });
  }
  return processes;
}

/** Sacral alae and the posterior sacral crest; iliac wings are added as separate capsules elsewhere. */
function sacralProcesses(halfWidth: number, backV: number): Capsule[] {
  const processes: Capsule[] = [];
  for (const s of [-1, 1]) {
    processes.push({ a: [s * halfWidth * 0.7, 4, 0], b: [s * (halfWidth + 35), 14, -4], r: 11 });
    processes.push({ a: [s * (halfWidth + 35), 14, -4], b: [s * (halfWidth + 55), 30, 10], r: 8 });
  }
  processes.push({ a: [0, backV, 0], b: [0, backV + 12, -10], r: 4 });
  return processes;
}

/** A requested lesion: a sphere overlapping the body centre (so a central ROI sees it); null when none asked. */
function drawLesion(
  rng: Rng,
  req: PersonRequest,
  level: VertebraLevel,
  vbmd: number,
  halfWidth: number,
  halfDepth: number,
  heightPost: number,
): Vertebra['lesion'] {
  const lr = req.lesions.find((l) => l.level === level);
  if (!lr) return null;
  const r = rng.range(0.45, 0.65) * Math.min(halfWidth, halfDepth);
  const c: Vec3 = [rng.range(-0.3, 0.3) * halfWidth, rng.range(-0.35, 0.1) * halfDepth, rng.range(-0.15, 0.15) * heightPost];
  return lr.kind === 'blastic'
    ? { kind: 'blastic', c, r, vbmdEquivalent: vbmd + rng.range(250, 550), softTissue: false }
    : { kind: 'lytic', c, r, vbmdEquivalent: 0, softTissue: true };
}

/** Trabecular texture: four plane waves of random direction, wavelength 2.5-5 mm, phase and amplitude. */
function drawTexture(rng: Rng): Vertebra['texture'] {
  const texture: Vertebra['texture'] = [];
  for (let t = 0; t < 4; t++) {
    const th = rng.range(0, Math.PI);
    const ph = rng.range(0, 2 * Math.PI);
    const dir: Vec3 = [Math.sin(th) * Math.cos(ph), Math.sin(th) * Math.sin(ph), Math.cos(th)];
    const k = (2 * Math.PI) / rng.range(2.5, 5);
    texture.push({ k: [dir[0] * k, dir[1] * k, dir[2] * k], phase: rng.range(0, 2 * Math.PI), amp: rng.range(3, 7) });
  }
  return texture;
}
