import type { VertebraLevel } from '../../../bmd/report.js';
import { MODELLED_LEVELS } from '../anatomy.js';
import { Rng, subSeed } from '../random.js';
import { HARD_FEATURES, featureStream, type ContrastPhase, type DiscDegeneration, type FractureShape, type HardFeature, type HardFracture, type HardRequest, type HardSpec } from './spec.js';

/** Genant et al., J Bone Miner Res 1993;8:1137-48: grade 1 20-25 %, grade 2 25-40 %, grade 3 > 40 % height loss. */
function genant(rng: Rng): { grade: 1 | 2 | 3; loss: number } {
  const u = rng.uniform();
  if (u < 0.4) return { grade: 1, loss: rng.range(0.2, 0.25) };
  if (u < 0.8) return { grade: 2, loss: rng.range(0.25, 0.4) };
  return { grade: 3, loss: rng.range(0.4, 0.6) };
}

/** Distinct levels drawn from `pool` (without replacement). */
function drawLevels(rng: Rng, pool: VertebraLevel[], n: number): VertebraLevel[] {
  const left = [...pool];
  const out: VertebraLevel[] = [];
  while (out.length < n && left.length > 0) out.push(left.splice(Math.floor(rng.uniform() * left.length), 1)[0]);
  return out;
}

/**
 * Disc degeneration rises with age and is most frequent at L4-S1 and the mid/lower thoracic spine; the
 * vacuum phenomenon (intradiscal gas) is seen on CT in ~20-50 % of older adults, mostly lumbar.
 */
function drawDegeneration(rng: Rng, inView: VertebraLevel[]): DiscDegeneration[] {
  const out: DiscDegeneration[] = [];
  const severity = rng.range(0.3, 1);
  for (const upper of MODELLED_LEVELS.slice(0, -1)) {
    if (!inView.includes(upper)) continue;
    const lumbarLow = upper === 'L4' || upper === 'L5';
    const p = severity * (lumbarLow ? 0.8 : upper.startsWith('L') ? 0.45 : 0.3);
    const u = rng.uniform();
    const params = [rng.range(0.25, 0.7), rng.uniform(), rng.uniform(), rng.range(2, 8), rng.uniform(), rng.range(2, 5)];
    if (u >= p) continue;
    out.push({
      upper,
      heightFactor: params[0],
      vacuum: params[1] < (upper.startsWith('L') ? 0.45 : 0.15),
      calcified: params[2] < 0.15,
      osteophyteMm: params[3],
      bridging: params[4] < (upper.startsWith('T') ? 0.15 : 0.05),
      sclerosisMm: params[5],
    });
  }
  return out;
}

function drawContrast(rng: Rng): { phase: ContrastPhase; aortaIodineMgMl: number } {
  const u = rng.uniform();
  // Aortic iodine: late arterial ~290-360 HU at 120 kVp (~11-14 mg I/mL), portal venous ~150-200 HU (~5-7), later less.
  if (u < 0.2) return { phase: 'arterial', aortaIodineMgMl: rng.range(10, 15) };
  if (u < 0.8) return { phase: 'portal-venous', aortaIodineMgMl: rng.range(4.5, 7.5) };
  if (u < 0.9) return { phase: 'nephrographic', aortaIodineMgMl: rng.range(3.5, 6) };
  return { phase: 'excretory', aortaIodineMgMl: rng.range(2, 4) };
}

/** Levels that move (fractures, cement, screws and lesions go there): not the sacrum nor the cervical spine. */
function mobile(l: VertebraLevel): boolean {
  return l !== 'S1' && l !== 'C6' && l !== 'C7';
}

/**
 * Everything the hard preset changes in the person, drawn per feature. `inView` = levels the scan shows
 * (fractures, cement, screws and lesions go where they can be seen; whole-spine features are drawn anyway).
 * Each feature draws from its own stream, whether it is on or not, so forcing one leaves the others as they were.
 */
