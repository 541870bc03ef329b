/**
 * Whether a rate of change mixes contrast-enhanced and other CTs. Iodinated contrast raises trabecular
 * attenuation (vBMD reads higher), so a slope across both kinds is partly contrast, not bone: the card and
 * the app say so next to the rate (src/fhir/result-words.ts contrastMixWords). "Other" includes scans whose
 * contrast is not recorded: they cannot be counted as non-contrast.
 */
export interface ContrastMix {
  contrast: number;
  other: number;
  mixed: boolean;
}

export function contrastMix(points: readonly { tMs: number; contrastEnhanced: boolean | null | undefined }[], fromMs: number, toMs: number): ContrastMix {
  let contrast = 0;
  let other = 0;
  for (const p of points) {
    if (p.tMs < fromMs || p.tMs > toMs) continue;
    if (p.contrastEnhanced === true) contrast++;
    else other++;
  }
  return { contrast, other, mixed: contrast > 0 && other > 0 };
}
