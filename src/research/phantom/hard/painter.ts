import type { Vec3 } from '../../../imaging/volume.js';
import type { Person, Vertebra } from '../anatomy.js';
import type { SliceExtras } from '../render.js';
import { capsuleSdf, coverage, ellipseSdf } from '../sdf.js';
import type { HardAnatomy } from './anatomy.js';
import type { PhaseHu } from './contrast.js';
import { paintDisc } from './disc.js';
import type { Limb } from './girdle.js';
import { METAL_HU } from './hardware.js';
import type { CementLeak } from './pathology.js';
import type { BoneHu, PaintContext } from './paint.js';
import { cageFactor } from './thorax.js';

/** Hyaline costal cartilage (water-rich matrix): ~80-140 HU; calcified patches several hundred. */
const CARTILAGE_HU = 110;
const CARTILAGE_CALCIFIED_HU = 450;
/** Yellow (fatty) marrow of the humeral shaft. */
const FATTY_MARROW_HU = -60;
/** Carbon-fibre table shells. */
const TABLE_HU = 300;
const AIR_LIKE = -950;
const LUNG_LIKE = -500;

/**
 * Paints the hard preset's anatomy into each slice through the SliceRenderer's hooks (src/research/phantom/render.ts):
 * upper chest wall and shoulders, arms, contrast compartments, aortic plaques, degenerated discs, then the
 * girdle, sternum, cartilage, hardware and table over everything.
 */
export class HardPainter implements SliceExtras {
  readonly spine: Vertebra[];
  private readonly bone: BoneHu;
  private readonly thinBone: BoneHu;
  private readonly shaft: BoneHu;
  private readonly tableY: number;
  private readonly zLungApex: number;

  constructor(
    private readonly ctx: PaintContext,
    private readonly person: Person,
    private readonly a: HardAnatomy,
    private readonly phase: PhaseHu | null,
    private readonly leaks: CementLeak[],
    private readonly table: boolean,
  ) {
    this.spine = a.spine.spine;
    const p = ctx.pal;
    const meanVbmd = this.spine.reduce((s, v) => s + v.vbmd, 0) / this.spine.length;
    const marrow = p.trabIntercept + p.trabSlope * meanVbmd * 0.85;
    this.bone = { cortical: p.cortical * 0.85, marrow, shellMm: 1.3 };
    this.thinBone = { cortical: p.cortical * 0.8, marrow, shellMm: 0.9 };
    this.shaft = { cortical: p.cortical * 0.9, marrow: FATTY_MARROW_HU, shellMm: 4.5 };
    const t1 = this.spine.find((v) => v.level === 'T1')!;
    // Lung apices rise to about the top of T1 (above the first rib's neck), not into the neck.
    this.zLungApex = t1.c[2] + t1.heightPost / 2;
    // The back rests on the table pad along the thorax and upper lumbar spine (the lordosis arches away).
    let back = -Infinity;
    for (const v of this.spine) if (v.level.startsWith('T') || v.level === 'L1' || v.level === 'L2') back = Math.max(back, person.torsoAt(v.c[2]).bPost);
    this.tableY = back + ctx.place.ty + 25;
  }

  disc(z: number, buf: Float32Array, up: Vertebra, lo: Vertebra): void {
    paintDisc(this.ctx, z, buf, up, lo, this.a.discs.get(up), this.bone);
  }

  afterBase(z: number, buf: Float32Array): void {
    this.upperChestWall(z, buf);
    const g = this.a.girdle;
    if (!g) return;
    const m = this.ctx.pal.muscle;
    this.softTissue(z, buf, g.muscles.map((c) => ({ ...c, r: c.r + g.fatMm })), this.ctx.pal.fat, true);
    this.softTissue(z, buf, g.muscles, m, false);
    for (const limb of g.limbs) this.limb(z, buf, limb, g.fatMm);
  }

