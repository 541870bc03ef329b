import { IDENTITY_TAGS, identityFromDicomJson } from '../patient-identity.js';
import type { FoundStudy, SeriesCandidate } from '../source.js';
import type { CallOptions, DicomWebClient, SeriesSummary } from './client.js';
import { seriesSummary } from './client.js';
import { str, TAG } from './dicom-json.js';

/**
 * The studies with an accession number (or one study UID), each with its patient identity and its series,
 * from ONE QIDO-RS search: `GET {service}/series?AccessionNumber=...` with the patient and study attributes
 * asked by includefield (PS3.18 10.6: a series search at the service root takes study-level matching keys).
 * What the order-to-chart path needs from the PACS before any pixels move: the poller's stability check, the
 * patient check (src/jobs/patient-match.ts) and series choice. Further requests only where the search left
 * something out (completeSeries: Enhanced CT frame counts, ImageType or SliceThickness a server did not
 * return). A server that does not index the accession's issuer at series level (Orthanc 1.10) leaves
 * `identity.accessionIssuer` undefined: `DicomSource.studyIdentity` reads it from an instance when an order
 * needs it compared.
 */
export async function studiesWithSeries(
  client: DicomWebClient,
  ref: { studyInstanceUid?: string; accessionNumber?: string },
  seriesModality: string | null,
  options: CallOptions = {},
): Promise<FoundStudy[]> {
  const rows = await client.searchSeries(
    { ...ref, ...(seriesModality ? { modality: seriesModality } : {}) },
    [...Object.values(IDENTITY_TAGS), TAG.StudyInstanceUID],
    options,
  );
  const byStudy = new Map<string, { identity: FoundStudy['identity']; series: SeriesSummary[] }>();
  for (const ds of rows) {
    const s = seriesSummary(ds);
    const uid = str(ds, TAG.StudyInstanceUID);
    if (!s || !uid) continue; // PS3.18 requires both; skip a malformed row rather than fail the search
    const study = byStudy.get(uid) ?? { identity: identityFromDicomJson(ds), series: [] };
    study.series.push(s);
    byStudy.set(uid, study);
  }
  const out: FoundStudy[] = [];
  for (const [studyInstanceUid, { identity, series }] of byStudy) {
    await client.completeSeries(series, options);
    out.push({ studyInstanceUid, identity, series: series.map((s) => seriesCandidate(s, identity)) });
  }
  return out;
}

export function seriesCandidate(s: SeriesSummary, study: { patientId?: string; accessionNumber?: string }): SeriesCandidate {
  return {
    studyInstanceUid: s.studyInstanceUid,
    seriesInstanceUid: s.seriesInstanceUid,
    modality: s.modality,
    seriesDescription: s.seriesDescription,
    seriesNumber: s.seriesNumber,
    imageType: s.imageType.length > 0 ? s.imageType : undefined,
    sliceThicknessMm: s.sliceThicknessMm,
    ...(s.convolutionKernel !== undefined ? { convolutionKernel: s.convolutionKernel } : {}),
    instanceCount: s.instanceCount,
    ...(s.frameCount !== undefined ? { frameCount: s.frameCount } : {}),
    patientId: s.patientId ?? study.patientId,
    accessionNumber: s.accessionNumber ?? study.accessionNumber,
  };
}
