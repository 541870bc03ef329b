import type { Vec3 } from '../../imaging/volume.js';
import { type Person, type Vertebra, isLumbar } from './anatomy.js';
import { L, forBox, toBody, toLocalInto, type Placement, type SliceGrid } from './frame.js';
import type { Palette } from './palette.js';
import { paintBase } from './render-base.js';
import { capsuleSdf, coverage, ellipseSdf } from './sdf.js';

export { forBox, toBody, toLocalInto, type Placement, type SliceGrid } from './frame.js';
export { makePalette, type Palette } from './palette.js';

/** What the hard preset (src/research/phantom/hard/painter.ts) adds to each slice; absent for default phantoms. */
export interface SliceExtras {
  /** The spine to draw, cranial first (person.vertebrae plus an extra C6 or sacral segment). */
  spine: Vertebra[];
  /** Paints the disc between two successive bodies (replaces the default disc). */
  disc(z: number, buf: Float32Array, up: Vertebra, lo: Vertebra): void;
  /** Layers painted after the default layer of the same name. */
  afterBase(z: number, buf: Float32Array): void;
  afterOrgans(z: number, buf: Float32Array): void;
  afterVessels(z: number, buf: Float32Array): void;
  /** Bones and devices over everything (girdle, sternum, cartilage, hardware, table); replaces the default sternum. */
  last(z: number, buf: Float32Array): void;
}

/**
 * Paints one axial plane (body-frame z) into `buf` (cols*rows HU, overwritten) and the beam-hardening
 * cupping into `cup`. Shapes are composited in anatomical order with a partial-volume coverage per voxel.
 */
export class SliceRenderer {
  private readonly cos: number;
  private readonly sin: number;
  private readonly ribDist: Float32Array;
  private readonly ribTouched: Int32Array;
  private readonly posterior: { v: Vertebra; min: Vec3; max: Vec3 }[];

  constructor(
    private readonly person: Person,
    private readonly pal: Palette,
    private readonly grid: SliceGrid,
    private readonly place: Placement,
    private readonly extras?: SliceExtras,
  ) {
    this.cos = Math.cos(place.rotationRad);
    this.sin = Math.sin(place.rotationRad);
    this.ribDist = new Float32Array(grid.cols * grid.rows).fill(Infinity);
    this.ribTouched = new Int32Array(grid.cols * grid.rows);
    this.posterior = (extras?.spine ?? person.vertebrae).map((v) => {
      const min: Vec3 = [Infinity, Infinity, Infinity];
      const max: Vec3 = [-Infinity, -Infinity, -Infinity];
      const add = (p: Vec3, r: number): void => {
        const q = toBody(v, p);
        for (let a = 0; a < 3; a++) {
          min[a] = Math.min(min[a], q[a] - r);
          max[a] = Math.max(max[a], q[a] + r);
        }
      };
      for (const c of v.processes) {
        add(c.a, c.r + 2);
        add(c.b, c.r + 2);
      }
      const cw = v.canal.halfWidth + v.arch.thick + 2;
      const cd = v.canal.halfDepth + v.arch.thick + 2;
      const h = v.arch.height / 2 + 2;
      for (const su of [-1, 1]) for (const sv of [-1, 1]) for (const sw of [-1, 1]) add([su * cw, v.canal.v + sv * cd, v.arch.w + sw * h], 0);
      // the body too
      for (const su of [-1, 1]) for (const sv of [-1, 1]) for (const sw of [-1, 1]) add([su * (v.halfWidth + 1), sv * (v.halfDepth + 1), sw * (v.heightPost / 2 + 1)], 0);
      return { v, min, max };
    });
  }

  /** Calls fn for every voxel whose centre maps into the body-frame box [x0,x1]x[y0,y1]. */
  private forBox(x0: number, x1: number, y0: number, y1: number, fn: (idx: number, bx: number, by: number) => void): void {
    forBox(this.grid, this.place, this.cos, this.sin, x0, x1, y0, y1, fn);
  }

  render(z: number, buf: Float32Array, cup: Float32Array): void {
    const x = this.extras;
    this.base(z, buf, cup);
    x?.afterBase(z, buf);
    this.organs(z, buf);
    x?.afterOrgans(z, buf);
    this.vessels(z, buf);
    x?.afterVessels(z, buf);
    this.muscles(z, buf);
    this.spine(z, buf);
    this.ribs(z, buf);
    if (x) x.last(z, buf);
    else this.sternum(z, buf);
  }