  afterOrgans(z: number, buf: Float32Array): void {
    this.trachea(z, buf);
    const ph = this.phase;
    if (!ph) return;
    const ctx = this.ctx;
    const h = this.person.heart;
    if (h && z > this.person.diaphragmZ) {
      const c = h.c;
      const r = h.r;
      ctx.ellipsoid(z, buf, [c[0] + 15, c[1] - 5, c[2] - 10], [r[0] * 0.42, r[1] * 0.42, r[2] * 0.5], ph.heartLeft);
      ctx.ellipsoid(z, buf, [c[0] + 5, c[1] + 22, c[2] + 25], [r[0] * 0.32, r[1] * 0.28, r[2] * 0.3], ph.heartLeft);
      ctx.ellipsoid(z, buf, [c[0] - 12, c[1] - 20, c[2] - 5], [r[0] * 0.42, r[1] * 0.3, r[2] * 0.42], ph.heartRight);
      ctx.ellipsoid(z, buf, [c[0] - 32, c[1] + 4, c[2] + 10], [r[0] * 0.3, r[1] * 0.33, r[2] * 0.38], ph.heartRight);
    }
    for (const k of this.person.kidneys) {
      if (ph.kidneyMedulla !== ph.kidneyCortex) ctx.ellipsoid(z, buf, k.c, [k.r[0] * 0.55, k.r[1] * 0.55, k.r[2] * 0.7], ph.kidneyMedulla);
      if (ph.urine !== null) {
        const s = Math.sign(k.c[0] - this.person.spineAt(k.c[2]).x);
        const pelvis: Vec3 = [k.c[0] - s * k.r[0] * 0.45, k.c[1] - 4, k.c[2] - 5];
        ctx.ellipsoid(z, buf, pelvis, [9, 7, 16], ph.urine);
        const sp = this.person.spineAt(pelvis[2] - 150);
        ctx.capsules(z, buf, [{ a: pelvis, b: [sp.x + s * (sp.halfWidth + 14), sp.y - 6, pelvis[2] - 150], r: 2.5 }], ph.urine);
      }
    }
    if (ph.svc !== null && z > this.person.diaphragmZ + 60) {
      const sp = this.person.spineAt(z);
      const y = sp.y - sp.halfDepth - 48;
      ctx.capsules(z, buf, [{ a: [sp.x - 30, y, this.zLungApex], b: [sp.x - 28, y + 5, this.person.diaphragmZ + 80], r: 9 }], ph.svc);
    }
  }

  afterVessels(z: number, buf: Float32Array): void {
    const arch = this.a.aorticArch;
    this.ctx.capsules(z, buf, arch.map((c) => ({ ...c, r: c.r + 4 })), this.ctx.pal.mediastinum);
    this.ctx.capsules(z, buf, arch, this.ctx.pal.aorta);
    const live = this.a.plaques.filter((p) => z >= p.z0 && z <= p.z1);
    if (live.length === 0) return;
    const ao = this.person.aortaAt(z);
    if (ao.iliac || ao.r <= 0) return;
    for (const p of live) {
      const rMid = ao.r + p.thickMm / 2;
      this.ctx.fill(buf, ao.x - ao.r - 4, ao.x + ao.r + 4, ao.y - ao.r - 4, ao.y + ao.r + 4, (bx, by) => {
        const dx = bx - ao.x;
        const dy = by - ao.y;
        const dAng = Math.abs(((Math.atan2(dy, dx) - p.angle + 3 * Math.PI) % (2 * Math.PI)) - Math.PI);
        return Math.max(Math.abs(Math.hypot(dx, dy) - rMid) - p.thickMm / 2, (dAng - p.halfArc) * rMid);
      }, () => p.hu);
    }
  }

