import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAnalysis } from '../../src/analysis/run-analysis.js';
import type { VbmdReport } from '../../src/bmd/report.js';
import { buildDicomOutputs, type DicomOutputs } from '../../src/dicom-output/build.js';
import { readAnalysedSeries, type AnalysedSeries } from '../../src/dicom-output/from-source.js';
import { geometricRoiVoxels } from '../../src/dicom-output/roi-masks.js';
import { FolderDicomSource } from '../../src/dicom/folder-source.js';
import { VERTEBRA_SNOMED } from '../../src/fhir/codes.js';
import { DEFAULT_MODEL_FILE } from '../../src/model/model-file.js';
import { ModelRunner } from '../../src/model/model-runner.js';
import { decodeRoiMask, encodeRoiMask } from '../../src/model/roi-mask-codec.js';
import { generatePhantom, writePhantom } from '../../src/research/phantom/index.js';
import { tempDir } from '../dicom/synthetic-series.js';
import { dciodvfy, dsrdump } from '../support/dicom-validators.js';
import { naturalize, segFrames, seq, srGroups } from './read-back.js';

/**
 * The SR, SEG and key image of a real analysis (phantom CT with a blastic lesion at T12, model on) checked
 * from outside: dciodvfy and dsrdump report no errors, and the values read back with dcmjs equal the report.
 */
let dir: string;
let cleanup: () => Promise<void>;
let runner: ModelRunner;
let report: VbmdReport;
let series: AnalysedSeries;
let outputs: DicomOutputs;
const createdAt = new Date('2025-03-04T05:06:07Z');

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('dicom-output'));
  const phantom = generatePhantom({ seed: 1515, levels: 'T11-L3', size: 224, sliceThicknessMm: 1.5, kvp: 120, lesions: [{ level: 'T12', kind: 'blastic' }] });
  const written = await writePhantom(join(dir, 'phantom'), phantom);
  runner = await ModelRunner.start({ file: DEFAULT_MODEL_FILE });
  report = await runAnalysis({ path: written.dicomDir }, { model: runner });
  series = await readAnalysedSeries(report, new FolderDicomSource(written.dicomDir));
  outputs = buildDicomOutputs({ report, volume: series.volume, source: series.source, createdAt });
  for (const o of [outputs.sr, outputs.seg, outputs.keyImage]) writeFileSync(join(dir, `${o.kind}.dcm`), o.bytes);
}, 180_000);

afterAll(async () => {
  await runner?.close();
  await cleanup?.();
});

