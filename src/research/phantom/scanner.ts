import { Rng } from './random.js';

/**
 * The phantom's X-ray physics: how a scanner at a tube voltage turns tissues into HU. Deliberately
 * independent of the calibration module's literature reference values (src/bmd/calibration/references.ts):
 * HUs here come from a two-term attenuation model (Compton scatter ~ electron density, photoelectric ~ Z^3.8
 * / E^~3) evaluated at a scanner's effective energy, with person-to-person composition drawn per phantom.
 * So phantomless calibration on phantoms is only as good as its assumptions about typical tissues are.
 *
 * mu(material)/mu(water) = rhoE * (1 - pw(E) + pw(E) * (Z/Zw)^3.8), HU = 1000 * (ratio - 1), where rhoE is
 * the electron density relative to water, Z the effective atomic number (Zw = 7.42) and pw(E) the share of
 * water's attenuation that scales with Z (photoelectric + coherent; ~6 % near 60 keV, cf. NIST XCOM water).
 */
export const WATER_ZEFF = 7.42;

/** Effective (mean) energy of a filtered CT spectrum, keV: ~0.41*kVp + 13 (120 kVp ~ 62 keV, 80 kVp ~ 46 keV). */
export function effectiveEnergyKev(kvp: number, filtrationShiftKev: number): number {
  return 0.41 * kvp + 13 + filtrationShiftKev;
}

/** Z-dependent share of water's attenuation at energy E (fitted so fat/muscle/K2HPO4 follow published kVp trends). */
export function zDependentShare(energyKev: number): number {
  return 0.06 * Math.pow(62 / energyKev, 2.2);
}

export function materialHu(rhoE: number, zEff: number, energyKev: number): number {
  const pw = zDependentShare(energyKev);
  return 1000 * (rhoE * (1 - pw + pw * Math.pow(zEff / WATER_ZEFF, 3.8)) - 1);
}

/**
 * HU per mg/cm3 of K2HPO4 added to a water-equivalent base. K2HPO4 has 0.889x water's electrons per gram;
 * its Z-dependent enhancement (effective 7.0x water's, K and P dominate) and displacement term (0.0106) were
 * fitted so the slope is ~1.20 HU per mg/cm3 at 120 kVp and ~1.50 at 80 kVp, the range of published K2HPO4
 * (Mindways / Cann-Genant type) calibrations.
 */
export function k2hpo4SlopeHuPerMg(energyKev: number): number {
  const pw = zDependentShare(energyKev);
  return 0.889 * (1 + pw * 6.03) - 0.0106;
}

/** Iodine enhancement, HU per mg I/mL: ~26 at 120 kVp, ~45 at 80 kVp, ~21 at 140 kVp (published CT iodine sensitivities). */
export function iodineHuPerMgMl(energyKev: number): number {
  return 26 * Math.pow(62 / energyKev, 1.8);
}

export interface ScannerModel {
  manufacturer: string;
  model: string;
  /** Spectrum difference between makes (filtration, bowtie), keV. */
  filtrationShiftKev: number;
  /** Offset of the calibration phantom's 0 mg/cm3 base material for this make, HU (not seen in tissue). */
  phantomBaseOffsetHu: number;
  /**
   * Beam hardening left after the scanner's water correction, keV of effective energy per mm of patient
   * water-equivalent diameter above 265 mm (a mid-sized adult abdomen): water-like tissues are corrected, bone (high Z) is not, so
   * bone reads lower in large patients and higher in small ones (a few % of slope).
   */
  bhUnderCorrectionKevPerMm: number;
  psfSigmaMm: number;
}

/** A few scanner makes with fixed spectral quirks; the seed picks one. Names are as DICOM writes them. */
export const SCANNER_MODELS: readonly ScannerModel[] = [
  { manufacturer: 'GE MEDICAL SYSTEMS', model: 'Revolution CT', filtrationShiftKev: 0.8, phantomBaseOffsetHu: 2, bhUnderCorrectionKevPerMm: 0.03, psfSigmaMm: 0.55 },
  { manufacturer: 'GE MEDICAL SYSTEMS', model: 'LightSpeed VCT', filtrationShiftKev: -0.6, phantomBaseOffsetHu: -3, bhUnderCorrectionKevPerMm: 0.05, psfSigmaMm: 0.65 },
  { manufacturer: 'SIEMENS', model: 'SOMATOM Definition AS+', filtrationShiftKev: 1.5, phantomBaseOffsetHu: 5, bhUnderCorrectionKevPerMm: 0.04, psfSigmaMm: 0.5 },
  { manufacturer: 'SIEMENS', model: 'SOMATOM Force', filtrationShiftKev: 2.2, phantomBaseOffsetHu: 0, bhUnderCorrectionKevPerMm: 0.025, psfSigmaMm: 0.45 },
  { manufacturer: 'Philips', model: 'iCT 256', filtrationShiftKev: -1.2, phantomBaseOffsetHu: 6, bhUnderCorrectionKevPerMm: 0.045, psfSigmaMm: 0.6 },
  { manufacturer: 'TOSHIBA', model: 'Aquilion ONE', filtrationShiftKev: 0.2, phantomBaseOffsetHu: -6, bhUnderCorrectionKevPerMm: 0.035, psfSigmaMm: 0.6 },
];

/** One person's tissue composition (electron density rel. water, effective Z), drawn per phantom. */
export interface TissueComposition {
  fat: { rhoE: number; z: number };
  muscle: { rhoE: number; z: number };
  blood: { rhoE: number; z: number; hematocrit: number };
  skin: { rhoE: number; z: number };
  liver: { rhoE: number; z: number };
  kidney: { rhoE: number; z: number };
  disc: { rhoE: number; z: number };
  csf: { rhoE: number; z: number };
  lung: { rhoE: number; z: number };
}