  last(z: number, buf: Float32Array): void {
    const ctx = this.ctx;
    const st = this.a.sternum;
    const s = st?.at(z);
    if (s) ctx.fill(buf, -s.hw - 2, s.hw + 2, s.y - s.ht - 2, s.y + s.ht + 2, (bx, by) => ellipseSdf(bx, by - s.y, s.hw, s.ht), (d) => ctx.boneAt(d, this.bone));
    ctx.capsules(z, buf, this.a.cage.cartilage, CARTILAGE_HU);
    ctx.capsules(z, buf, this.a.cage.calcified, CARTILAGE_CALCIFIED_HU);
    const g = this.a.girdle;
    if (g) {
      ctx.capsules(z, buf, g.clavicles, this.bone);
      ctx.capsules(z, buf, g.scapulaPlates, this.thinBone);
      ctx.capsules(z, buf, g.scapulaBars, this.bone);
      for (const h of g.humeralHeads) {
        const rr = h.r * h.r - (z - h.c[2]) ** 2;
        if (rr <= 0) continue;
        const r = Math.sqrt(rr);
        ctx.fill(buf, h.c[0] - r - 1, h.c[0] + r + 1, h.c[1] - r - 1, h.c[1] + r + 1, (bx, by) => Math.hypot(bx - h.c[0], by - h.c[1]) - r, (d) => ctx.boneAt(d, this.bone));
      }
      for (const limb of g.limbs) this.limbBones(z, buf, limb);
    }
    ctx.capsules(z, buf, this.a.hardware.metal, METAL_HU);
    for (const l of this.leaks) ctx.capsules(z, buf, l.caps, l.hu);
    if (this.table) this.tableShells(buf);
  }

  /** The upper rib cage is narrower than the chest wall: muscle (not lung) fills between them, and no lung above the apex. */
  private upperChestWall(z: number, buf: Float32Array): void {
    const sp = this.person.spineAt(z);
    const n = sp.level; // 0 = C7, 1 = T1 ...
    let f = n >= 4 ? 1 : n < 1 ? cageFactor(1) : cageFactor(Math.floor(n)) + (cageFactor(Math.ceil(n)) - cageFactor(Math.floor(n))) * (n % 1);
    if (z > this.zLungApex) f = Math.max(0, cageFactor(1) - (z - this.zLungApex) / 20);
    if (f >= 0.995 || z < this.person.diaphragmZ) return;
    const t = this.person.torsoAt(z);
    const aIn = t.a - t.skin - t.fat * 0.9 - t.muscleWall;
    const bAntIn = t.bAnt - t.skin - t.fat - t.muscleWall;
    const bPostIn = t.bPost - t.skin - t.fat * 0.6 - t.muscleWall;
    const m = this.ctx.pal.muscle;
    const px = this.ctx.px;
    this.ctx.box(-aIn, aIn, -bAntIn, bPostIn, (idx, bx, by) => {
      const bIn = by > 0 ? bPostIn : bAntIn;
      const inner = ellipseSdf(bx, by, aIn, bIn);
      if (inner > px) return;
      // Above the lung apices (f = 0) the whole interior is soft tissue.
      const cage = f <= 0 ? Infinity : ellipseSdf(bx - sp.x, by, aIn * f, bIn * (0.85 + 0.15 * f));
      const c = coverage(Math.max(inner, -cage), px);
      if (c > 0 && buf[idx] < LUNG_LIKE && buf[idx] > AIR_LIKE) buf[idx] += c * (m - buf[idx]);
    });
  }

  private trachea(z: number, buf: Float32Array): void {
    const t5 = this.spine.find((v) => v.level === 'T5')!;
    if (z < t5.c[2]) return;
    const sp = this.person.spineAt(z);
    const c = [sp.x - 3, sp.y - sp.halfDepth - 22] as const;
    this.ctx.fill(buf, c[0] - 12, c[0] + 12, c[1] - 12, c[1] + 12, (bx, by) => Math.hypot(bx - c[0], by - c[1]) - 10, (d) => (d < -2 ? this.ctx.pal.air : this.ctx.pal.muscle));
  }

