import type { VbmdReport } from '../bmd/report.js';
import { patientMmToVoxel, type Volume } from '../imaging/volume.js';
import { drawText, fillRect, textWidth, type Rgb, type RgbImage } from './bitmap-font.js';
import { DCM, SOP_CLASS, codeItem } from './codes.js';
import { commonModules, dicomDateTimeUtc, writePart10, type Dataset, type DicomObject } from './part10.js';
import type { LevelRoi } from './roi-masks.js';
import type { SourceInstance, SourceSeries } from './source-series.js';
import type { OutputUids } from './uids.js';

/**
 * The key image for viewers that show neither SR nor SEG: a curved sagittal reformat through the vertebral
 * body centres (each image row samples the patient's left-right position interpolated between the level
 * centres, so a scoliotic spine stays in the plane), bone window, the ROIs drawn in colour (the ROI each
 * vBMD was read on filled, the geometric ROI outlined when the model's gave the value), and the values
 * written beside them. No patient identifiers are drawn (BurnedInAnnotation NO).
 */
const PIXEL_MM = 0.75;
const HALF_WIDTH_AP_MM = 110;
const SCALE = 2;
const LINE = 11 * SCALE;
/** Bone window (W 1500 / L 300 HU): trabecular bone, cortex and soft tissue all distinguishable. */
const WINDOW_LOW_HU = 300 - 750;
const WINDOW_HIGH_HU = 300 + 750;
const GREEN: Rgb = [60, 220, 90];
const ORANGE: Rgb = [255, 150, 40];
const CYAN: Rgb = [70, 200, 255];
const WHITE: Rgb = [240, 240, 240];
const YELLOW: Rgb = [255, 230, 80];

function trilinear(volume: Volume, x: number, y: number, z: number): number {
  const [nx, ny, nz] = volume.dims;
  const v = patientMmToVoxel(volume, [x, y, z]);
  const i0 = Math.floor(v[0]);
  const j0 = Math.floor(v[1]);
  const k0 = Math.floor(v[2]);
  let acc = 0;
  for (let c = 0; c < 8; c++) {
    const i = Math.min(nx - 1, Math.max(0, i0 + (c & 1)));
    const j = Math.min(ny - 1, Math.max(0, j0 + ((c >> 1) & 1)));
    const k = Math.min(nz - 1, Math.max(0, k0 + ((c >> 2) & 1)));
    const w = (c & 1 ? v[0] - i0 : 1 - (v[0] - i0)) * ((c >> 1) & 1 ? v[1] - j0 : 1 - (v[1] - j0)) * ((c >> 2) & 1 ? v[2] - k0 : 1 - (v[2] - k0));
    acc += w * volume.hu[i + nx * (j + ny * k)];
  }
  return acc;
}

function nearestIndex(volume: Volume, x: number, y: number, z: number): number {
  const [nx, ny, nz] = volume.dims;
  const v = patientMmToVoxel(volume, [x, y, z]).map(Math.round);
  if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[0] >= nx || v[1] >= ny || v[2] >= nz) return -1;
  return v[0] + nx * (v[1] + ny * v[2]);
}

/** Patient extent along z (mm) and the left-right position of the plane at each height. */
function planeGeometry(volume: Volume, report: VbmdReport): { zTop: number; zBottom: number; yCentre: number; xAt: (z: number) => number } {
  const corners = [0, 1].flatMap((a) => [0, 1].flatMap((b) => [0, 1].map((c) => [a * (volume.dims[0] - 1), b * (volume.dims[1] - 1), c * (volume.dims[2] - 1)])));
  const zs = corners.map(([i, j, k]) => volume.originMm[2] + i * volume.spacingMm[0] * volume.direction[0][2] + j * volume.spacingMm[1] * volume.direction[1][2] + k * volume.spacingMm[2] * volume.direction[2][2]);
  const centres = report.levels.map((l) => l.centerMm).sort((a, b) => a[2] - b[2]);
  const mid = (volume.dims.map((d) => (d - 1) / 2) as [number, number, number]);
  const fallback = [0, 1, 2].map((a) => volume.originMm[a] + mid[0] * volume.spacingMm[0] * volume.direction[0][a] + mid[1] * volume.spacingMm[1] * volume.direction[1][a] + mid[2] * volume.spacingMm[2] * volume.direction[2][a]);
  const xAt = (z: number): number => {
    if (centres.length === 0) return fallback[0];
    if (z <= centres[0][2]) return centres[0][0];
    for (let n = 1; n < centres.length; n++) {
      if (z <= centres[n][2]) {
        const t = (z - centres[n - 1][2]) / (centres[n][2] - centres[n - 1][2] || 1);
        return centres[n - 1][0] + t * (centres[n][0] - centres[n - 1][0]);
      }
    }
    return centres[centres.length - 1][0];
  };
  const yCentre = centres.length ? centres.reduce((a, c) => a + c[1], 0) / centres.length : fallback[1];
  return { zTop: Math.max(...zs), zBottom: Math.min(...zs), yCentre, xAt };
}

