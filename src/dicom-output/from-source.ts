import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VbmdReport } from '../bmd/report.js';
import { DicomWebSource } from '../dicom/dicomweb/source.js';
import { FolderDicomSource } from '../dicom/folder-source.js';
import type { DicomSource } from '../dicom/source.js';
import { assembleVolume } from '../dicom/assemble-volume.js';
import type { LoadedVolume, Volume } from '../imaging/volume.js';
import type { VolumeStreamingSource } from '../dicom/load-study.js';
import { VbmdError } from '../util/errors.js';
import { buildDicomOutputs, type DicomOutputs } from './build.js';
import { fetchSourceSeries, sourceSeriesFromFiles, type SourceSeries } from './source-series.js';

/**
 * The analysed series read again from its DicomSource for the result objects: its voxels (for the SEG grid
 * and the key image) and its instances and study attributes (WADO-RS metadata, or the files' headers). Read
 * again rather than handed over from the analysis, so sending results can be retried, or done later, without
 * analysing again.
 */
export interface AnalysedSeries {
  volume: Volume;
  source: SourceSeries;
}

function streaming(source: DicomSource): VolumeStreamingSource | undefined {
  return typeof (source as Partial<VolumeStreamingSource>).loadVolume === 'function' ? (source as VolumeStreamingSource) : undefined;
}

/** The analysed series' volume and source attributes; `analysed` (the volume the analysis measured, same
 * series) spares retrieving the pixels again. */
export async function readAnalysedSeries(report: VbmdReport, dicom: DicomSource, signal?: AbortSignal, analysed?: LoadedVolume): Promise<AnalysedSeries> {
  const studyUid = report.input.studyInstanceUid;
  const seriesUid = report.input.seriesInstanceUid;
  if (!studyUid || !seriesUid || (report.input.kind !== 'dicom' && report.input.kind !== 'dicomweb')) {
    throw new VbmdError('unsupported', `DICOM results need a DICOM source series to reference; this report is of a ${report.input.kind} input${studyUid ? '' : ' without a StudyInstanceUID'}.`);
  }
  const kept = analysed?.meta.seriesInstanceUid === seriesUid ? analysed : undefined;
  const candidate = kept ? undefined : (await dicom.findSeries({ studyInstanceUid: studyUid }, { signal })).find((s) => s.seriesInstanceUid === seriesUid);
  if (!kept && !candidate) throw new VbmdError('not-found', `Series ${seriesUid} of study ${studyUid} is no longer in ${dicom.description}; its DICOM results cannot be made.`);
  let source: SourceSeries;
  if (dicom instanceof DicomWebSource) source = await fetchSourceSeries(dicom.client, studyUid, seriesUid, signal);
  else if (dicom instanceof FolderDicomSource) {
    const files = (await dicom.findSeries({ studyInstanceUid: studyUid })).find((s) => s.seriesInstanceUid === seriesUid)?.files ?? [];
    source = await sourceSeriesFromFiles(files, `series ${seriesUid} in ${dicom.description}`);
  } else throw new VbmdError('unsupported', `DICOM results can be made from a DICOMweb or folder source, not from ${dicom.description}.`);
  if (kept) return { volume: kept.volume, source };
  const stream = streaming(dicom);
  const loaded = stream ? await stream.loadVolume(candidate!, { signal }) : assembleVolume(await dicom.loadSlices(candidate!, { signal }), dicom.description);
  return { volume: loaded.volume, source };
}

/** Reads the series again and builds the SR, SEG and key image. */
export async function buildFromSource(report: VbmdReport, dicom: DicomSource, createdAt: Date, signal?: AbortSignal, analysed?: LoadedVolume): Promise<{ series: AnalysedSeries; outputs: DicomOutputs }> {
  const series = await readAnalysedSeries(report, dicom, signal, analysed);
  return { series, outputs: buildDicomOutputs({ report, volume: series.volume, source: series.source, createdAt }) };
}

/** `vbmd analyze --dicom-out DIR`: the three objects as Part-10 files; returns their paths. */
export async function writeDicomOutputs(outputs: DicomOutputs, dir: string): Promise<string[]> {
  try {
    await mkdir(dir, { recursive: true });
    const paths: string[] = [];
    for (const [name, o] of [['sr', outputs.sr], ['seg', outputs.seg], ['key-image', outputs.keyImage]] as const) {
      const path = join(dir, `vbmd-${name}.dcm`);
      await writeFile(path, o.bytes);
      paths.push(path);
    }
    return paths;
  } catch (e) {
    throw new VbmdError('bad-input', `Cannot write the DICOM results to ${dir}: ${(e as Error).message}.`);
  }
}
