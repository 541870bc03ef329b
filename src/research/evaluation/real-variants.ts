import type { VertebraLevel } from '../../bmd/report.js';
import { patientMmToVoxel, voxelToPatientMm, type LoadedVolume, type Vec3, type Volume } from '../../imaging/volume.js';
import { VbmdError } from '../../util/errors.js';
import { brightenAorta } from './aorta-contrast.js';
import type { ReferenceLevel, SpineReference } from './real-reference.js';
import { CONFIDENT, type StrictExpectation } from './real-score.js';
import {
  addGaussianNoise,
  axisRotation,
  clipHu,
  cropMm,
  movePatient,
  moveBack,
  moveForward,
  multiply,
  thickenSlices,
  voxelAxes,
  type Mat3,
  type PatientMotion,
} from './volume-edits.js';

/**
 * Variants of a real CT whose reference levels carry over by coordinates: what a scan of the same patient would
 * look like with another field of view, slice thickness, noise, position, contrast or value range. A variant is a
 * list of steps applied to the original; only a patient motion changes coordinates, and it is carried along.
 */
export type CaseName = 'philips-chest-ct' | 'totalseg-example';
export type Anchor = 'first-rib' | 'last-rib' | 'sacrum';

/** What a step may know and say besides the volume it edits. */
export interface StepContext {
  reference: SpineReference;
  /** The reference body centres in the frame of the volume being edited (for steps that look beside the spine). */
  spineMm: Vec3[];
  /** A step that moves the patient reports the motion here (original -> moved coordinates). */
  moved(m: PatientMotion): void;
  /** What the step found or did, for the report. */
  note(text: string): void;
}

export interface VariantStep {
  label: string;
  apply(v: Volume, ctx: StepContext): Volume;
}

export interface RealVariant {
  name: string;
  caseName: CaseName;
  description: string;
  steps: VariantStep[];
  /** The full-quality original (and a variant as easy to read): held to the acceptance for the scan that
   * test/bmd/real-variants.test.ts asserts, beyond the variant rules. */
  strict?: StrictExpectation;
}

