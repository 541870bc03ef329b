import { describe, expect, it } from 'vitest';
import { chooseSeries, type SeriesChoiceCandidate } from '../../src/dicom/series-choice.js';
import { isVbmdError } from '../../src/util/errors.js';

function cand(uid: string, over: Partial<SeriesChoiceCandidate> = {}): SeriesChoiceCandidate {
  return {
    studyInstanceUid: '1.2.3',
    seriesInstanceUid: uid,
    modality: 'CT',
    imageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
    sliceThicknessMm: 1,
    instanceCount: 300,
    ...over,
  };
}

function rejection(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isVbmdError(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected a rejection');
}

describe('chooseSeries', () => {
  it('prefers thin (<= 3 mm) slices over thick ones even when the thick series covers more', () => {
    const c = chooseSeries([cand('thick', { sliceThicknessMm: 5, instanceCount: 100 }), cand('thin', { sliceThicknessMm: 1.25, instanceCount: 240 })], 'x');
    expect(c.chosen.seriesInstanceUid).toBe('thin');
    expect(c.skipped).toEqual([{ seriesInstanceUid: 'thick', reason: 'slices thicker (5 mm) than 3 mm' }]);
    expect(c.warnings).toEqual([]);
  });

  it('prefers the soft-tissue reconstruction over a lung or bone kernel of the same slices, whichever comes first', () => {
    const lung = cand('lung', { convolutionKernel: 'B70f', seriesDescription: 'Thorax 1.0 B70f', sliceThicknessMm: 1, extentMm: 320 });
    const soft = cand('soft', { convolutionKernel: 'B31f', seriesDescription: 'Thorax 1.0 B31f', sliceThicknessMm: 1, extentMm: 320 });
    for (const order of [[lung, soft], [soft, lung]]) {
      const c = chooseSeries(order, 'x');
      expect(c.chosen.seriesInstanceUid).toBe('soft');
      expect(c.skipped[0].reason).toMatch(/sharp \(lung or bone\) reconstruction kernel \(B70f\)/);
      expect(c.warnings).toEqual([]);
    }
    // A soft-tissue kernel at 2 mm beats a GE LUNG kernel at 0.625 mm; coverage still comes first.
    expect(chooseSeries([cand('l', { convolutionKernel: 'LUNG', sliceThicknessMm: 0.625, extentMm: 300 }), cand('s', { convolutionKernel: 'STANDARD', sliceThicknessMm: 2, extentMm: 300 })], 'x').chosen.seriesInstanceUid).toBe('s');
    expect(chooseSeries([cand('l', { convolutionKernel: 'LUNG', extentMm: 450 }), cand('s', { convolutionKernel: 'STANDARD', extentMm: 200 })], 'x').chosen.seriesInstanceUid).toBe('l');
  });

  it('warns when only a sharp-kernel reconstruction is there, and reads the kernel from the description when none is recorded', () => {
    const c = chooseSeries([cand('only', { seriesDescription: 'CHEST LUNG 1.25' })], 'x');
    expect(c.chosen.seriesInstanceUid).toBe('only');
    expect(c.warnings.join(' ')).toMatch(/sharp \(lung or bone\) kernel .*vBMD is less accurate/);
    expect(chooseSeries([cand('soft', { convolutionKernel: 'Br40d\\3' })], 'x').warnings).toEqual([]);
    expect(chooseSeries([cand('fc', { convolutionKernel: 'FC52' })], 'x').warnings.join(' ')).toMatch(/sharp/);
  });

  it('among thin series prefers the best coverage, then the thinner', () => {
    const chest = cand('chest', { sliceThicknessMm: 1, extentMm: 300 });
    const abdomen = cand('abd', { sliceThicknessMm: 1, extentMm: 450 });
    expect(chooseSeries([chest, abdomen], 'x').chosen.seriesInstanceUid).toBe('abd');
    const c = chooseSeries([cand('a', { sliceThicknessMm: 2, extentMm: 400 }), cand('b', { sliceThicknessMm: 0.625, extentMm: 390 })], 'x');
    expect(c.chosen.seriesInstanceUid).toBe('b');
    expect(c.skipped[0].reason).toMatch(/thicker slices \(2 mm vs 0.625 mm\) with similar coverage/);
  });

  it('falls back to a thick series with a warning', () => {
    const c = chooseSeries([cand('thick', { sliceThicknessMm: 5, instanceCount: 60 })], 'x');
    expect(c.chosen.seriesInstanceUid).toBe('thick');
    expect(c.warnings[0]).toMatch(/thicker than 3 mm .*5 mm/);
  });

  it('skips localizers (image type or description), derived, secondary, non-axial, other modalities and short series', () => {
    const c = chooseSeries(
      [
        cand('ok'),
        cand('scout', { imageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'], instanceCount: 2 }),
        cand('topo', { imageType: [], seriesDescription: 'Topogram 0.6 T20s' }),
        cand('mpr', { imageType: ['DERIVED', 'SECONDARY', 'REFORMATTED'] }),
        cand('cor', { orientation: 'coronal' }),
        cand('pet', { modality: 'PT' }),
        cand('sr', { modality: undefined }),
        cand('short', { instanceCount: 4 }),
        cand('sc', { sopClassUid: '1.2.840.10008.5.1.4.1.1.7' }),
      ],
      'x',
    );
    expect(c.chosen.seriesInstanceUid).toBe('ok');
    const why = Object.fromEntries(c.skipped.map((s) => [s.seriesInstanceUid, s.reason]));
    expect(why.scout).toMatch(/^localizer/);
    expect(why.topo).toMatch(/^localizer/);
    expect(why.mpr).toMatch(/^derived\/secondary/);
    expect(why.cor).toBe('coronal slices, not axial');
    expect(why.pet).toBe('PT, not CT');
    expect(why.sr).toMatch(/no modality/);
    expect(why.short).toBe('too few slices (4, need at least 10)');
    expect(why.sc).toBe('secondary capture (screenshots), not CT images');
  });

  it('says what was found when nothing is usable', () => {
    expect(rejection(() => chooseSeries([cand('s', { imageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'] })], 'folder /x'))).toBe(
      'No usable axial CT series in folder /x: only a localizer (scout/topogram) was found.',
    );
    expect(rejection(() => chooseSeries([cand('m', { modality: 'MR', seriesDescription: 'T1 sag', seriesNumber: 4 })], 'folder /x'))).toBe(
      'No usable axial CT series in folder /x: found 1 series, none usable (series #4 "T1 sag": MR, not CT).',
    );
    expect(rejection(() => chooseSeries([], 'folder /x'))).toBe('No DICOM series found in folder /x.');
  });
});