export function drawHardSpec(seed: number, req: HardRequest | undefined, inView: VertebraLevel[]): HardSpec {
  const on = new Set<HardFeature>();
  const stream = (f: HardFeature): Rng => {
    const s = featureStream(seed, f, req);
    if (s.on) on.add(f);
    return s.rng;
  };
  const inner = inView.length > 2 ? inView.slice(1, -1) : inView;

  const cv = stream('curvature');
  const curvature = drawCurvature(cv, on.has('curvature'));
  const sc = stream('scoliosis');
  const scoliosis = drawScoliosis(sc);
  if (on.has('scoliosis')) Object.assign(curvature, scoliosis);

  const rc = stream('rib-count');
  const ribPairs = on.has('rib-count') ? (rc.chance(0.5) ? 11 : 13) : 12;
  const cg = stream('cartilage');
  // Costal cartilage calcifies in patches with age (Ontell et al., RadioGraphics 1997;17:571-7); share of segments.
  const cartilageCalcifiedShare = cg.range(0, 0.5);
  const gd = stream('girdle');
  // Arms up for most chest/abdomen CT; down in trauma, frail or ventilated patients.
  const drawnArms = gd.chance(0.35) ? 'down' : 'up';
  const arms = req?.arms ?? drawnArms;
  stream('sternum');

  const dg = stream('degeneration');
  const degeneration = on.has('degeneration') ? drawDegeneration(dg, inView) : [];
  const fr = stream('fractures');
  const fractures = on.has('fractures') ? drawFractures(fr, inner) : [];
  const cm = stream('cement');
  const cement = on.has('cement') ? drawCement(cm, fractures, inner) : [];
  const sw = stream('screws');
  const screws = on.has('screws') ? drawScrews(sw, inView) : null;
  const ls = stream('lesions');
  const lesions = on.has('lesions') ? drawLesions(ls, inView) : [];

  const ct = stream('contrast');
  const contrast = on.has('contrast') ? drawContrast(ct) : null;
  const tv = stream('transitional');
  const transitional = on.has('transitional') ? (tv.chance(0.6) ? 'sacralised-L5' : 'lumbarised-S1') : null;
  const ac = stream('aortic-calcification');
  const aorticPlaques = on.has('aortic-calcification') ? 3 + Math.floor(ac.uniform() * 14) : 0;
  stream('table');
  // 'fov' and 'clip' are drawn with the acquisition (hard/acquisition.ts); listed here when present.
  for (const f of ['fov', 'clip'] as const) if (featureStream(seed, f, req).on) on.add(f);

  return {
    features: HARD_FEATURES.filter((f) => on.has(f)),
    curvature,
    ribPairs,
    cartilageCalcifiedShare,
    transitional,
    arms,
    degeneration,
    fractures,
    cement,
    screws,
    lesions,
    contrast,
    aorticPlaques,
    detailSeed: subSeed(seed, 'hard/detail'),
  };
}

/**
 * Sagittal curvature, drawn (or the fixed adult defaults when the feature is off); no scoliosis.
 * Fon et al., AJR 1980;134:979-83 (T4-T12 kyphosis, rising with age to ~55-65 deg); Legaye et al., Eur Spine J
 * 1998;7:99-103 (sacral slope 41 +- 8 deg, lordosis ~60 deg); T1 slope ~25 +- 7 deg (Knott et al., Spine J 2010).
 */
function drawCurvature(cv: Rng, on: boolean): HardSpec['curvature'] {
  const curvature: HardSpec['curvature'] = {
    kyphosisCobbDeg: cv.clampedNormal(44, 11, 22, 72),
    lordosisCobbDeg: cv.clampedNormal(54, 10, 32, 76),
    sacralSlopeDeg: cv.clampedNormal(40, 7, 26, 55),
    t1SlopeDeg: cv.clampedNormal(25, 6, 12, 40),
    kyphosisApex: cv.range(6.5, 8.5),
    scoliosisCobbDeg: 0,
    scoliosisFrom: 0,
    scoliosisTo: 0,
    scoliosisSide: 1,
  };
  if (!on) Object.assign(curvature, { kyphosisCobbDeg: 30, lordosisCobbDeg: 45, sacralSlopeDeg: 38, t1SlopeDeg: 20, kyphosisApex: 7.5 });
  return curvature;
}