describe('DICOM results of one analysis', () => {
  it('are valid for dciodvfy (SR, SEG, SC) and dsrdump (SR)', () => {
    for (const [kind, iod] of [['sr', 'ComprehensiveSR'], ['seg', 'Segmentation'], ['key-image', 'SCImage']] as const) {
      const v = dciodvfy(join(dir, `${kind}.dcm`));
      expect(v.iod, kind).toBe(iod);
      expect(v.errors, kind).toEqual([]);
    }
    const d = dsrdump(join(dir, 'sr.dcm'));
    expect(d.status).toBe(0);
    expect(d.errors).toEqual([]);
    expect(d.text).toContain('Imaging Measurement Report');
  });

  it('SR values read back equal the report, level by level, with the summary and calibration', () => {
    const sr = naturalize(outputs.sr.bytes);
    expect(seq(sr, 'ContentTemplateSequence')[0]?.TemplateIdentifier).toBe('1500');
    const groups = srGroups(sr);
    // At least one excluded level (the lesion or the partly covered end level), so the exclusion path is read.
    expect(report.levels.some((l) => !l.included && l.exclusionReason !== null)).toBe(true);
    for (const l of report.levels) {
      const model = groups.find((g) => g.trackingId === `${l.level} trabecular ROI (model)`);
      const geo = groups.find((g) => g.trackingId === `${l.level} trabecular ROI (geometric)`)!;
      expect(geo.findingSite, l.level).toBe(VERTEBRA_SNOMED[l.level]);
      const hu = geo.nums.filter((n) => n.concept === '112031');
      expect(hu.find((n) => n.derivation === '373099004')?.value).toBe(l.roiHuMedian);
      expect(hu.find((n) => n.derivation === '373098007')?.value).toBe(l.roiHuMean);
      const [sx, sy, sz] = report.input.spacingMm;
      expect(geo.nums.find((n) => n.concept === '118565006')!.value).toBeCloseTo(l.roiVoxels * sx * sy * sz, 1);
      const reported = l.roiSource === 'model' ? model! : geo;
      const v = reported.nums.find((n) => n.concept === 'VBMD-QCT');
      expect(v?.value ?? null, l.level).toBe(l.vbmd);
      if (v) {
        expect(v.unit).toBe('mg/cm3');
        expect(v.algorithm.join(' ')).toContain(l.roiSource === 'model' ? report.model!.version : report.software!.version);
      }
      expect(reported.codes['LEVEL-INCLUDED']).toBe(l.included ? '373066001' : '373067005');
      if (!l.included) expect(reported.texts['EXCL-REASON']?.[0]).toContain(l.exclusionReason!);
      if (l.roiSource === 'model') expect(geo.nums.find((n) => n.concept === 'VBMD-QCT')?.value ?? null).toBe(l.geometricVbmd ?? null);
    }
    const summary = groups.find((g) => g.trackingId === 'vBMD summary')!;
    expect(summary.nums.find((n) => n.concept === 'VBMD-QCT')?.value ?? null).toBe(report.summary.vbmd);
    expect(summary.texts['LEVELS-USED']).toEqual([report.summary.levels.length > 0 ? report.summary.levels.join(', ') : 'none']);
    expect(summary.codes.BASIS).toBe({ lumbar: 'BASIS-LUMBAR', 'thoracic-extrapolated': 'BASIS-THORACIC', 'single-level': 'BASIS-SINGLE', none: 'BASIS-NONE' }[report.summary.basis]);
    expect(summary.codes['ACR-CATEGORY']).toBe({ normal: 'ACR-NORMAL', osteopenia: 'ACR-LOW-BMD', osteoporosis: 'ACR-OSTEOPOROSIS', indeterminate: 'ACR-INDETERMINAT' }[report.summary.category]);
    expect(summary.codes['CAL-METHOD']).toBe({ phantom: 'CAL-PHANTOM', asynchronous: 'CAL-ASYNC', 'phantomless-internal': 'CAL-INTERNAL', nominal: 'CAL-NOMINAL' }[report.calibration.method]);
    expect(summary.nums.find((n) => n.concept === 'CAL-SLOPE')!.value).toBeCloseTo(report.calibration.slope, 6);
    expect(summary.texts['QC-REMARK'] ?? []).toEqual(report.qc.warnings);
  });

  it('SR references the source series (image library, evidence) and the SEG segment of each group', () => {
    const sr = naturalize(outputs.sr.bytes);
    const evidence = seq(seq(sr, 'CurrentRequestedProcedureEvidenceSequence')[0]!, 'ReferencedSeriesSequence');
    expect(evidence.map((s) => s.SeriesInstanceUID).sort()).toEqual([report.input.seriesInstanceUid, outputs.uids.segSeries].sort());
    const segmentsByLabel = new Map(seq(naturalize(outputs.seg.bytes), 'SegmentSequence').map((s) => [String(s.SegmentLabel), Number(s.SegmentNumber)]));
    for (const g of srGroups(sr).filter((x) => x.template === '1411')) expect(g.segmentNumber).toBe(segmentsByLabel.get(g.trackingId!));
  });

  it('SEG holds exactly the voxels each value was read on, framed on the source slices', () => {
    const seg = naturalize(outputs.seg.bytes);
    expect(seg.FrameOfReferenceUID).toBe(series.source.frameOfReferenceUid);
    expect(seg.StudyInstanceUID).toBe(report.input.studyInstanceUid);
    const segments = seq(seg, 'SegmentSequence');
    const frames = segFrames(seg);
    const sources = new Set(series.source.instances.map((i) => i.sopInstanceUid));
    expect(frames.every((f) => sources.has(f.sourceSop))).toBe(true);
    for (const s of segments) {
      const count = frames.filter((f) => f.segment === s.SegmentNumber).reduce((a, f) => a + f.pixels.length, 0);
      const [level, kind] = /^(\S+) trabecular ROI \((model|geometric)\)$/.exec(String(s.SegmentLabel))!.slice(1);
      const l = report.levels.find((x) => x.level === level)!;
      // The geometric ROI is the engine's own voxel set; the model's is its 1.5 mm mask resampled on the CT grid.
      if (kind === 'geometric') expect(count, String(s.SegmentLabel)).toBe(l.roiVoxels);
      else expect(count / (l.modelRoiVoxels! * 1.5 ** 3 / report.input.spacingMm.reduce((a, b) => a * b, 1))).toBeGreaterThan(0.8);
    }
  });

  it('the geometric ROI found again equals the engine count for every level, and the model mask codec round-trips', () => {
    for (const l of report.levels) expect(geometricRoiVoxels(series.volume, l.geometricRoi!).length).toBe(l.roiVoxels);
    const mask = Float32Array.from({ length: 8 ** 3 }, (_, i) => ((i * 7919) % 13 < 5 ? 1 : -1));
    const back = decodeRoiMask(encodeRoiMask(mask, 8, 1.5));
    expect([...back]).toEqual([...mask].map((v) => (v >= 0 ? 1 : 0)));
  });

  it('key image is an RGB sagittal with the ROIs drawn in colour and no patient name burnt in', () => {
    const sc = naturalize(outputs.keyImage.bytes);
    expect(sc.PhotometricInterpretation).toBe('RGB');
    expect(sc.BurnedInAnnotation).toBe('NO');
    const rgb = new Uint8Array((sc.PixelData as ArrayBuffer[])[0]);
    let coloured = 0;
    for (let p = 0; p < Number(sc.Rows) * Number(sc.Columns); p++) if (Math.abs(rgb[3 * p] - rgb[3 * p + 1]) > 60) coloured++;
    expect(coloured).toBeGreaterThan(500);
  });

  it('an analysis without any ROI makes no objects and says why', () => {
    expect(() => buildDicomOutputs({ report: { ...report, levels: [] }, volume: series.volume, source: series.source, createdAt })).toThrow(/has no ROI \(no measurable vertebra\)/);
  });

  it('the same analysis gives the same UIDs and bytes; another analysis gets new UIDs', () => {
    const again = buildDicomOutputs({ report, volume: series.volume, source: series.source, createdAt });
    expect(again.uids).toEqual(outputs.uids);
    expect(Buffer.from(again.sr.bytes).equals(Buffer.from(outputs.sr.bytes))).toBe(true);
    expect(Buffer.from(again.seg.bytes).equals(Buffer.from(outputs.seg.bytes))).toBe(true);
    const other = buildDicomOutputs({ report: { ...report, model: { ...report.model!, version: '9.9.9' } }, volume: series.volume, source: series.source, createdAt });
    for (const k of ['sr', 'seg', 'keyImage', 'srSeries', 'segSeries', 'keyImageSeries'] as const) expect(other.uids[k]).not.toBe(outputs.uids[k]);
    expect(outputs.uids.sr).toMatch(/^2\.25\.\d{1,39}$/);
  });
});
