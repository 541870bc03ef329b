import type { VertebraLevel } from '../../../bmd/report.js';
import { VbmdError } from '../../../util/errors.js';
import { Rng, subSeed } from '../random.js';

/**
 * What the `hard` preset may add to a phantom, each drawn per study from its own random stream
 * (subSeed(seed, 'hard/<feature>')), so switching one feature on or off never changes another, and the default
 * preset (which draws none of them) stays voxel for voxel what it was.
 */
export const HARD_FEATURES = [
  'curvature', // kyphosis/lordosis of real spines: bodies placed along the curve, discs cut obliquely
  'scoliosis', // a mild coronal curve with axial rotation toward its convexity
  'cartilage', // costal cartilage from the ribs to the sternum and costal margin, calcified in patches
  'rib-count', // 11 or 13 rib pairs
  'girdle', // scapulae, clavicles, humeral heads, arms up or down
  'sternum', // manubrium, body, xiphoid
  'degeneration', // thin discs, vacuum phenomenon, disc calcification, osteophytes, endplate sclerosis
  'fractures', // osteoporotic compression fractures (wedge, biconcave, crush), Genant grades 1-3
  'cement', // vertebroplasty cement
  'screws', // pedicle screws and rods (metal beyond the stored range, with streaks)
  'lesions', // blastic and lytic metastases
  'contrast', // iodinated contrast at an arterial, portal-venous, nephrographic or excretory phase
  'transitional', // lumbosacral transitional vertebra: sacralised L5 or lumbarised S1
  'aortic-calcification',
  'table', // the patient table under the back
  'fov', // small (~18 cm) reconstructions centred on the spine or heart, or an off-centre field
  'clip', // values clipped at 1023 HU as some exports do (3071 otherwise)
] as const;
export type HardFeature = (typeof HARD_FEATURES)[number];

/** Share of hard studies that show each feature (when its anatomy is in the scanned range). */
export const HARD_FEATURE_RATE: Record<HardFeature, number> = {
  curvature: 1,
  scoliosis: 0.3,
  cartilage: 1,
  'rib-count': 0.15,
  girdle: 1,
  sternum: 1,
  degeneration: 0.6,
  fractures: 0.3,
  cement: 0.1,
  screws: 0.08,
  lesions: 0.35,
  contrast: 0.65,
  transitional: 0.12,
  'aortic-calcification': 0.5,
  table: 1,
  fov: 0.25,
  clip: 0.15,
};

export interface HardRequest {
  /** Only these features may appear (default: all). */
  only?: HardFeature[];
  /** These appear in every study (their parameters are still drawn). */
  always?: HardFeature[];
  /** Arm position instead of the drawn one. */
  arms?: 'up' | 'down';
}

export type FractureShape = 'wedge' | 'biconcave' | 'crush';
export type ContrastPhase = 'arterial' | 'portal-venous' | 'nephrographic' | 'excretory';
export type Transitional = 'sacralised-L5' | 'lumbarised-S1';
export type RangeKind = 'chest' | 'abdomen' | 'chest-abdomen' | 'thoracolumbar';
export type FovKind = 'full' | 'small-spine' | 'small-heart' | 'off-centre';

export interface DiscDegeneration {
  /** The disc below this level. */
  upper: VertebraLevel;
  /** Disc height as a fraction of normal (0.25-0.7). */
  heightFactor: number;
  /** Gas in the nucleus (vacuum phenomenon). */
  vacuum: boolean;
  calcified: boolean;
  /** Marginal osteophytes: how far they reach beyond the rim, mm (0 = none). */
  osteophyteMm: number;
  /** Anterior osteophytes of both bodies fused across the disc (DISH-like bridge). */
  bridging: boolean;
  /** Subchondral sclerosis under both endplates, mm deep (0 = none). */
  sclerosisMm: number;
}

export interface HardFracture {
  level: VertebraLevel;
  shape: FractureShape;
  genantGrade: 1 | 2 | 3;
  /** Loss of the affected height (anterior for a wedge, middle for biconcave, all for crush) vs the posterior. */
  heightLossFraction: number;
}

export interface HardSpec {
  /** Features this study shows (drawn present), in HARD_FEATURES order. */
  features: HardFeature[];
  curvature: {
    kyphosisCobbDeg: number;
    lordosisCobbDeg: number;
    sacralSlopeDeg: number;
    t1SlopeDeg: number;
    /** Index (C7 = 0 ... S1 = 18) of the kyphosis apex, where the endplates are level. */
    kyphosisApex: number;
    scoliosisCobbDeg: number;
    /** Index range of the scoliotic curve's end vertebrae, and its convex side (+1 left). */
    scoliosisFrom: number;
    scoliosisTo: number;
    scoliosisSide: 1 | -1;
  };
  ribPairs: number;
  /** Share of costal cartilage segments that are calcified. */
  cartilageCalcifiedShare: number;
  transitional: Transitional | null;
  arms: 'up' | 'down';
  degeneration: DiscDegeneration[];
  fractures: HardFracture[];
  cement: { level: VertebraLevel; fillFraction: number; hu: number; leak: 'none' | 'disc' | 'vein' }[];
  screws: { levels: VertebraLevel[]; diameterMm: number; lengthMm: number; convergenceDeg: number } | null;
  lesions: { level: VertebraLevel; kind: 'blastic' | 'lytic'; radiusFraction: number; excess: number }[];
  contrast: { phase: ContrastPhase; aortaIodineMgMl: number } | null;
  aorticPlaques: number;
  /** Rng seeds for the shape details each painter draws (kept apart from the choices above). */
  detailSeed: number;
}

export function checkHardRequest(r: HardRequest | undefined): void {
  if (r?.arms !== undefined && r.arms !== 'up' && r.arms !== 'down') throw new VbmdError('bad-input', `Hard-phantom arms "${String(r.arms)}" must be up or down.`);
  for (const f of [...(r?.only ?? []), ...(r?.always ?? [])]) {
    if (!(HARD_FEATURES as readonly string[]).includes(f)) {
      throw new VbmdError('bad-input', `Hard-phantom feature "${f}" is not one of: ${HARD_FEATURES.join(', ')}.`);
    }
  }
}

/** The stream of one feature: its first draw says whether it is present, the rest are its parameters. */
export function featureStream(seed: number, f: HardFeature, r: HardRequest | undefined): { rng: Rng; on: boolean } {
  const rng = new Rng(subSeed(seed, `hard/${f}`));
  const u = rng.uniform();
  const allowed = !r?.only || r.only.includes(f);
  const forced = r?.always?.includes(f) ?? false;
  return { rng, on: allowed && (forced || u < HARD_FEATURE_RATE[f]) };
}

/** What the hard preset changes in one vertebral body (Vertebra.hard); absent on default phantoms. */
export interface VertebraHard {
  /** Central depression of the superior / inferior endplate, mm (biconcave fracture). */
  concavityTopMm: number;
  concavityBottomMm: number;
  /**
   * Trabecular HU at local (u, v, w) from the default value `tr` and the distances (mm, positive inside) to the
   * superior and inferior endplates: sclerosis, cement, metastases of the hard preset.
   */
  trabecular: ((u: number, v: number, w: number, tr: number, dTop: number, dBot: number) => number) | null;
}