  /** Sternum: a flat bone in the anterior chest wall from the T3 to the T9 level (manubrium to xiphoid). */
  private sternum(z: number, buf: Float32Array): void {
    const v = this.person.vertebrae;
    const top = v[v.findIndex((q) => q.level === 'T3')].c[2];
    const bot = v[v.findIndex((q) => q.level === 'T9')].c[2];
    if (z > top || z < bot) return;
    const px = this.grid.pixelMm;
    const p = this.pal;
    const t = this.person.torsoAt(z);
    const cy = -(t.bAnt - t.skin - t.fat - t.muscleWall * 0.5) + 7;
    const hw = z > top - 40 ? 22 : 13;
    const hd = 6;
    const marrow = p.trabIntercept + p.trabSlope * 160;
    this.forBox(-hw - 2, hw + 2, cy - hd - 2, cy + hd + 2, (idx, bx, by) => {
      const d = ellipseSdf(bx, by - cy, hw, hd);
      const c = coverage(d, px);
      if (c <= 0) return;
      const tin = coverage(d + 1.0, px);
      const val = p.cortical * 0.85 + tin * (marrow - p.cortical * 0.85);
      buf[idx] += c * (val - buf[idx]);
    });
  }

  /** Air, skin, subcutaneous fat, muscle wall, lungs/mediastinum or abdominal content, liver. Every voxel. */
  private base(z: number, buf: Float32Array, cup: Float32Array): void {
    paintBase(this.person, this.pal, this.grid, this.place, z, buf, cup);
  }

  private paintEllipse(z: number, buf: Float32Array, cx: number, cy: number, a: number, b: number, hu: number): void {
    const px = this.grid.pixelMm;
    if (a <= 0 || b <= 0) return;
    this.forBox(cx - a - px, cx + a + px, cy - b - px, cy + b + px, (idx, bx, by) => {
      const c = coverage(ellipseSdf(bx - cx, by - cy, a, b), px);
      if (c > 0) buf[idx] += c * (hu - buf[idx]);
    });
    void z;
  }

  /** An ellipsoid cut at z: paints its cross-section ellipse. */
  private paintEllipsoid(z: number, buf: Float32Array, c: Vec3, r: Vec3, hu: number): void {
    const f = 1 - ((z - c[2]) / r[2]) ** 2;
    if (f <= 0) return;
    const s = Math.sqrt(f);
    this.paintEllipse(z, buf, c[0], c[1], r[0] * s, r[1] * s, hu);
  }

  private organs(z: number, buf: Float32Array): void {
    const p = this.pal;
    const person = this.person;
    const t = person.torsoAt(z);
    if (person.heart && z > person.diaphragmZ) this.paintEllipsoid(z, buf, person.heart.c, person.heart.r, p.heart);
    if (z < person.diaphragmZ + 10) this.paintEllipsoid(z, buf, person.spleen.c, person.spleen.r, p.spleen);
    for (const k of person.kidneys) {
      this.paintEllipsoid(z, buf, k.c, [k.r[0] + 3, k.r[1] + 3, k.r[2] + 3], p.fat);
      this.paintEllipsoid(z, buf, k.c, k.r, p.kidney);
    }
    for (const b of person.bowel) {
      const dzr = (z - b.c0[2]) / b.dir[2];
      if (dzr < 0 || dzr > b.length) continue;
      const cx = b.c0[0] + b.dir[0] * dzr;
      const cy = b.c0[1] + b.dir[1] * dzr;
      // keep bowel inside the abdominal wall
      const lim = t.a - t.fat - t.muscleWall - b.r - 5;
      if (Math.abs(cx) > lim || cy < -(t.bAnt - t.fat - t.muscleWall - b.r - 5)) continue;
      const lumen = b.lumen === 'gas' ? p.gas : b.lumen === 'fluid' ? p.fluid : p.feces;
      this.paintEllipse(z, buf, cx, cy, b.r, b.r * 0.85, p.bowelWall);
      this.paintEllipse(z, buf, cx, cy, b.r - 2.5, b.r * 0.85 - 2.5, lumen);
    }
  }

