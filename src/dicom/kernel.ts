/**
 * Whether a CT series was reconstructed with a sharp (lung or bone) kernel. Edge-enhancing kernels raise image
 * noise several-fold and shift the mean HU of small trabecular regions, so opportunistic vBMD is measured on the
 * standard soft-tissue reconstruction (QCT practice: Engelke et al., J Clin Densitom 2015; kernel effects on
 * trabecular HU: Giambini et al., Eur Radiol 2015). A chest CT study usually holds both, with the same slices
 * and coverage, and only the kernel tells them apart.
 *
 * Read from Convolution Kernel (0018,1210) and the series description, vendor by vendor:
 * - words any vendor uses: LUNG, BONE (GE BONE/BONEPLUS), SHARP, EDGE, "HR" (high resolution);
 * - Siemens B/I/Br/Bl/Bv/Q kernels number their sharpness: 50 and up is a lung or bone kernel (B60f, Br64,
 *   Bl57, I70f), 20-45 a soft-tissue one (B30f, Br40, I31f);
 * - Canon/Toshiba FC50 and up are lung and bone kernels (FC51, FC52, FC30-FC35 are bone on some versions and
 *   are left undecided).
 * A kernel it cannot place (Philips letters, vendor numbers it does not know) counts as not sharp: the choice
 * then falls back to coverage and thickness as before.
 */
export function sharpKernel(convolutionKernel: string | undefined, seriesDescription?: string): boolean {
  const text = `${convolutionKernel ?? ''} ${seriesDescription ?? ''}`.toUpperCase();
  if (/\b(LUNG|LUNGS|BONE|BONEPLUS|SHARP|EDGE|HR|HIGH[ -]?RES(OLUTION)?)\b/.test(text)) return true;
  const kernels = (convolutionKernel ?? '').toUpperCase().split(/[\\,]/).map((k) => k.trim());
  for (const k of kernels) {
    const siemens = /^(B|I|BR|BL|BV|BF|BI|HR|Q)(\d{2})[A-Z]?$/.exec(k);
    if (siemens && Number(siemens[2]) >= 50) return true;
    const canon = /^FC(\d{2})$/.exec(k);
    if (canon && Number(canon[1]) >= 50) return true;
  }
  return false;
}