  /** Paints tubes as soft tissue: fat only over air (it pads the outline), muscle over anything but lung. */
  private softTissue(z: number, buf: Float32Array, caps: { a: Vec3; b: Vec3; r: number }[], hu: number, overAirOnly: boolean): void {
    const px = this.ctx.px;
    for (const c of caps) {
      if (z < Math.min(c.a[2], c.b[2]) - c.r || z > Math.max(c.a[2], c.b[2]) + c.r) continue;
      const x0 = Math.min(c.a[0], c.b[0]) - c.r;
      const x1 = Math.max(c.a[0], c.b[0]) + c.r;
      const y0 = Math.min(c.a[1], c.b[1]) - c.r;
      const y1 = Math.max(c.a[1], c.b[1]) + c.r;
      this.ctx.box(x0, x1, y0, y1, (idx, bx, by) => {
        const cv = coverage(capsuleSdf(bx, by, z, c.a, c.b, c.r), px);
        if (cv <= 0) return;
        const cur = buf[idx];
        if (overAirOnly ? cur < AIR_LIKE : !(cur < LUNG_LIKE && cur > AIR_LIKE)) buf[idx] += cv * (hu - cur);
      });
    }
  }

  /** Centre of a limb at z and which segment (0 upper arm, 1 forearm), kept clear of the trunk; null if not at z. */
  private limbAt(z: number, l: Limb): { x: number; y: number; seg: 0 | 1; r: number } | null {
    const segs: [Vec3, Vec3, number][] = [
      [l.shoulder, l.elbow, l.upperArmR],
      [l.elbow, l.wrist, l.forearmR],
    ];
    for (let i = 0; i < 2; i++) {
      const [a, b, r] = segs[i];
      if (z < Math.min(a[2], b[2]) || z > Math.max(a[2], b[2])) continue;
      const t = (z - a[2]) / (b[2] - a[2]);
      let x = a[0] + (b[0] - a[0]) * t;
      const y = a[1] + (b[1] - a[1]) * t;
      const g = this.a.girdle!;
      // Near the shoulder the arm joins the trunk; lower it lies beside it.
      if (Math.abs(z - g.zHumeralHead) > 60) x = l.side * Math.max(Math.abs(x), this.person.torsoAt(z).a + r * 0.92);
      return { x, y, seg: i as 0 | 1, r };
    }
    return null;
  }

  private limb(z: number, buf: Float32Array, l: Limb, fatMm: number): void {
    const at = this.limbAt(z, l);
    if (!at) return;
    const p = this.ctx.pal;
    const cap = (r: number): { a: Vec3; b: Vec3; r: number }[] => [{ a: [at.x, at.y, z - 1], b: [at.x, at.y, z + 1], r }];
    this.softTissue(z, buf, cap(at.r + fatMm), p.fat, true);
    this.softTissue(z, buf, cap(at.r), p.muscle, false);
  }

  private limbBones(z: number, buf: Float32Array, l: Limb): void {
    const at = this.limbAt(z, l);
    if (!at) return;
    const bones: [number, number, number][] = at.seg === 0 ? [[0, 0, 11]] : [[-l.side * 4, 7, 7], [l.side * 4, -7, 8]];
    for (const [dx, dy, r] of bones) {
      const cx = at.x + dx;
      const cy = at.y + dy;
      const b = at.seg === 0 ? this.shaft : { ...this.shaft, shellMm: 2.5 };
      this.ctx.fill(buf, cx - r - 1, cx + r + 1, cy - r - 1, cy + r + 1, (bx, by) => Math.hypot(bx - cx, by - cy) - r, (d) => this.ctx.boneAt(d, b));
    }
  }

  /** Two curved carbon-fibre shells under the patient, level in the scanner (world frame). */
  private tableShells(buf: Float32Array): void {
    const { cols, rows, pixelMm: px, ox, oy } = this.ctx.grid;
    for (const [off, th] of [
      [0, 3],
      [45, 2.5],
    ] as const) {
      for (let i = 0; i < cols; i++) {
        const x = ox + i * px;
        if (Math.abs(x) > 240) continue;
        const y0 = this.tableY + off + 0.00035 * x * x;
        const j0 = Math.max(0, Math.floor((y0 - oy) / px) - 1);
        const j1 = Math.min(rows - 1, Math.ceil((y0 + th - oy) / px) + 1);
        for (let j = j0; j <= j1; j++) {
          const y = oy + j * px;
          const c = coverage(Math.abs(y - (y0 + th / 2)) - th / 2, px);
          if (c > 0) buf[j * cols + i] += c * (TABLE_HU - buf[j * cols + i]);
        }
      }
    }
  }
}