  private vessels(z: number, buf: Float32Array): void {
    const p = this.pal;
    const person = this.person;
    const sp = person.spineAt(z);
    const ao = person.aortaAt(z);
    // r = 0 above the aortic arch of the hard preset (its painter draws the arch); the default aorta always has r > 0.
    if (!ao.iliac && ao.r > 0) {
      // Periaortic fat (posterior mediastinum / retroperitoneum), then the aorta.
      this.paintEllipse(z, buf, ao.x, ao.y, ao.r + 5, ao.r + 5, p.fat);
      this.paintEllipse(z, buf, ao.x, ao.y, ao.r, ao.r, p.aorta);
    } else {
      const mid = sp.x + 2;
      const off = ao.x - sp.x - 2;
      for (const s of [-1, 1]) {
        this.paintEllipse(z, buf, mid + s * off, ao.y, ao.r + 4, ao.r + 4, p.fat);
        this.paintEllipse(z, buf, mid + s * off, ao.y, ao.r, ao.r, p.aorta);
      }
    }
    if (z < person.diaphragmZ - 5 && !ao.iliac) {
      this.paintEllipse(z, buf, sp.x - 22, sp.y - sp.halfDepth - 11, 12, 9, p.ivc);
    }
  }

  private muscles(z: number, buf: Float32Array): void {
    const p = this.pal;
    const person = this.person;
    const sp = person.spineAt(z);
    const t = person.torsoAt(z);
    const v = person.vertebrae;
    const lvl = Math.min(v.length - 1, Math.round(sp.level));
    const lumbarish = Math.min(1, Math.max(0, (sp.level - 10) / 4));
    // Erector spinae: fills the gutter between the spinous processes and the ribs' angles.
    const back = sp.y + sp.halfDepth + 2 * sp.canalHalfDepth + 3;
    const esDepth = t.bPost - t.skin - t.fat * 0.6 - back;
    const hx = 17 + 8 * lumbarish;
    for (const s of [-1, 1]) {
      this.paintEllipse(z, buf, sp.x + s * (7 + hx), back + esDepth / 2 - 3, hx, esDepth / 2 + 4, p.muscle);
    }
    // Psoas from T12 down, growing caudally; quadratus lumborum lateral to the transverse processes.
    const zT12 = v[v.findIndex((q) => q.level === 'T12')].c[2];
    const zL4 = v[v.findIndex((q) => q.level === 'L4')].c[2];
    if (z < zT12) {
      const f = Math.min(1, (zT12 - z) / (zT12 - zL4));
      const r = 4 + 15 * f;
      const ant = z < zL4 ? Math.min(18, (zL4 - z) * 0.4) : 0;
      for (const s of [-1, 1]) {
        this.paintEllipse(z, buf, sp.x + s * (sp.halfWidth + r * 0.75), sp.y - 2 - ant, r, r * 0.9, p.muscle);
        if (isLumbar(v[lvl].level) && lvl < v.length - 2) {
          this.paintEllipse(z, buf, sp.x + s * (sp.halfWidth + 52), sp.y + 22, 15, 9, p.muscle);
        }
      }
    }
  }

  private spine(z: number, buf: Float32Array): void {
    const p = this.pal;
    const px = this.grid.pixelMm;
    const verts = this.extras?.spine ?? this.person.vertebrae;
    // Spinal canal (CSF and cord) as a continuous tube, then discs, bodies, posterior elements.
    for (let i = 0; i < verts.length; i++) {
      const v = verts[i];
      const reach = v.heightPost / 2 + 8;
      if (Math.abs(z - v.c[2]) > reach + 15) continue;
      const cv = v.canal.v;
      const cw = v.canal.halfWidth;
      const cd = v.canal.halfDepth;
      // Lateral shift of a tilted or rotated canal (0 for an upright one).
      const xs = Math.abs(v.ew[0]) * reach + Math.abs(v.ev[0]) * (cv + cd);
      this.forBox(v.c[0] - cw - 2 - xs, v.c[0] + cw + 2 + xs, v.c[1] - 30, v.c[1] + cv + cd + 30, (idx, bx, by) => {
        const l = toLocalInto(v, bx, by, z, L);
        if (Math.abs(l[2]) > reach) return;
        const c = coverage(ellipseSdf(l[0], l[1] - cv, cw, cd), px);
        if (c > 0) buf[idx] += c * (p.csf - buf[idx]);
      });
    }
    const extras = this.extras;
    if (extras) for (let i = 0; i + 1 < verts.length; i++) extras.disc(z, buf, verts[i], verts[i + 1]);
    else for (let i = 0; i + 1 < verts.length; i++) this.disc(z, buf, verts[i], verts[i + 1]);
    for (const v of verts) this.body(z, buf, v);
    for (const e of this.posterior) {
      if (z < e.min[2] || z > e.max[2]) continue;
      this.posteriorElements(z, buf, e.v, e.min, e.max);
    }
  }

