/**
 * Reference values for calibration without a phantom in the scan.
 *
 * Nominal K2HPO4 lines (trabecular HU = intercept + slope * mg/cm3) by tube voltage: representative of
 * published K2HPO4 (Cann-Genant / Mindways type) calibrations, whose slope falls with kVp (~1.5 HU per
 * mg/cm3 at 80 kVp, ~1.2 at 120 kVp, ~1.1 at 140 kVp) while the intercept stays within a few HU of water.
 * They are what a site without its own calibration gets, flagged `uncalibrated`; scanner-to-scanner
 * differences of several percent in slope and +-10 HU in intercept are why the result is flagged.
 *
 * Internal (phantomless) calibration follows the "equivalent density" approach (Boden et al., J Digit
 * Imaging 1989;2:31-38: paraspinal muscle and subcutaneous fat as internal references; Mueller et al.,
 * Eur J Radiol 2011;79:375-381: phantom-less QCT from air, fat, muscle and blood; Lee et al., Bone
 * 2017;103:325-333: phantomless calibration from air and blood/fat; Michalski et al., Med Eng Phys
 * 2020;78:55-63: air, adipose, blood and muscle in abdominal CT. Citations as recalled by the author; the
 * numbers below are representative values, not copied from one table of one paper):
 * each tissue has a K2HPO4-equivalent density, i.e. what a phantom-calibrated QCT reads for it at that
 * kVp. Here that density is derived from the tissue's typical HU in the CT literature (subcutaneous fat
 * -90 to -110 HU at 120 kVp and more negative at low kVp; normal paraspinal muscle ~45-55 HU; unenhanced
 * blood 40-45 HU at normal haematocrit; air -1000 by scanner definition) through the nominal line. These
 * are population values: a person's fat, muscle (fatty infiltration) and blood (haematocrit) differ from
 * them, which is the irreducible error of the method (~6-9 mg/cm3 reported against phantoms).
 */
export interface KvpReference {
  kvp: number;
  nominalSlope: number;
  nominalIntercept: number;
  airHu: number;
  fatHu: number;
  muscleHu: number;
  bloodHu: number;
}

export const KVP_REFERENCES: readonly KvpReference[] = [
  { kvp: 80, nominalSlope: 1.5, nominalIntercept: 5, airHu: -1000, fatHu: -120, muscleHu: 55, bloodHu: 47 },
  { kvp: 100, nominalSlope: 1.31, nominalIntercept: 3, airHu: -1000, fatHu: -108, muscleHu: 51, bloodHu: 44 },
  { kvp: 120, nominalSlope: 1.2, nominalIntercept: 2, airHu: -1000, fatHu: -100, muscleHu: 49, bloodHu: 42 },
  { kvp: 140, nominalSlope: 1.12, nominalIntercept: 1.5, airHu: -1000, fatHu: -94, muscleHu: 47, bloodHu: 41 },
];

/** Assumed when the series does not say its kVp (the commonest body CT setting). */
export const DEFAULT_KVP = 120;

/** Linear interpolation in kVp, clamped to the table's range. */
export function referenceForKvp(kvp: number): KvpReference {
  const t = KVP_REFERENCES;
  if (kvp <= t[0].kvp) return { ...t[0], kvp };
  if (kvp >= t[t.length - 1].kvp) return { ...t[t.length - 1], kvp };
  let i = 0;
  while (t[i + 1].kvp < kvp) i++;
  const a = t[i];
  const b = t[i + 1];
  const f = (kvp - a.kvp) / (b.kvp - a.kvp);
  const l = (x: number, y: number): number => x + (y - x) * f;
  return {
    kvp,
    nominalSlope: l(a.nominalSlope, b.nominalSlope),
    nominalIntercept: l(a.nominalIntercept, b.nominalIntercept),
    airHu: l(a.airHu, b.airHu),
    fatHu: l(a.fatHu, b.fatHu),
    muscleHu: l(a.muscleHu, b.muscleHu),
    bloodHu: l(a.bloodHu, b.bloodHu),
  };
}

export type ReferenceTissue = 'air' | 'fat' | 'muscle' | 'blood';

/** K2HPO4-equivalent density (mg/cm3) of a reference tissue at this kVp: its typical HU through the nominal line. */
export function equivalentDensityMgCm3(ref: KvpReference, tissue: ReferenceTissue): number {
  const hu = tissue === 'air' ? ref.airHu : tissue === 'fat' ? ref.fatHu : tissue === 'muscle' ? ref.muscleHu : ref.bloodHu;
  return (hu - ref.nominalIntercept) / ref.nominalSlope;
}

/**
 * Person-to-person spread (SD, HU) of each reference tissue around its typical value: the fit weights each
 * point by 1/SD^2, so the tightest references count most. Air is fixed by the scanner's calibration (a few
 * HU); blood follows haematocrit (~30-50 HU); subcutaneous fat spans ~-120..-80 HU; paraspinal muscle
 * ~35-60 HU, wider in older patients with fatty infiltration.
 */
export const TISSUE_SD_HU: Readonly<Record<ReferenceTissue, number>> = { air: 4, fat: 10, muscle: 8, blood: 5 };

/** Plausible fitted lines; outside them the internal calibration is rejected and the nominal one used. */
export const FIT_BOUNDS = { slopeRelMin: 0.8, slopeRelMax: 1.25, interceptMinHu: -40, interceptMaxHu: 40, minR2: 0.99 } as const;
