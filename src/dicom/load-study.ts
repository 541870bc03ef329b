import { assembleVolume, type AssembleOptions } from './assemble-volume.js';
import type { LoadedVolume } from '../imaging/volume.js';
import { chooseSeries, type SeriesChoiceCandidate, type SeriesChoiceOptions } from './series-choice.js';
import type { DicomSource, LoadOptions, SeriesCandidate, StudyRef } from './source.js';
import { VbmdError, isVbmdError } from '../util/errors.js';

export interface LoadStudyOptions extends LoadOptions, SeriesChoiceOptions {
  missingSlices?: AssembleOptions['missingSlices'];
  /** Volume kind for meta; default 'dicom' (a DICOMweb source passes 'dicomweb'). */
  kind?: AssembleOptions['kind'];
  /** The study's series as a search already found them: series choice runs on these, nothing is asked again. */
  series?: SeriesCandidate[];
}

/**
 * One study from any DicomSource to a HU volume: find its series, choose one (DESIGN.md "Series choice"),
 * load that series' slices and assemble them. Either a complete LoadedVolume or a VbmdError; nothing
 * half-built is returned or kept.
 */
export async function loadStudyVolume(source: DicomSource, ref: StudyRef, opts: LoadStudyOptions = {}): Promise<LoadedVolume> {
  try {
    return await loadChosen(source, ref, opts);
  } catch (e) {
    // An abort surfaces as the signal's reason (a DOMException): give the caller a typed, plain sentence.
    if (opts.signal?.aborted && !isVbmdError(e)) {
      throw new VbmdError('cancelled', `Loading ${describe(source, ref)} was cancelled.`, {}, { cause: e });
    }
    throw e;
  }
}

async function loadChosen(source: DicomSource, ref: StudyRef, opts: LoadStudyOptions): Promise<LoadedVolume> {
  const candidates = opts.series ?? (await source.findSeries(ref, opts));
  const choice = chooseSeries(candidates, describe(source, ref), opts);
  opts.signal?.throwIfAborted();
  const assembleOpts: AssembleOptions = { missingSlices: opts.missingSlices, kind: opts.kind, skippedSeries: choice.skipped };
  let loaded: LoadedVolume;
  if (canStreamVolume(source)) {
    loaded = await source.loadVolume(choice.chosen, { ...assembleOpts, signal: opts.signal });
  } else {
    const slices = await source.loadSlices(choice.chosen, opts);
    opts.signal?.throwIfAborted();
    loaded = assembleVolume(slices, source.description, assembleOpts);
  }
  if (choice.warnings.length > 0) loaded.meta.warnings = [...choice.warnings, ...(loaded.meta.warnings ?? [])];
  return loaded;
}

/** A source that can decode a series straight into a volume (FolderDicomSource) instead of a slice list. */
export interface VolumeStreamingSource extends DicomSource {
  loadVolume(series: SeriesChoiceCandidate, options?: LoadOptions & AssembleOptions): Promise<LoadedVolume>;
}

function canStreamVolume(source: DicomSource): source is VolumeStreamingSource {
  return typeof (source as Partial<VolumeStreamingSource>).loadVolume === 'function';
}

function describe(source: DicomSource, ref: StudyRef): string {
  // Identifiers only (UIDs, accession), never patient names.
  const what = ref.studyInstanceUid ? `study ${ref.studyInstanceUid}` : ref.accessionNumber ? `accession ${ref.accessionNumber}` : undefined;
  return what ? `${what} in ${source.description}` : source.description;
}