  private disc(z: number, buf: Float32Array, up: Vertebra, lo: Vertebra): void {
    const px = this.grid.pixelMm;
    const c: Vec3 = [(up.c[0] + lo.c[0]) / 2, (up.c[1] + lo.c[1]) / 2, (up.c[2] + lo.c[2]) / 2];
    const half = (up.c[2] - lo.c[2]) / 2;
    const margin = Math.max(up.halfDepth, lo.halfDepth) * 0.6;
    if (Math.abs(z - c[2]) > half + margin) return;
    const tilt = (up.tiltRad + lo.tiltRad) / 2;
    const ct = Math.cos(tilt);
    const st = Math.sin(tilt);
    const hw = (up.halfWidth + lo.halfWidth) / 2;
    const hd = (up.halfDepth + lo.halfDepth) / 2;
    const rn = (up.notchRadius + lo.notchRadius) / 2;
    const hu = this.pal.disc;
    this.forBox(c[0] - hw - 2, c[0] + hw + 2, c[1] - hd - half - 4, c[1] + hd + half + 4, (idx, bx, by) => {
      const u = bx - c[0];
      const dy = by - c[1];
      const dz = z - c[2];
      const v = dy * ct - dz * st;
      const w = dy * st + dz * ct;
      const dxy = Math.max(ellipseSdf(u, v, hw, hd), rn - Math.sqrt(u * u + (v - (hd + 0.55 * rn)) ** 2));
      const d = Math.max(dxy, Math.abs(w) - half * 0.8);
      const cv = coverage(d, px);
      if (cv > 0) buf[idx] += cv * (hu - buf[idx]);
    });
  }

  private body(z: number, buf: Float32Array, v: Vertebra): void {
    const px = this.grid.pixelMm;
    const p = this.pal;
    const reach = v.halfDepth + v.heightPost / 2 + 2;
    if (Math.abs(z - v.c[2]) > reach) return;
    const hw = v.halfWidth;
    const hd = v.halfDepth;
    const rn = v.notchRadius;
    const bot = -v.heightPost / 2;
    const trab = p.trabIntercept + p.trabSlope * v.vbmd;
    const condense = p.trabSlope * v.vbmd * 0.25;
    const les = v.lesion;
    const lesHu = les ? (les.softTissue ? p.lyticHu : p.trabIntercept + p.trabSlope * les.vbmdEquivalent) : 0;
    const vein = v.vein;
    const tex = v.texture;
    const cortical = p.cortical;
    const hv = v.hard;
    // In-plane half extent along x (hw for an upright body; more when the hard preset tilts or rotates it).
    const xr = Math.abs(v.eu[0]) * hw + Math.abs(v.ev[0]) * hd + Math.abs(v.ew[0]) * (v.heightPost / 2);
    this.forBox(v.c[0] - xr - 2, v.c[0] + xr + 2, v.c[1] - reach - 2, v.c[1] + reach + 2, (idx, bx, by) => {
      const l = toLocalInto(v, bx, by, z, L);
      const u = l[0];
      const vv = l[1];
      const w = l[2];
      const dxy = Math.max(ellipseSdf(u, vv, hw, hd), rn - Math.sqrt(u * u + (vv - (hd + 0.55 * rn)) ** 2));
      if (dxy > px) return;
      const fAP = Math.min(1, Math.max(0, (vv + hd) / (2 * hd)));
      let top = bot + v.heightAnt + (v.heightPost - v.heightAnt) * fAP;
      let bottom = bot;
      if (hv) {
        // Biconcave endplates: deepest in the centre, none at the rim.
        const rim = 1 - (u / hw) ** 2 - (vv / hd) ** 2;
        if (rim > 0) {
          top -= hv.concavityTopMm * rim;
          bottom += hv.concavityBottomMm * rim;
        }
      }
      const dzt = Math.max(w - top, bottom - w);
      const d = Math.max(dxy, dzt);
      const c = coverage(d, px);
      if (c <= 0) return;
      const tin = coverage(Math.max(dxy + v.cortexMm, dzt + v.endplateMm), px);
      let val = cortical;
      if (tin > 0) {
        let tr = trab;
        // Subchondral condensation near the endplates (why ROIs avoid them).
        if (dzt > -3) tr += condense * (1 + dzt / 3);
        for (let q = 0; q < tex.length; q++) {
          const k = tex[q].k;
          tr += tex[q].amp * Math.sin(k[0] * u + k[1] * vv + k[2] * w + tex[q].phase);
        }
        // Basivertebral vein: a venous channel entering the posterior wall at mid-height.
        if (vv > vein.v0 - px) {
          const dv = Math.max(Math.abs(u) - vein.halfU, vein.v0 - vv, Math.abs(w) - vein.halfW);
          const cvn = coverage(dv, px);
          if (cvn > 0) tr += cvn * (p.veinHu - tr);
        }
        if (les) {
          const dl = Math.sqrt((u - les.c[0]) ** 2 + (vv - les.c[1]) ** 2 + (w - les.c[2]) ** 2) - les.r;
          const cl = coverage(dl, Math.max(px, 1.5));
          if (cl > 0) tr += cl * (lesHu - tr);
        }
        if (hv?.trabecular) tr = hv.trabecular(u, vv, w, tr, top - w, w - bottom);
        val = cortical + tin * (tr - cortical);
      }
      buf[idx] += c * (val - buf[idx]);
    });
  }

