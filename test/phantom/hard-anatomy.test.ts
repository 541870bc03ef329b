import { beforeAll, describe, expect, it } from 'vitest';
import type { Vec3, Volume } from '../../src/imaging/volume.js';
import { patientMmToVoxel } from '../../src/imaging/volume.js';
import { bodyContainsPoint, insideBody } from '../../src/research/phantom/body-mask.js';
import { generatePhantom } from '../../src/research/phantom/index.js';
import type { Capsule } from '../../src/research/phantom/anatomy.js';
import { worldOf } from '../../src/research/phantom/truth.js';
import type { Phantom } from '../../src/research/phantom/types.js';
import { median, sampleCylinder } from './roi.js';

/** Largest HU within `r` mm (in-plane and along z) of an LPS point. */
function maxNear(v: Volume, p: Vec3, r: number): number {
  const [ci, cj, ck] = patientMmToVoxel(v, p);
  const [sx, , sz] = v.spacingMm;
  const [nx, ny, nz] = v.dims;
  let m = -Infinity;
  const ri = Math.ceil(r / sx);
  const rk = Math.ceil(r / sz);
  for (let k = Math.round(ck) - rk; k <= Math.round(ck) + rk; k++) {
    for (let j = Math.round(cj) - ri; j <= Math.round(cj) + ri; j++) {
      for (let i = Math.round(ci) - ri; i <= Math.round(ci) + ri; i++) {
        if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= nz) continue;
        m = Math.max(m, v.hu[i + nx * (j + ny * k)]);
      }
    }
  }
  return m;
}

function mid(c: Capsule): Vec3 {
  return [(c.a[0] + c.b[0]) / 2, (c.a[1] + c.b[1]) / 2, (c.a[2] + c.b[2]) / 2];
}

function maxOf(v: Volume): number {
  let m = -Infinity;
  for (let q = 0; q < v.hu.length; q++) if (v.hu[q] > m) m = v.hu[q];
  return m;
}

describe('hard phantom: thorax and shoulder girdle', () => {
  let p: Phantom;
  beforeAll(() => {
    p = generatePhantom({
      seed: 20311,
      preset: 'hard',
      levels: 'T1-T8',
      size: 224,
      pixelSpacingMm: 2,
      sliceThicknessMm: 2,
      noiseHu: 5,
      hard: { only: ['curvature', 'girdle', 'sternum', 'cartilage'], arms: 'down' },
    });
  });

  it('gives every rib a head that touches its own body, a tubercle at its own transverse process, and a shaft sloping down', () => {
    const spine = p.anatomy!.spine!;
    const ribs = p.anatomy!.person.ribs;
    expect(ribs.length).toBe(2 * p.truth.ribPairs);
    for (const rib of ribs) {
      const v = spine.find((q) => q.level === rib.level)!;
      const head = rib.points[0];
      // The head sphere reaches into its own body (the costovertebral joint) ...
      const toward: Vec3 = [v.c[0] - head[0], v.c[1] - head[1], v.c[2] - head[2]];
      const n = Math.hypot(...toward);
      const touch: Vec3 = [head[0] + (toward[0] / n) * rib.radius, head[1] + (toward[1] / n) * rib.radius, head[2] + (toward[2] / n) * rib.radius];
      expect(insideBody(v, ...touch), `${rib.level} head`).toBe(true);
      // ... and no other body.
      for (const o of spine) if (o !== v) expect(insideBody(o, ...head), `${rib.level} head in ${o.level}`).toBe(false);
      const tip = rib.points[rib.points.length - 1];
      expect(tip[2], `${rib.level} slopes down`).toBeLessThan(head[2] - 10);
      expect(Math.sign(tip[0] - v.c[0])).toBe(rib.side);
    }
    expect(ribs.filter((r) => r.level === 'T1')).toHaveLength(2);
  });

  it('runs the first costal cartilage to the manubrium and the lower ones to the sternal body', () => {
    const hard = p.anatomy!.hard!;
    const st = hard.sternum!;
    expect(st.zTop - st.zAngle).toBeGreaterThan(30);
    expect(st.zAngle - st.zXiphisternal).toBeGreaterThan(60);
    const t1 = hard.cage.ribs.find((r) => r.level === 'T1')!;
    const ends = [...hard.cage.cartilage, ...hard.cage.calcified].map((c) => c.b).filter((b) => st.at(b[2]) !== null && Math.hypot(b[0], b[1] - st.at(b[2])!.y) < 40);
    // Some cartilage ends on the manubrium (between the jugular notch and the sternal angle) ...
    expect(ends.some((b) => b[2] <= st.zTop && b[2] >= st.zAngle)).toBe(true);
    // ... reached from the first rib's anterior end.
    const t1Tip = t1.points[t1.points.length - 1];
    expect(t1Tip[2]).toBeGreaterThan(st.zAngle - 15);
  });

  it('paints clavicles, scapulae, humeral heads and sternum in the bone range, and arms beside the trunk', () => {
    const v = p.loaded.volume;
    const hard = p.anatomy!.hard!;
    const toWorld = worldOf(p.anatomy!.placement);
    const g = hard.girdle!;
    const clav = maxNear(v, toWorld(mid(g.clavicles[2])), 6);
    const scap = maxNear(v, toWorld(mid(g.scapulaBars[0])), 5);
    expect(clav).toBeGreaterThan(300);
    expect(scap).toBeGreaterThan(300);
    for (const x of [clav, scap]) expect(x).toBeLessThan(2000);
    const head = g.humeralHeads[0];
    expect(maxNear(v, toWorld([head.c[0], head.c[1], head.c[2]]), head.r + 3)).toBeGreaterThan(300);
    const st = hard.sternum!;
    const zs = (st.zAngle + st.zXiphisternal) / 2;
    const s = st.at(zs)!;
    expect(maxNear(v, toWorld([0, s.y, zs]), s.ht + 2)).toBeGreaterThan(250);
    // Arms down: soft tissue lateral to the trunk at the level of T6.
    const t6 = p.truth.levels.find((l) => l.level === 'T6')!;
    const torso = p.anatomy!.person.torsoAt(p.anatomy!.spine!.find((q) => q.level === 'T6')!.c[2]);
    for (const side of [-1, 1]) {
      const arm = toWorld([side * (torso.a + 25), 0, t6.centerMm[2] - p.anatomy!.placement.tz]);
      expect(median(sampleCylinder(v, arm, 10, 2))).toBeGreaterThan(-200);
    }
  });

  it('curves the spine: endplates tilt by tens of degrees between levels and discs are cut obliquely', () => {
    const tilts = p.truth.levels.map((l) => l.tiltDeg);
    expect(Math.max(...tilts) - Math.min(...tilts)).toBeGreaterThan(15);
    const oblique = p.truth.levels.filter((l) => Math.abs(l.endplates!.superior.normal[2]) < Math.cos((10 * Math.PI) / 180));
    expect(oblique.length).toBeGreaterThan(0);
    for (const l of p.truth.levels) {
      expect(bodyContainsPoint(p, l.level, l.centerMm)).toBe(true);
      expect(bodyContainsPoint(p, l.level, [l.centerMm[0], l.centerMm[1] - l.halfDepthMm - 8, l.centerMm[2]])).toBe(false);
      const n = l.endplates!.superior.normal;
      expect(Math.hypot(...n)).toBeCloseTo(1, 2);
    }
  });
});

