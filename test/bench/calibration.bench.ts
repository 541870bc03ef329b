import { calibrate, hounsfieldToVbmd } from '../../src/bmd/calibration/index.js';
import { generatePhantom } from '../../src/research/phantom/index.js';
import { median, sampleCylinder } from '../phantom/roi.js';

/**
 * Calibration error on phantoms, ROI at the truth centres (so only calibration error, not spine finding):
 * vBMD from the true line (known), from calibrate() (phantomless internal) and from the nominal line.
 * `npm run bench -- calibration [N] [firstSeed]`; every 5th phantom is contrast-enhanced.
 */
const N = Number(process.argv[2] ?? 20);
const seed0 = Number(process.argv[3] ?? 9000);
type Row = { truth: number; known: number; internal: number; nominal: number; contrast: boolean };
const rows: Row[] = [];
const t0 = performance.now();
for (let s = 0; s < N; s++) {
  const contrast = s % 5 === 0;
  const p = generatePhantom({ seed: seed0 + s, size: 256, pixelSpacingMm: 400 / 256, sliceThicknessMm: 2, levels: 'T11-L3', contrast });
  const lv = p.truth.levels.filter((l) => l.fullyCovered);
  const cal = calibrate({ loaded: p.loaded, vertebralBodyCentersMm: lv.map((l) => l.centerMm) });
  const nom = calibrate({ loaded: p.loaded, vertebralBodyCentersMm: [] });
  for (const l of lv) {
    const hu = median(sampleCylinder(p.loaded.volume, l.centerMm, Math.min(l.halfWidthMm, l.halfDepthMm) * 0.5, 3));
    rows.push({ contrast, truth: l.vbmdMgCm3, known: hounsfieldToVbmd(hu, p.truth.calibration), internal: hounsfieldToVbmd(hu, cal), nominal: hounsfieldToVbmd(hu, nom) });
  }
}
const rank = (xs: number[]): number[] => {
  const idx = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(xs.length);
  idx.forEach(([, i], k) => (r[i] = k));
  return r;
};
const pearson = (a: number[], b: number[]): number => {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
};
for (const [group, sel] of [['all', rows], ['no contrast', rows.filter((r) => !r.contrast)], ['contrast', rows.filter((r) => r.contrast)]] as const) {
  for (const k of ['known', 'internal', 'nominal'] as const) {
    if (sel.length === 0) continue;
    const err = sel.map((r) => r[k] - r.truth);
    const mae = err.reduce((s, e) => s + Math.abs(e), 0) / err.length;
    const bias = err.reduce((s, e) => s + e, 0) / err.length;
    const rho = pearson(rank(sel.map((r) => r.truth)), rank(sel.map((r) => r[k])));
    console.log(`${group.padEnd(12)} ${k.padEnd(9)} n=${sel.length} MAE ${mae.toFixed(2)} bias ${bias.toFixed(2)} max ${Math.max(...err.map(Math.abs)).toFixed(1)} Spearman ${rho.toFixed(4)} mg/cm3`);
  }
}
console.log(`${N} phantoms in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
