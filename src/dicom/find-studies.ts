import { isVbmdError } from '../util/errors.js';
import type { DicomSource, FoundStudy, LoadOptions, StudyRef } from './source.js';

/**
 * The studies with an accession number or study UID, each with its patient identity and series: from the
 * source's one search when it has one (DICOMweb), else from its series listing and each study's header (a
 * folder, read locally). [] when the source has no such study (yet).
 */
export async function findStudies(source: DicomSource, ref: Pick<StudyRef, 'studyInstanceUid' | 'accessionNumber'>, signal?: AbortSignal): Promise<FoundStudy[]> {
  const options: LoadOptions = signal ? { signal } : {};
  if (source.studiesWithSeries) return source.studiesWithSeries(ref, options);
  let series: Awaited<ReturnType<DicomSource['findSeries']>>;
  try {
    series = await source.findSeries(ref, options);
  } catch (e) {
    // "No such study" only means "not yet" to a caller waiting for it.
    if (isVbmdError(e) && e.code === 'not-found') return [];
    throw e;
  }
  const out: FoundStudy[] = [];
  for (const uid of new Set(series.map((s) => s.studyInstanceUid))) {
    // A study whose header says nothing of its patient is still found: the patient check then holds it.
    const identity = (await source.studyIdentity(uid, options)) ?? {};
    out.push({ studyInstanceUid: uid, identity, series: series.filter((s) => s.studyInstanceUid === uid) });
  }
  return out;
}