  private posteriorElements(z: number, buf: Float32Array, v: Vertebra, min: Vec3, max: Vec3): void {
    const px = this.grid.pixelMm;
    const p = this.pal;
    const marrow = p.trabIntercept + p.trabSlope * v.vbmd;
    const cortical = p.cortical;
    const caps = v.processes;
    const cw = v.canal.halfWidth;
    const cd = v.canal.halfDepth;
    const cv = v.canal.v;
    const ta = v.arch.thick;
    const ah = v.arch.height / 2;
    const aw = v.arch.w;
    const shell = 1.0;
    this.forBox(min[0], max[0], min[1], max[1], (idx, bx, by) => {
      const l = toLocalInto(v, bx, by, z, L);
      const u = l[0];
      const vv = l[1];
      const w = l[2];
      // Neural arch: the ring around the canal without its anterior part (the pedicles, below, join the body).
      const ring = Math.max(ellipseSdf(u, vv - cv, cw + ta, cd + ta), -ellipseSdf(u, vv - cv, cw, cd), Math.abs(w - aw) - ah, cv - 0.2 * cd - vv);
      let d = ring;
      for (let q = 0; q < caps.length; q++) {
        const e = capsuleSdf(u, vv, w, caps[q].a, caps[q].b, caps[q].r);
        if (e < d) d = e;
      }
      const c = coverage(d, px);
      if (c <= 0) return;
      const tin = coverage(d + shell, px);
      const val = cortical + tin * (marrow - cortical);
      buf[idx] += c * (val - buf[idx]);
    });
  }

  /** All ribs at once: the union of capsules along each rib's centreline, cortical shell over marrow. */
  private ribs(z: number, buf: Float32Array): void {
    const px = this.grid.pixelMm;
    const dist = this.ribDist;
    const touched = this.ribTouched;
    let nTouched = 0;
    let marrowSum = 0;
    let marrowN = 0;
    for (const rib of this.person.ribs) {
      const pts = rib.points;
      const r = rib.radius;
      for (let s = 0; s + 1 < pts.length; s++) {
        const a = pts[s];
        const b = pts[s + 1];
        if (z < Math.min(a[2], b[2]) - r - px || z > Math.max(a[2], b[2]) + r + px) continue;
        this.forBox(Math.min(a[0], b[0]) - r - px, Math.max(a[0], b[0]) + r + px, Math.min(a[1], b[1]) - r - px, Math.max(a[1], b[1]) + r + px, (idx, bx, by) => {
          const d = capsuleSdf(bx, by, z, a, b, r);
          if (d < dist[idx]) {
            if (dist[idx] === Infinity) touched[nTouched++] = idx;
            dist[idx] = d;
          }
        });
      }
    }
    if (nTouched === 0) return;
    for (const v of this.person.vertebrae) {
      if (v.hasRibs) {
        marrowSum += v.vbmd;
        marrowN++;
      }
    }
    const p = this.pal;
    const marrow = p.trabIntercept + p.trabSlope * (marrowSum / Math.max(1, marrowN)) * 0.9;
    const cortical = p.cortical * 0.85;
    for (let q = 0; q < nTouched; q++) {
      const idx = touched[q];
      const d = dist[idx];
      dist[idx] = Infinity;
      const c = coverage(d, px);
      if (c <= 0) continue;
      const tin = coverage(d + 1.0, px);
      const val = cortical + tin * (marrow - cortical);
      buf[idx] += c * (val - buf[idx]);
    }
  }
}