/**
 * Biological variability: adipose tissue is 60-90 % lipid (rhoE of triglyceride ~0.92, of lean tissue
 * ~1.04), muscle carries variable fat infiltration (older, sicker patients: lower HU), blood HU follows
 * haematocrit (plasma ~1.025 g/cm3, red cells ~1.10).
 */
export function drawComposition(rng: Rng): TissueComposition {
  const hematocrit = rng.range(0.31, 0.48);
  return {
    fat: { rhoE: rng.range(0.91, 0.945), z: rng.range(6.0, 6.4) },
    muscle: { rhoE: rng.range(1.028, 1.05), z: rng.range(7.55, 7.7) },
    blood: { rhoE: 1.005 + 0.07 * hematocrit, z: 7.7, hematocrit },
    skin: { rhoE: rng.range(1.04, 1.055), z: 7.5 },
    liver: { rhoE: rng.range(1.045, 1.06), z: 7.65 },
    kidney: { rhoE: rng.range(1.03, 1.04), z: 7.6 },
    disc: { rhoE: rng.range(1.06, 1.09), z: 7.6 },
    csf: { rhoE: 1.006, z: 7.45 },
    lung: { rhoE: rng.range(0.12, 0.19), z: 7.5 },
  };
}

/** The HUs one phantom is drawn with (unenhanced; contrast adds on top), all stored in truth.json. */
export interface TissueHu {
  air: number;
  fat: number;
  muscle: number;
  blood: number;
  skin: number;
  liver: number;
  kidney: number;
  disc: number;
  csf: number;
  lung: number;
  cortical: number;
}

export interface ContrastState {
  enabled: boolean;
  /** Iodine in arterial/portal blood, mg I/mL. */
  iodineMgMl: number;
  huPerMgMl: number;
}

/** Fraction of the blood iodine concentration each tissue shows (blood volume + extracellular space). */
export const ENHANCEMENT_FRACTION = {
  aorta: 1,
  ivc: 0.75,
  heart: 0.9,
  muscle: 0.05,
  liver: 0.25,
  kidney: 0.8,
  /** Marrow blood volume: contrast-enhanced scans read ~5-15 mg/cm3 higher (Pickhardt et al. 2011). */
  trabecular: 0.055,
  fat: 0.005,
  skin: 0.06,
  disc: 0.02,
} as const;

export interface ScannerState {
  scanner: ScannerModel;
  kvp: number;
  /** Effective energy for water-like tissues (after the scanner's water beam-hardening correction). */
  energyKev: number;
  /** Effective energy the bone mineral sees in this patient (residual beam hardening). */
  boneEnergyKev: number;
  /** Global water-calibration drift, HU: shifts every material but air. */
  waterOffsetHu: number;
  airOffsetHu: number;
  /** The calibration line at the phantom's position: HU = intercept + slope * vBMD. */
  slope: number;
  intercept: number;
  tissue: TissueHu;
  contrast: ContrastState;
}

export function drawScannerState(rng: Rng, kvp: number, contrast: boolean, scanner: ScannerModel, waterEquivalentDiameterMm: number): ScannerState {
  const energyKev = effectiveEnergyKev(kvp, scanner.filtrationShiftKev + rng.normal(0, 0.5));
  const boneEnergyKev = energyKev + scanner.bhUnderCorrectionKevPerMm * (waterEquivalentDiameterMm - 265);
  const comp = drawComposition(rng);
  // CT number of water drifts within the +-4-5 HU that acceptance testing allows.
  const waterOffsetHu = rng.clampedNormal(0, 3.5, -8, 8);
  const airOffsetHu = rng.clampedNormal(0, 3, -8, 8);
  const hu = (m: { rhoE: number; z: number }): number => materialHu(m.rhoE, m.z, energyKev) + waterOffsetHu;
  const slope = k2hpo4SlopeHuPerMg(boneEnergyKev);
  // Base material of a K2HPO4 phantom reads a few HU above water, more at low kVp; makes differ.
  const pw = zDependentShare(boneEnergyKev);
  const intercept = 2 + 60 * (pw - 0.06) + scanner.phantomBaseOffsetHu + waterOffsetHu;
  const tissue: TissueHu = {
    air: -1000 + airOffsetHu,
    fat: hu(comp.fat),
    muscle: hu(comp.muscle),
    blood: hu(comp.blood),
    skin: hu(comp.skin),
    liver: hu(comp.liver),
    kidney: hu(comp.kidney),
    disc: hu(comp.disc),
    csf: hu(comp.csf),
    lung: hu(comp.lung),
    // Compact cortex of a vertebral shell, ~750-900 mg/cm3 K2HPO4-equivalent.
    cortical: intercept + slope * rng.range(750, 900),
  };
  const iodineMgMl = contrast ? rng.range(4, 9) : 0;
  return {
    scanner,
    kvp,
    energyKev,
    boneEnergyKev,
    waterOffsetHu,
    airOffsetHu,
    slope,
    intercept,
    tissue,
    contrast: { enabled: contrast, iodineMgMl, huPerMgMl: iodineHuPerMgMl(energyKev) },
  };
}

/** Extra HU from iodine for a tissue with the given enhancement fraction. */
export function enhancementHu(s: ScannerState, fraction: number): number {
  return s.contrast.enabled ? s.contrast.iodineMgMl * s.contrast.huPerMgMl * fraction : 0;
}