/** A variant's volume with the reference carried over. */
export interface VariantView {
  variant: RealVariant;
  loaded: LoadedVolume;
  /** Variant patient coordinates (LPS mm) to the original's, and back. */
  toOriginalMm(p: Vec3): Vec3;
  fromOriginalMm(p: Vec3): Vec3;
  /** Reference bodies the engine must report that lie wholly inside the variant, cranial first. */
  covered: VertebraLevel[];
  /** Reference levels with some part inside the variant. */
  present: VertebraLevel[];
  /** Naming anchors a reader would have in view. */
  anchors: Anchor[];
  /** What the steps found or did (e.g. how many aorta slices were raised). */
  notes: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Steps.

/**
 * Keep the slices from the top of `from` to the bottom of `to` (null: to the scan's end), each body's extent taken
 * with the reference's slack: a slice is kept when it reaches into that range, so those bodies are wholly inside
 * and their outer neighbours show at most their slack margin. `aboveFromMm` moves the top edge up that far, into
 * the level above `from` (a scan that starts in its lower endplate).
 */
export function zCropStep(from: VertebraLevel | null, to: VertebraLevel | null, aboveFromMm = 0): VariantStep {
  return {
    label: `z ${aboveFromMm > 0 ? `${aboveFromMm} mm above ` : ''}${from ?? 'top'}-${to ?? 'bottom'}`,
    apply(v, { reference: ref }) {
      const zAxis = voxelAxes(v).findIndex((a) => a.axis === 2);
      if (zAxis < 0) throw new VbmdError('unsupported', 'A z crop needs a voxel axis along the patient\'s long axis.');
      // Half a slice less a hair: the kept slices' outer edges reach the range, and no slice merely touches it.
      const reach = v.spacingMm[zAxis] / 2 - 0.01;
      const top = from === null ? undefined : zRange(levelOf(ref, from))[1] + reach + aboveFromMm;
      const bottom = to === null ? undefined : zRange(levelOf(ref, to))[0] - reach;
      return cropMm(v, { minMm: [undefined, undefined, bottom], maxMm: [undefined, undefined, top] });
    },
  };
}

/** A z crop whose top edge runs through the middle of a body: the scan starts inside it (a mid-chest field). */
export function zCropThroughStep(level: VertebraLevel): VariantStep {
  return {
    label: `z top through ${level}`,
    apply(v, { reference: ref }) {
      const [lo, hi] = zRange(levelOf(ref, level));
      return cropMm(v, { maxMm: [undefined, undefined, (lo + hi) / 2] });
    },
  };
}

const zRange = (l: ReferenceLevel): [number, number] => [Math.min(...l.hullMm.map((p) => p[2])), Math.max(...l.hullMm.map((p) => p[2]))];

function levelOf(ref: SpineReference, level: VertebraLevel): ReferenceLevel {
  const l = ref.levels.find((r) => r.level === level);
  if (!l) throw new VbmdError('bad-input', `${ref.caseName} has no reference level ${level}.`);
  return l;
}

/** A square in-plane field of view of sizeMm centred at (x, y) LPS mm. */
export function fovStep(label: string, sizeMm: number, centre: (v: Volume, spineMm: Vec3[]) => [number, number]): VariantStep {
  return {
    label,
    apply(v, { spineMm }) {
      const [cx, cy] = centre(v, spineMm);
      const h = sizeMm / 2;
      return cropMm(v, { minMm: [cx - h, cy - h, undefined], maxMm: [cx + h, cy + h, undefined] });
    },
  };
}

/** In-plane centre of the voxel grid. */
export function imageCentre(v: Volume): [number, number] {
  const c = voxelToPatientMm(v, (v.dims[0] - 1) / 2, (v.dims[1] - 1) / 2, 0);
  return [c[0], c[1]];
}

function meanSpine(spineMm: Vec3[]): [number, number] {
  return [spineMm.reduce((a, p) => a + p[0], 0) / spineMm.length, spineMm.reduce((a, p) => a + p[1], 0) / spineMm.length];
}

/** A field of view centred dxMm to the patient's left (negative: right) and dyMm behind (negative: in front of) the spine. */
function besideSpine(dxMm: number, dyMm: number): (v: Volume, spineMm: Vec3[]) => [number, number] {
  return (_v, spineMm) => {
    const [x, y] = meanSpine(spineMm);
    return [x + dxMm, y + dyMm];
  };
}

/**
 * A field of view on the heart, as a cardiac reconstruction has it: sizeMm square, 30 mm left of the spine, its
 * posterior edge `behindMm` behind the deepest vertebral body centre. Every body stays whole, but the kyphosis
 * puts the mid-thoracic canal and posterior ribs beyond that edge while the upper levels' stay in view.
 */
function onHeart(sizeMm: number, behindMm: number): (v: Volume, spineMm: Vec3[]) => [number, number] {
  return (_v, spineMm) => {
    const back = Math.max(...spineMm.map((p) => p[1])) + behindMm;
    return [meanSpine(spineMm)[0] + 30, back - sizeMm / 2];
  };
}

/**
 * A field of view centred anterior-left of the spine, as one centred on the heart or the abdomen's organs: its
 * posterior edge 75 mm behind the body centres (the arches stay in view) and its right edge 60 mm right of them
 * (the transverse processes and rib heads stay in view).
 */
function offCentre(sizeMm: number): (v: Volume, spineMm: Vec3[]) => [number, number] {
  return (_v, spineMm) => {
    const right = Math.min(...spineMm.map((p) => p[0])) - 60;
    const back = Math.max(...spineMm.map((p) => p[1])) + 75;
    return [right + sizeMm / 2, back - sizeMm / 2];
  };
}

/**
 * Patient rotated by `rotation` about the centre of the volume's grid; slices are kept where the cross-section
 * within 100 mm of the centre (the trunk around the spine) comes from inside the scan.
 */
export function motionStep(label: string, rotation: Mat3): VariantStep {
  return {
    label,
    apply(v, ctx) {
      const centreMm = voxelToPatientMm(v, (v.dims[0] - 1) / 2, (v.dims[1] - 1) / 2, (v.dims[2] - 1) / 2);
      const m: PatientMotion = { rotation, centreMm };
      ctx.moved(m);
      return movePatient(v, m, 100);
    },
  };
}

/** Patient tilted: rotated 5 deg about the body's long (S) axis and 6 deg about the left-right axis. */
export const tiltStep = motionStep('tilted 5 deg (S axis) + 6 deg (L-R axis)', multiply(axisRotation(2, 5), axisRotation(0, 6)));

export const thickStep = (mm: number): VariantStep => ({ label: `${mm} mm slices`, apply: (v) => thickenSlices(v, mm) });
export const noiseStep = (sigmaHu: number, seed: number): VariantStep => ({ label: `noise SD ${sigmaHu} HU`, apply: (v) => addGaussianNoise(v, sigmaHu, seed) });
export const clipStep = (maxHu: number): VariantStep => ({ label: `clipped at ${maxHu} HU`, apply: (v) => clipHu(v, maxHu) });
export const contrastStep: VariantStep = {
  label: 'aorta +250 HU',
  apply(v, { spineMm, note }) {
    const r = brightenAorta(v, spineMm);
    note(`aorta raised on ${r.slicesRaised} of ${v.dims[2]} slices (median lumen radius ${r.medianRadiusMm?.toFixed(1) ?? '-'} mm)`);
    return r.volume;
  },
};

// ---------------------------------------------------------------------------------------------------------
// The catalogue.

/** A variant of the case at hand: its name is the case's short name and `suffix`. */
type MakeVariant = (suffix: string, description: string, steps: VariantStep[]) => RealVariant;

/** Every variant of a case, the original first. */
export function variantsOf(caseName: CaseName): RealVariant[] {
  const v: MakeVariant = (suffix, description, steps) => ({
    name: `${caseName === 'philips-chest-ct' ? 'philips' : 'totalseg'}/${suffix}`,
    caseName,
    description,
    steps,
  });
  const onSpine = (_vol: Volume, spineMm: Vec3[]): [number, number] => meanSpine(spineMm);
  const common = (seed: number): RealVariant[] => [
    v('fov-180-centre', 'small 180 mm field of view centred on the image centre', [fovStep('FOV 180 mm, image centre', 180, imageCentre)]),
    v('fov-200-spine', '200 mm field of view centred on the spine', [fovStep('FOV 200 mm, spine centre', 200, onSpine)]),
    v('fov-200-offcentre', '200 mm field of view anterior-left of the spine, which lies near its posterior-right corner', [fovStep('FOV 200 mm, off-centre', 200, offCentre(200))]),
    v('noise-25', 'added Gaussian noise, SD 25 HU', [noiseStep(25, seed + 25)]),
    v('noise-50', 'added Gaussian noise, SD 50 HU', [noiseStep(50, seed + 50)]),
    v('tilted', 'patient rotated 5 deg about the long axis and tilted 6 deg about the left-right axis (resampled)', [tiltStep]),
    v('contrast-aorta', 'aorta brightened by 250 HU as by IV contrast', [contrastStep]),
    v('clip-1023', 'values clipped at 1023 HU', [clipStep(1023)]),
    v('clip-3071', 'values clipped at 3071 HU', [clipStep(3071)]),
    v('fov-180-centre+contrast', 'small 180 mm centred field of view with the aorta brightened', [contrastStep, fovStep('FOV 180 mm, image centre', 180, imageCentre)]),
  ];
  return caseName === 'philips-chest-ct' ? philipsVariants(v, common(1300)) : totalsegVariants(v, common(2300));
}

/** The Philips chest CT's acceptance: every covered body (C7-T11) inside its reference body, named right at >= 0.8. */
const PHILIPS_ACCEPTANCE: StrictExpectation = { minConfidence: CONFIDENT, summaryBasis: 'thoracic-extrapolated' };
/** The TotalSegmentator example's, as test/bmd/real-ct.test.ts holds it: each body >= 6 mm inside its own, named right at >= 0.85. */
const TOTALSEG_ACCEPTANCE: StrictExpectation = { minConfidence: 0.85, minDepthMm: 6, everyReportedRight: true, summaryBasis: 'lumbar' };

/** The Philips chest CT's variants: `common` (field of view, noise, tilt, contrast, clipping) among its own. */
function philipsVariants(v: MakeVariant, common: RealVariant[]): RealVariant[] {
  return [
    // Held to PHILIPS_ACCEPTANCE in test/bmd/real-variants.test.ts.
    { ...v('original', 'the scan as it is (2 mm, C7-T11 fully covered)', []), strict: PHILIPS_ACCEPTANCE },
    v('z-C7-T6', 'chest top only: scan top to the bottom of T6', [zCropStep(null, 'T6')]),
    v('z-T4-T11', 'mid and lower chest: top of T4 to the bottom of T11 (no first rib, no last rib)', [zCropStep('T4', 'T11')]),
    v('z-T8-T12', 'lower chest: top of T8 to the scan bottom (the 12th rib is below the scan)', [zCropStep('T8', null)]),
    v('z-T2-T7', 'a scan that starts 5 mm above T2, in T1\'s lower endplate, and ends below T7: T2\'s ribs were missed there, but it has lung beside it, so it must not read as a C7 above a first rib', [zCropStep('T2', 'T7', 5)]),
    v('z-through-T5', 'a scan that starts inside T5 (the cut T5 looks rib-less, like a C7 above a first rib)', [zCropThroughStep('T5')]),
    v('slices-3mm', '3 mm slices averaged from 2 mm', [thickStep(3)]),
    v('slices-5mm', '5 mm slices averaged from 2 mm', [thickStep(5)]),
    ...common,
    v('fov-heart-30', '200 mm field of view on the heart, its posterior edge 30 mm behind the deepest body centre (mid-thoracic canal and posterior ribs cut off)', [
      fovStep('FOV 200 mm on the heart', 200, onHeart(200, 30)),
    ]),
    v('fov-heart-20', '200 mm field of view on the heart, its posterior edge 20 mm behind the deepest body centre', [fovStep('FOV 200 mm on the heart', 200, onHeart(200, 20))]),
    v('fov-200-right', '200 mm field of view 40 mm right of and 30 mm in front of the spine (the left rib band cut)', [
      fovStep('FOV 200 mm, right', 200, besideSpine(-40, -30)),
    ]),
    v('fov-200-edge', '200 mm field of view 70 mm right of and 30 mm in front of the spine (the spine by its left edge, the scapula mid-field)', [
      fovStep('FOV 200 mm, spine at the edge', 200, besideSpine(-70, -30)),
    ]),
    v('slices-5mm+noise-25', '5 mm slices with added noise SD 25 HU', [thickStep(5), noiseStep(25, 1399)]),
    // Held to the original's acceptance: the T4-T5 disc is found 7 mm from its place here, which moves no count.
    {
      ...v('rotated-5', 'patient rotated 5 deg to the right about the long axis (resampled): one disc found off its place, T5 long and T4 short', [
        motionStep('rotated 5 deg (S axis)', axisRotation(2, -5)),
      ]),
      strict: PHILIPS_ACCEPTANCE,
    },
    // Held to it as well: T11's left rib crosses the rib band in the scan's last 8 mm, cut off by its edge.
    {
      ...v('tilted-3', 'patient tilted 3 deg about the left-right axis (resampled): the lowest rib is cut off by the scan\'s bottom edge', [
        motionStep('tilted 3 deg (L-R axis)', axisRotation(0, -3)),
      ]),
      strict: PHILIPS_ACCEPTANCE,
    },
  ];
}

/** The TotalSegmentator example's variants: `common` among its own. */
function totalsegVariants(v: MakeVariant, common: RealVariant[]): RealVariant[] {
  return [
    // Held to TOTALSEG_ACCEPTANCE (T12-L5), in test/bmd/real-variants.test.ts.
    {
      ...v('original', 'the scan as it is (3 mm, T11 partial to S1)', []),
      strict: TOTALSEG_ACCEPTANCE,
    },
    v('z-T12-L3', 'upper abdomen: scan top to the bottom of L3', [zCropStep(null, 'L3')]),
    v('z-L2-S1', 'lower abdomen and pelvis: top of L2 to the scan bottom', [zCropStep('L2', null)]),
    v('z-L5-S1', 'a pelvic scan from 5 mm above L5 to the scan bottom: the hips, wider than the field, hold canal-like joint spaces either side, over more slices than the spine above them', [
      zCropStep('L5', null, 5),
    ]),
    v('slices-5mm', '5 mm slices averaged from 3 mm', [thickStep(5)]),
    ...common,
    v('slices-5mm+noise-25', '5 mm slices with added noise SD 25 HU', [thickStep(5), noiseStep(25, 2399)]),
    // Held to the original's acceptance: both iliac wings trace as ribs beside the sacrum here, and T12's pair
    // must still go to T12.
    {
      ...v('rotated-3', 'patient rotated 3 deg to the right about the long axis (resampled): the iliac wings trace as ribs beside the sacrum', [
        motionStep('rotated 3 deg (S axis)', axisRotation(2, -3)),
      ]),
      strict: TOTALSEG_ACCEPTANCE,
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------
// Applying a variant and carrying the reference over.

export function applyVariant(variant: RealVariant, original: LoadedVolume, ref: SpineReference): VariantView {
  const motions: PatientMotion[] = [];
  const fromOriginalMm = (p: Vec3): Vec3 => motions.reduce((q, m) => moveForward(m, q), p);
  const toOriginalMm = (p: Vec3): Vec3 => motions.reduceRight((q, m) => moveBack(m, q), p);
  const notes: string[] = [];
  let vol = original.volume;
  for (const step of variant.steps) {
    const spineMm = ref.levels.filter((l) => l.bodyCentre).map((l) => fromOriginalMm(l.centerMm));
    vol = step.apply(vol, { reference: ref, spineMm, moved: (m) => motions.push(m), note: (t) => notes.push(t) });
  }
  const inside = (p: Vec3): boolean => patientMmToVoxel(vol, fromOriginalMm(p)).every((c, a) => c >= -0.5 - 1e-6 && c <= vol.dims[a] - 0.5 + 1e-6);
  const covered = ref.levels.filter((l) => l.full && l.mustReport && l.hullMm.every(inside)).map((l) => l.level);
  const present = ref.levels.filter((l) => inside(l.centerMm) || l.hullMm.some(inside)).map((l) => l.level);
  const fully = (l: VertebraLevel): boolean => ref.levels.some((r) => r.level === l && r.full && r.hullMm.every(inside));
  const has = (l: VertebraLevel): boolean => present.includes(l);
  const anchors: Anchor[] = [];
  // A reader names T1 by its rib only when the vertebra above (without ribs) is in view too; T12 likewise with
  // L1 below it; L5 by the sacrum under it.
  if (fully('T1') && has('C7')) anchors.push('first-rib');
  if (has('T12') && fully('L1')) anchors.push('last-rib');
  if (fully('L5') && has('S1')) anchors.push('sacrum');
  const suffix = variant.steps.length ? ` [${variant.name}]` : '';
  return {
    variant,
    loaded: { volume: vol, meta: { ...original.meta, source: original.meta.source + suffix } },
    toOriginalMm,
    fromOriginalMm,
    covered,
    present,
    anchors,
    notes,
  };
}