describe('hard phantom: lumbar spine, pathology and hardware', () => {
  let p: Phantom;
  beforeAll(() => {
    p = generatePhantom({
      seed: 20403,
      preset: 'hard',
      levels: 'T11-S1',
      size: 192,
      pixelSpacingMm: 1.6,
      sliceThicknessMm: 2,
      noiseHu: 6,
      hard: { only: ['curvature', 'degeneration', 'fractures', 'cement', 'screws', 'transitional', 'clip', 'contrast'], always: ['degeneration', 'fractures', 'cement', 'screws', 'transitional', 'clip', 'contrast'] },
    });
  });

  it('records fractures with Genant grade and shape, and their heights', () => {
    const fr = p.truth.levels.filter((l) => l.fracture);
    expect(fr.length).toBeGreaterThan(0);
    for (const l of fr) {
      const f = l.fracture!;
      expect([1, 2, 3]).toContain(f.genantGrade);
      expect(f.heightLossFraction).toBeGreaterThanOrEqual(0.2);
      const band = f.genantGrade === 1 ? [0.2, 0.25] : f.genantGrade === 2 ? [0.25, 0.4] : [0.4, 0.6];
      expect(f.heightLossFraction).toBeGreaterThanOrEqual(band[0]);
      expect(f.heightLossFraction).toBeLessThanOrEqual(band[1]);
      if (f.shape === 'wedge') expect(l.heightsMm.anterior / l.heightsMm.posterior).toBeCloseTo(1 - f.heightLossFraction, 2);
    }
  });

  it('never stores a value above the clip, and metal and cement reach it', () => {
    const v = p.loaded.volume;
    expect(p.truth.hard!.clipMaxHu).toBe(1023);
    expect(maxOf(v)).toBe(1023);
    const cemented = p.truth.levels.filter((l) => l.hardware?.cement);
    expect(cemented.length).toBeGreaterThan(0);
    for (const l of cemented) expect(maxNear(v, l.centerMm, Math.min(l.halfWidthMm, l.halfDepthMm))).toBe(1023);
    const screwed = p.truth.levels.filter((l) => l.hardware?.screws);
    expect(screwed.length).toBeGreaterThanOrEqual(2);
    for (const l of screwed) {
      // Screw heads sit behind the pedicles, ~canal depth behind the body centre.
      const back: Vec3 = [l.centerMm[0] + l.bodyAxes!.v[0] * 40, l.centerMm[1] + l.bodyAxes!.v[1] * 40, l.centerMm[2] + l.bodyAxes!.v[2] * 40];
      expect(maxNear(v, back, 18)).toBe(1023);
    }
  });

  it('thins degenerated discs and puts gas in a vacuum disc', () => {
    const deg = p.anatomy!.hard!.spec.degeneration;
    expect(deg.length).toBeGreaterThan(0);
    // The same person without degeneration (everything else the same): degenerated discs are thinner by their factor.
    const healthy = generatePhantom({ seed: 20403, preset: 'hard', levels: 'T11-S1', size: 48, sliceThicknessMm: 5, noiseHu: 0, hard: { only: ['curvature', 'fractures', 'transitional'], always: ['fractures', 'transitional'] } });
    for (const d of deg) {
      const a = p.truth.levels.find((l) => l.level === d.upper)!.discBelow!.heightMm;
      const b = healthy.truth.levels.find((l) => l.level === d.upper)!.discBelow!.heightMm;
      expect(a / b).toBeCloseTo(d.heightFactor, 2);
      expect(a).toBeLessThan(b);
    }
    const vac = p.truth.levels.filter((l) => l.discBelow?.vacuum);
    expect(vac.length).toBeGreaterThan(0);
    let checked = 0;
    for (const l of vac) {
      const i = p.truth.levels.indexOf(l);
      const lo = p.truth.levels[i + 1];
      if (!lo) continue;
      const c: Vec3 = [
        (l.endplates!.inferior.centerMm[0] + lo.endplates!.superior.centerMm[0]) / 2,
        (l.endplates!.inferior.centerMm[1] + lo.endplates!.superior.centerMm[1]) / 2,
        (l.endplates!.inferior.centerMm[2] + lo.endplates!.superior.centerMm[2]) / 2,
      ];
      if (l.discBelow!.heightMm < 3) continue; // thinner than the slice: partial volume hides it
      expect(Math.min(...sampleCylinder(p.loaded.volume, c, 5, 1))).toBeLessThan(-150);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('models the lumbosacral transitional vertebra it reports', () => {
    const t = p.truth.hard!.transitional;
    expect(t).not.toBeNull();
    const flagged = p.truth.levels.filter((l) => l.transitional);
    expect(flagged).toHaveLength(1);
    const spine = p.anatomy!.spine!;
    if (t === 'lumbarised-S1') {
      expect(flagged[0].level).toBe('S1');
      expect(spine.filter((v) => v.level === 'S1')).toHaveLength(2);
      expect(spine.find((v) => v.level === 'S1')!.isSacrum).toBe(false);
    } else {
      expect(flagged[0].level).toBe('L5');
      expect(p.truth.levels.find((l) => l.level === 'L5')!.discBelow!.heightMm).toBeLessThan(4);
    }
  });

  it('enhances the aorta for the drawn contrast phase', () => {
    expect(p.truth.hard!.contrastPhase).not.toBeNull();
    const l = p.truth.levels.find((q) => q.level === 'L1')!;
    expect(median(sampleCylinder(p.loaded.volume, l.aortaCenterMm, l.aortaRadiusMm * 0.5, 2))).toBeGreaterThan(120);
    expect(p.loaded.meta.contrastAgent).toBeTruthy();
  });
});

describe('hard phantom: acquisition', () => {
  it('crops a small field of view: the trunk runs off the image edges and bodies are flagged as cut', () => {
    const p = generatePhantom({ seed: 20520, preset: 'hard', sliceThicknessMm: 5, size: 128, noiseHu: 5, hard: { only: ['fov', 'curvature'], always: ['fov'] } });
    const h = p.truth.hard!;
    const v = p.loaded.volume;
    const fieldMm = v.dims[0] * v.spacingMm[0];
    if (h.fov.kind === 'off-centre') expect(fieldMm).toBeLessThan(330);
    else expect(fieldMm).toBeLessThan(205);
    // Soft tissue reaches the border of the middle slice (no air gap around the body as in a full field).
    const k = Math.floor(v.dims[2] / 2);
    const [nx, ny] = v.dims;
    let tissue = 0;
    for (let i = 0; i < nx; i++) for (const j of [0, ny - 1]) if (v.hu[i + nx * (j + ny * k)] > -500) tissue++;
    expect(tissue).toBeGreaterThan(10);
    for (const l of p.truth.levels) if (!l.inPlaneCovered) expect(l.fullyCovered).toBe(false);
  });

  it('ends a clinical range inside bodies, so the first or last body is cut', () => {
    let cut = 0;
    for (const seed of [20600, 20601, 20602, 20603]) {
      const p = generatePhantom({ seed, preset: 'hard', size: 64, sliceThicknessMm: 5, noiseHu: 0, hard: { only: ['curvature'] } });
      const ls = p.truth.levels;
      if (!ls[0].fullyCovered || !ls[ls.length - 1].fullyCovered) cut++;
      expect(['chest', 'abdomen', 'chest-abdomen', 'thoracolumbar']).toContain(p.truth.hard!.range.kind);
    }
    expect(cut).toBeGreaterThanOrEqual(3);
  });
});
