import type { Person, TorsoAt } from './anatomy.js';
import type { Placement, SliceGrid } from './frame.js';
import type { Palette } from './palette.js';
import { coverage, ellipseSdf } from './sdf.js';

/**
 * The trunk in one axial plane (body-frame z), every voxel: air, skin, subcutaneous fat, muscle wall, then lungs
 * and mediastinum above the diaphragm or abdominal content below it, and the liver; the beam-hardening cupping
 * goes into `cup`. The first layer of SliceRenderer.render (src/research/phantom/render.ts).
 */
export function paintBase(person: Person, p: Palette, grid: SliceGrid, place: Placement, z: number, buf: Float32Array, cup: Float32Array): void {
  const { cols, rows, pixelMm: px, ox, oy } = grid;
  const cos = Math.cos(place.rotationRad);
  const sin = Math.sin(place.rotationRad);
  const { tx, ty } = place;
  // Locals, not s.field, and no call per voxel on the way to the muscle wall: this loop runs for every voxel of
  // every sub-slice, and a helper there measured ~15-30 % slower.
  const { t, cupHu, dz0, domeHalf, liverCx, liverCy, liverA, liverB, hasLiver, medX, medHalf, medBack, invA, lungPost, airR2 } = baseSlice(person, px, z);
  const skinIn = t.skin;
  const fatBase = t.fat;
  const mw = t.muscleWall;
  for (let j = 0; j < rows; j++) {
    const dy = oy + j * px - ty;
    for (let i = 0; i < cols; i++) {
      const dx = ox + i * px - tx;
      const bx = cos * dx + sin * dy;
      const by = -sin * dx + cos * dy;
      const idx = j * cols + i;
      const b = by > 0 ? t.bPost : t.bAnt;
      const nx = bx * invA;
      const ny = by / b;
      const r2 = nx * nx + ny * ny;
      if (r2 > airR2) {
        buf[idx] = p.air;
        cup[idx] = 0;
        continue;
      }
      const r = Math.sqrt(r2);
      const g = Math.sqrt((nx * nx) / (t.a * t.a) + (ny * ny) / (b * b));
      const depth = g > 1e-9 ? ((1 - r) * r) / g : 1e3; // mm inside the skin surface
      if (depth < -px) {
        buf[idx] = p.air;
        cup[idx] = 0;
        continue;
      }
      cup[idx] = r < 1 ? -cupHu * (1 - r2) : 0;
      // Subcutaneous fat is thickest anteriorly and thinnest over the back.
      const rr = r > 1e-6 ? 1 / r : 0;
      const fat = fatBase * (0.85 + 0.15 * Math.max(0, -ny * rr) - 0.3 * Math.max(0, ny * rr));
      const c0 = coverage(-depth, px);
      const c1 = coverage(skinIn - depth, px);
      const c2 = coverage(skinIn + fat - depth, px);
      const c3 = coverage(skinIn + fat + mw - depth, px);
      let v = p.air + c0 * (p.skin - p.air) + c1 * (p.fat - p.skin) + c2 * (p.muscle - p.fat);
      if (c3 > 0) {
        // Inside the muscle wall: chest above the diaphragm, abdomen below.
        const ax = Math.abs(bx) - 0.45 * t.a;
        const dome = 1 - (ax * ax) / (domeHalf * domeHalf);
        const zDia = dz0 + 30 * (dome > 0 ? dome : 0) - 25 * (by > 0 ? by / t.bPost : 0);
        const chest = coverage(zDia - z, px);
        let inner = p.abdomen + chest * (p.mediastinum - p.abdomen);
        if (chest > 0) {
          const cavity = coverage(skinIn + fat + mw + 4 - depth, px);
          const mx = Math.abs(bx - medX) - medHalf;
          const mediast = coverage(Math.max(mx, by - medBack), px);
          // Posteriorly the lungs end at the rib angles, level with the back of the spinal canal.
          const lungBack = coverage(by - lungPost, px);
          const lung = chest * cavity * lungBack * (1 - mediast);
          inner += lung * (p.lung - inner);
        }
        if (hasLiver && bx < 0) {
          const dl = ellipseSdf(bx - liverCx, by - liverCy, liverA, liverB);
          const cl = coverage(dl, px) * (1 - chest) * coverage(person.liverBottomZ - z, px * 4);
          inner += cl * (p.liver - inner);
        }
        v += c3 * (inner - p.muscle);
      }
      buf[idx] = v;
    }
  }
}

/** What every voxel of one axial plane reads: the torso outline and layers, diaphragm dome, liver, mediastinum, lungs. */
interface BaseSlice {
  t: TorsoAt;
  cupHu: number;
  dz0: number;
  domeHalf: number;
  liverCx: number;
  liverCy: number;
  liverA: number;
  liverB: number;
  hasLiver: boolean;
  medX: number;
  medHalf: number;
  medBack: number;
  invA: number;
  lungPost: number;
  airR2: number;
}

function baseSlice(person: Person, px: number, z: number): BaseSlice {
  const t = person.torsoAt(z);
  const sp = person.spineAt(z);
  const liverF = Math.min(1, Math.max(0.25, (z - person.liverBottomZ) / 60));
  // Beyond this normalised radius a voxel is surely outside the skin (2 voxels of margin).
  const airR = 1 + (2 * px) / Math.min(t.a, t.bAnt, t.bPost);
  return {
    t,
    cupHu: person.cuppingHu,
    dz0: person.diaphragmZ,
    domeHalf: 0.5 * t.a,
    liverCx: -0.4 * t.a,
    liverCy: -0.05 * t.bAnt,
    liverA: 0.5 * t.a * liverF,
    liverB: 0.7 * ((t.bAnt + t.bPost) / 2) * liverF,
    hasLiver: z > person.liverBottomZ - px,
    medX: sp.x + 8,
    medHalf: 34,
    medBack: sp.y - sp.halfDepth * 0.2,
    invA: 1 / t.a,
    lungPost: sp.y + sp.halfDepth + 2 * sp.canalHalfDepth + 6,
    airR2: airR * airR,
  };
}
