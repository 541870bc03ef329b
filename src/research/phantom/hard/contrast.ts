import type { Palette } from '../palette.js';
import type { ScannerState } from '../scanner.js';
import type { ContrastPhase, HardSpec } from './spec.js';

/**
 * Iodine by contrast phase (fraction of the aortic blood concentration each compartment shows). Aorta: late
 * arterial ~290-360 HU, portal venous ~150-200 HU at 120 kVp (Bae, Radiology 2010;256:32-61; Ichikawa et al.,
 * AJR 2002: aortic enhancement 300-336 HU at 10-15 s after bolus tracking vs 117-125 HU at 45-55 s). Arterial
 * phase: renal cortex bright, medulla dark (corticomedullary), infrarenal IVC still unenhanced, undiluted
 * contrast streaming in the superior vena cava (~1000+ HU); nephrographic: kidneys homogeneous; excretory: urine
 * in the collecting systems and ureters carries 15-50 mg I/mL (several hundred to > 1000 HU).
 */
interface PhaseFractions {
  ivc: number;
  liver: number;
  spleen: number;
  kidneyCortex: number;
  kidneyMedulla: number;
  heartLeft: number;
  heartRight: number;
  myocardium: number;
}

const PHASE: Record<ContrastPhase, PhaseFractions> = {
  arterial: { ivc: 0.15, liver: 0.08, spleen: 0.45, kidneyCortex: 0.85, kidneyMedulla: 0.25, heartLeft: 1, heartRight: 0.7, myocardium: 0.3 },
  'portal-venous': { ivc: 0.85, liver: 0.3, spleen: 0.35, kidneyCortex: 0.9, kidneyMedulla: 0.8, heartLeft: 1, heartRight: 1, myocardium: 0.35 },
  nephrographic: { ivc: 0.95, liver: 0.35, spleen: 0.35, kidneyCortex: 1.2, kidneyMedulla: 1.2, heartLeft: 1, heartRight: 1, myocardium: 0.35 },
  excretory: { ivc: 1, liver: 0.45, spleen: 0.4, kidneyCortex: 1.1, kidneyMedulla: 1.1, heartLeft: 1, heartRight: 1, myocardium: 0.35 },
};

export interface PhaseHu {
  phase: ContrastPhase;
  kidneyCortex: number;
  kidneyMedulla: number;
  heartLeft: number;
  heartRight: number;
  myocardium: number;
  /** Dense contrast inflow in the SVC (arterial phase), or null. */
  svc: number | null;
  /** Urine in the renal pelves and ureters (excretory phase), or null. */
  urine: number | null;
}

/**
 * The palette of a hard study with contrast at a phase (the aortic iodine drawn per study replaces the default
 * portal-like draw), and the extra compartments the hard painter draws. Trabecular enhancement keeps the
 * default fraction of the aortic iodine, and the truth records it (trabecularHu).
 */
export function phasePalette(base: Palette, s: ScannerState, contrast: HardSpec['contrast'], urineMgMl: number, svcMgMl: number): { pal: Palette; phase: PhaseHu | null } {
  if (!contrast) return { pal: base, phase: null };
  const t = s.tissue;
  const perMg = s.contrast.huPerMgMl;
  const iod = contrast.aortaIodineMgMl;
  const e = (f: number): number => iod * perMg * f;
  const f = PHASE[contrast.phase];
  const pal: Palette = {
    ...base,
    aorta: t.blood + e(1),
    ivc: t.blood + e(f.ivc),
    veinHu: t.blood + e(f.ivc),
    liver: t.liver + e(f.liver),
    spleen: t.liver - 8 + e(f.spleen),
    kidney: t.kidney + e(f.kidneyCortex),
    heart: 0.6 * t.blood + 0.4 * t.muscle + e(0.6 * f.heartRight),
  };
  return {
    pal,
    phase: {
      phase: contrast.phase,
      kidneyCortex: t.kidney + e(f.kidneyCortex),
      kidneyMedulla: t.kidney + e(f.kidneyMedulla),
      heartLeft: t.blood + e(f.heartLeft),
      heartRight: t.blood + e(f.heartRight),
      myocardium: t.muscle + e(f.myocardium),
      svc: contrast.phase === 'arterial' ? t.blood + svcMgMl * perMg : null,
      urine: contrast.phase === 'excretory' ? t.csf + urineMgMl * perMg : null,
    },
  };
}