/** A scoliotic curve: Cobb angle, the span around its apex (thoracic numbers) and its side. */
function drawScoliosis(sc: Rng): Pick<HardSpec['curvature'], 'scoliosisCobbDeg' | 'scoliosisFrom' | 'scoliosisTo' | 'scoliosisSide'> {
  const scApex = sc.range(5, 15);
  const scHalf = sc.range(3, 5);
  const scCobb = sc.range(10, 22);
  const scSide = sc.chance(0.6) ? 1 : -1;
  return { scoliosisCobbDeg: scCobb, scoliosisFrom: scApex - scHalf, scoliosisTo: scApex + scHalf, scoliosisSide: scSide };
}

/** One or two compression fractures in the inner mobile levels, each graded (Genant) and shaped. */
function drawFractures(fr: Rng, inner: VertebraLevel[]): HardFracture[] {
  const fractures: HardFracture[] = [];
  const n = fr.chance(0.3) ? 2 : 1;
  for (const level of drawLevels(fr, inner.filter(mobile), n)) {
    const g = genant(fr);
    const su = fr.uniform();
    const shape: FractureShape = su < 0.5 ? 'wedge' : su < 0.8 ? 'biconcave' : 'crush';
    fractures.push({ level, shape, genantGrade: g.grade, heightLossFraction: g.loss });
  }
  return fractures;
}

/** Vertebroplasty goes into fractured (or lytic) bodies; PMMA opacified with barium reads ~1500-3000 HU. */
function drawCement(cm: Rng, fractures: HardFracture[], inner: VertebraLevel[]): HardSpec['cement'] {
  const cement: HardSpec['cement'] = [];
  const pool = fractures.length ? fractures.map((f) => f.level) : inner.filter(mobile);
  for (const level of drawLevels(cm, pool, cm.chance(0.3) ? 2 : 1)) {
    const lu = cm.uniform();
    cement.push({ level, fillFraction: cm.range(0.25, 0.6), hu: cm.range(1500, 3000), leak: lu < 0.15 ? 'disc' : lu < 0.3 ? 'vein' : 'none' });
  }
  return cement;
}

/** Pedicle screws over 2-4 adjacent levels: 4.5-6.5 mm thoracic, 5.5-7.5 mm lumbar; 35-55 mm long; converging 10-25 deg. */
function drawScrews(sw: Rng, inView: VertebraLevel[]): NonNullable<HardSpec['screws']> {
  const pool = inView.filter(mobile);
  const n = Math.min(pool.length, 2 + Math.floor(sw.uniform() * 3));
  const start = Math.floor(sw.uniform() * Math.max(1, pool.length - n + 1));
  const levels = pool.slice(start, start + n);
  const lumbar = levels.some((l) => l.startsWith('L'));
  return { levels, diameterMm: lumbar ? sw.range(5.5, 7.5) : sw.range(4.5, 6.5), lengthMm: lumbar ? sw.range(42, 52) : sw.range(35, 45), convergenceDeg: sw.range(10, 25) };
}

/** One to three metastases in the mobile levels in view, blastic or lytic by a per-study bias. */
function drawLesions(ls: Rng, inView: VertebraLevel[]): HardSpec['lesions'] {
  const lesions: HardSpec['lesions'] = [];
  const n = 1 + Math.floor(ls.uniform() * 3);
  const kindBias = ls.uniform();
  for (const level of drawLevels(ls, inView.filter(mobile), n)) {
    lesions.push({ level, kind: ls.uniform() < kindBias ? 'blastic' : 'lytic', radiusFraction: ls.range(0.3, 0.75), excess: ls.range(200, 700) });
  }
  return lesions;
}