function levelText(report: VbmdReport, level: string): { text: string; colour: Rgb } {
  const l = report.levels.find((x) => x.level === level)!;
  // A missing number reads "no value", as in the SMART app (smart-app/src/format.ts), never "NaN".
  const value = l.vbmd === null || !Number.isFinite(l.vbmd) ? 'no value' : `${l.vbmd.toFixed(1)} mg/cm3`;
  return l.included ? { text: `${l.level} ${value}`, colour: GREEN } : { text: `${l.level} ${value} excluded: ${l.exclusionReason ?? 'not measurable'}`, colour: ORANGE };
}

/** The text burnt into the key image beside the reformat, line by line (exported so tests read the words). */
export function headerLines(report: VbmdReport): { text: string; colour: Rgb }[] {
  const s = report.summary;
  const lines = [
    { text: 'vBMD (QCT, opportunistic CT) - AI result', colour: WHITE },
    { text: s.vbmd === null || !Number.isFinite(s.vbmd) ? 'Summary: indeterminate' : `Summary ${s.vbmd.toFixed(1)} mg/cm3 (${s.levels.join('+')})`, colour: YELLOW },
    { text: `ACR category: ${s.category} (${s.basis})`, colour: YELLOW },
    { text: `Calibration: ${report.calibration.method}${report.calibration.uncalibrated ? ' (uncalibrated)' : ''}`, colour: WHITE },
    { text: `${report.software?.name ?? 'vbmd'} ${report.software?.version ?? ''}${report.model ? `, model ${report.model.version}` : ', no model'}`, colour: WHITE },
    { text: 'green: ROI of the value; cyan: geometric ROI', colour: WHITE },
    { text: '', colour: WHITE },
  ];
  for (const l of report.levels) lines.push(levelText(report, l.level));
  return lines;
}

export function renderKeyImage(report: VbmdReport, volume: Volume, rois: readonly LevelRoi[]): RgbImage {
  const g = planeGeometry(volume, report);
  const imageW = Math.round((2 * HALF_WIDTH_AP_MM) / PIXEL_MM);
  const imageH = Math.round((g.zTop - g.zBottom) / PIXEL_MM) + 1;
  const lines = headerLines(report);
  const panelW = Math.max(...lines.map((l) => textWidth(l.text, SCALE))) + 24;
  const height = Math.max(imageH, lines.length * LINE + 2 * LINE);
  const img: RgbImage = { width: imageW + panelW, height, rgb: new Uint8Array((imageW + panelW) * height * 3) };
  const owner = new Map<number, number>();
  rois.forEach((r, n) => r.voxels.forEach((v) => owner.set(v * 4 + (r.kind === 'model' ? 0 : 1), n)));
  const roiAt = new Int16Array(imageW * imageH).fill(-1);
  const roiAtGeo = new Int16Array(imageW * imageH).fill(-1);
  for (let row = 0; row < imageH; row++) {
    const z = g.zTop - row * PIXEL_MM;
    const x = g.xAt(z);
    for (let col = 0; col < imageW; col++) {
      const y = g.yCentre - HALF_WIDTH_AP_MM + col * PIXEL_MM;
      const hu = trilinear(volume, x, y, z);
      const grey = Math.round((255 * (Math.min(WINDOW_HIGH_HU, Math.max(WINDOW_LOW_HU, hu)) - WINDOW_LOW_HU)) / (WINDOW_HIGH_HU - WINDOW_LOW_HU));
      fillRect(img, col, row, 1, 1, [grey, grey, grey]);
      const idx = nearestIndex(volume, x, y, z);
      if (idx >= 0) {
        roiAt[row * imageW + col] = owner.get(idx * 4) ?? -1;
        roiAtGeo[row * imageW + col] = owner.get(idx * 4 + 1) ?? -1;
      }
    }
  }
  drawRois(img, imageW, imageH, roiAt, rois, report, true);
  drawRois(img, imageW, imageH, roiAtGeo, rois, report, false);
  labelRois(img, imageW, imageH, roiAt, roiAtGeo, rois);
  lines.forEach((l, n) => drawText(img, l.text, imageW + 12, LINE + n * LINE, l.colour, SCALE));
  drawText(img, 'A', 6, 6, WHITE, SCALE);
  drawText(img, 'P', imageW - 6 - textWidth('P', SCALE), 6, WHITE, SCALE);
  return img;
}

