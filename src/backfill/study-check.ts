import type { Observation } from 'fhir/r4.js';
import type { DicomWebClient } from '../dicom/dicomweb/client.js';
import { chooseSeries } from '../dicom/series-choice.js';
import type { SeriesCandidate } from '../dicom/source.js';
import type { FhirClient } from '../fhir/client.js';
import { studyResultIdentifier } from '../fhir/identifiers.js';
import { readVbmdResult } from '../fhir/result-reader.js';
import { isVbmdError } from '../util/errors.js';

/**
 * What the backfill asks of each study before queueing it: does FHIR already hold its result from the
 * current algorithm (then it is skipped), and does it have a series the analysis would use (the same
 * chooseSeries over the same QIDO-RS metadata the worker sees; optionally only series of the given
 * BodyPartExamined). Neither question moves pixels.
 */
export interface Algorithm {
  engine: { name: string; version: string };
  model: { name: string; version: string; sha256: string } | null;
}

export function sameAlgorithm(a: Algorithm, b: { engine: { name: string; version: string } | null; model: Algorithm['model'] }): boolean {
  const m = (x: Algorithm['model']): string => (x ? `${x.name}@${x.version}#${x.sha256}` : 'none');
  return b.engine?.name === a.engine.name && b.engine.version === a.engine.version && m(a.model) === m(b.model);
}

/** Of these studies, those whose current result in FHIR was computed by `algorithm` (one search per 50). */
export async function analysedWith(fhir: FhirClient, studyUids: readonly string[], algorithm: Algorithm, signal?: AbortSignal): Promise<Set<string>> {
  const byValue = new Map(studyUids.map((uid) => [studyResultIdentifier(uid, 'observation').value!, uid]));
  const system = studyResultIdentifier('1', 'observation').system!;
  const out = new Set<string>();
  const values = [...byValue.keys()];
  for (let i = 0; i < values.length; i += 50) {
    const chunk = values.slice(i, i + 50);
    const found = await fhir.search<Observation>('Observation', { identifier: chunk.map((v) => `${system}|${v}`).join(','), _count: 100 }, { ...(signal ? { signal } : {}), maxPages: 5 });
    for (const o of found) {
      const uid = o.identifier?.map((x) => byValue.get(x.value ?? '')).find(Boolean);
      const read = readVbmdResult(o);
      if (uid && read.ok && sameAlgorithm(algorithm, read.result.algorithm)) out.add(uid);
    }
  }
  return out;
}

export type SeriesVerdict = { usable: true; series: SeriesCandidate } | { usable: false; reason: string };

/** The series the analysis would choose, or why there is none. */
export async function usableSeries(dicom: DicomWebClient, studyInstanceUid: string, o: { modality: string; bodyParts?: readonly string[]; signal?: AbortSignal }): Promise<SeriesVerdict> {
  const all = await dicom.describeSeries(studyInstanceUid, { modality: o.modality }, o.signal ? { signal: o.signal } : {});
  const wanted = o.bodyParts?.map((b) => b.toUpperCase());
  const series = wanted ? all.filter((s) => wanted.includes((s.bodyPartExamined ?? '').toUpperCase())) : all;
  if (series.length === 0) return { usable: false, reason: wanted ? `no ${o.modality} series of body part ${wanted.join('/')}` : `no ${o.modality} series` };
  try {
    return { usable: true, series: chooseSeries(series, `study ${studyInstanceUid}`).chosen };
  } catch (e) {
    if (isVbmdError(e) && e.code === 'no-series') return { usable: false, reason: e.message };
    throw e;
  }
}
