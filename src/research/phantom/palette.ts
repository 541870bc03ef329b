import { ENHANCEMENT_FRACTION, enhancementHu, type ScannerState } from './scanner.js';

/** The HUs the renderer paints, precomputed once per phantom (tissue + contrast). */
export interface Palette {
  air: number;
  skin: number;
  fat: number;
  muscle: number;
  lung: number;
  mediastinum: number;
  abdomen: number;
  liver: number;
  spleen: number;
  kidney: number;
  heart: number;
  aorta: number;
  ivc: number;
  csf: number;
  disc: number;
  cortical: number;
  bowelWall: number;
  gas: number;
  fluid: number;
  feces: number;
  /** Trabecular HU per mg/cm3 (slope) and at 0 (intercept + marrow enhancement). */
  trabSlope: number;
  trabIntercept: number;
  lyticHu: number;
  veinHu: number;
}

export function makePalette(s: ScannerState, visceralFatFraction: number): Palette {
  const t = s.tissue;
  const e = (f: number): number => enhancementHu(s, f);
  const soft = t.muscle - 8;
  return {
    air: t.air,
    skin: t.skin + e(ENHANCEMENT_FRACTION.skin),
    fat: t.fat + e(ENHANCEMENT_FRACTION.fat),
    muscle: t.muscle + e(ENHANCEMENT_FRACTION.muscle),
    lung: t.lung,
    mediastinum: 0.7 * t.fat + 0.3 * t.muscle + e(0.03),
    abdomen: visceralFatFraction * t.fat + (1 - visceralFatFraction) * soft + e(0.08),
    liver: t.liver + e(ENHANCEMENT_FRACTION.liver),
    spleen: t.liver - 8 + e(ENHANCEMENT_FRACTION.liver * 1.2),
    kidney: t.kidney + e(ENHANCEMENT_FRACTION.kidney),
    heart: 0.6 * t.blood + 0.4 * t.muscle + e(ENHANCEMENT_FRACTION.heart * 0.6),
    aorta: t.blood + e(ENHANCEMENT_FRACTION.aorta),
    ivc: t.blood + e(ENHANCEMENT_FRACTION.ivc),
    csf: t.csf,
    disc: t.disc + e(ENHANCEMENT_FRACTION.disc),
    cortical: t.cortical,
    bowelWall: soft + e(0.15),
    gas: t.air + 80,
    fluid: t.csf + 5,
    feces: 0.5 * t.fat + 0.5 * soft - 150,
    trabSlope: s.slope,
    trabIntercept: s.intercept + e(ENHANCEMENT_FRACTION.trabecular),
    lyticHu: soft + 5 + e(0.3),
    veinHu: t.blood + e(ENHANCEMENT_FRACTION.ivc),
  };
}