function drawRois(img: RgbImage, w: number, h: number, at: Int16Array, rois: readonly LevelRoi[], report: VbmdReport, fill: boolean): void {
  for (let row = 0; row < h; row++) {
    for (let col = 0; col < w; col++) {
      const r = at[row * w + col];
      if (r < 0) continue;
      const level = report.levels.find((l) => l.level === rois[r].level)!;
      const reported = (level.roiSource ?? 'geometric') === rois[r].kind;
      const colour = !reported ? CYAN : level.included ? GREEN : ORANGE;
      const edge = row === 0 || col === 0 || row === h - 1 || col === w - 1 || at[(row - 1) * w + col] !== r || at[(row + 1) * w + col] !== r || at[row * w + col - 1] !== r || at[row * w + col + 1] !== r;
      const o = 3 * (row * img.width + col);
      if (edge) fillRect(img, col, row, 1, 1, colour);
      else if (fill && reported) for (let c = 0; c < 3; c++) img.rgb[o + c] = Math.round(0.6 * img.rgb[o + c] + 0.4 * colour[c]);
    }
  }
}

/** Level name to the anterior side of each level's ROI, at its height. */
function labelRois(img: RgbImage, w: number, h: number, at: Int16Array, atGeo: Int16Array, rois: readonly LevelRoi[]): void {
  const done = new Set<string>();
  for (let row = 0; row < h; row++) {
    for (let col = 0; col < w; col++) {
      const r = at[row * w + col] >= 0 ? at[row * w + col] : atGeo[row * w + col];
      if (r < 0 || done.has(rois[r].level)) continue;
      done.add(rois[r].level);
      const label = rois[r].level;
      drawText(img, label, Math.max(0, col - textWidth(label, SCALE) - 16), row, WHITE, SCALE);
    }
  }
}

/** Secondary Capture Image (PS3.3 A.8.1) holding the rendered key image, RGB, derived from the source CT. */
export function buildKeyImage(
  report: VbmdReport,
  volume: Volume,
  source: SourceSeries,
  referenced: readonly SourceInstance[],
  rois: readonly LevelRoi[],
  uids: OutputUids,
  createdAt: Date,
): DicomObject {
  const img = renderKeyImage(report, volume, rois);
  const { date, time } = dicomDateTimeUtc(createdAt);
  const pixels = img.rgb.length % 2 ? Uint8Array.from([...img.rgb, 0]) : img.rgb;
  const dataset: Dataset = {
    ...commonModules(source, report, {
      sopClassUid: SOP_CLASS.secondaryCapture,
      sopInstanceUid: uids.keyImage,
      seriesInstanceUid: uids.keyImageSeries,
      modality: 'OT',
      seriesNumber: 9802,
      seriesDescription: 'vBMD key image (AI)',
      createdAt,
    }),
    // The spine is not a paired body part, so General Series Laterality (Type 2C) does not apply.
    BodyPartExamined: 'SPINE',
    ConversionType: 'WSD',
    InstanceNumber: '1',
    PatientOrientation: ['P', 'F'],
    ContentDate: date,
    ContentTime: time,
    ImageType: ['DERIVED', 'SECONDARY'],
    DerivationDescription: 'Curved sagittal reformat through the vertebral body centres, bone window (W1500 L300), vBMD ROIs and values burnt in',
    SourceImageSequence: referenced.slice(0, 64).map((i) => ({
      ReferencedSOPClassUID: i.sopClassUid,
      ReferencedSOPInstanceUID: i.sopInstanceUid,
      PurposeOfReferenceCodeSequence: [codeItem(DCM.sourceImageForProcessing)],
    })),
    BurnedInAnnotation: 'NO',
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    Rows: img.height,
    Columns: img.width,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    PixelData: [pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.byteLength)],
    _vrMap: { PixelData: 'OB' },
  };
  return { kind: 'key-image', sopClassUid: SOP_CLASS.secondaryCapture, sopInstanceUid: uids.keyImage, seriesInstanceUid: uids.keyImageSeries, bytes: writePart10(dataset) };
}
