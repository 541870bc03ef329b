import type { DicomWebClient } from '../dicom/dicomweb/client.js';
import { str, type DicomJsonDataset } from '../dicom/dicomweb/dicom-json.js';
import { MANUFACTURER } from './part10.js';
import type { RejectedInstance } from './rejection-note.js';
import { fetchSeriesMetadata } from './source-series.js';

/**
 * What the PACS already holds of this service's results for one source series, read back with QIDO-RS and
 * WADO-RS metadata (no pixels): each earlier result set (an SR TID 1500 written by us whose evidence names the
 * source series, plus the SEG and key image that SR lists as its evidence) and the instances already rejected
 * by an IOCM rejection note (any KO titled with a CID 7011 rejection reason).
 */
export interface ResultSet {
  sr: RejectedInstance;
  /** The SEG and key image the SR lists in its evidence (not the source images). */
  members: RejectedInstance[];
}

export interface PacsResultsScan {
  sets: ResultSet[];
  rejected: Set<string>;
}

const T = {
  Manufacturer: '00080070',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  SeriesInstanceUID: '0020000E',
  ContentTemplateSequence: '0040A504',
  TemplateIdentifier: '0040DB00',
  ConceptNameCodeSequence: '0040A043',
  CodeValue: '00080100',
  CodingSchemeDesignator: '00080102',
  CurrentRequestedProcedureEvidenceSequence: '0040A375',
  PertinentOtherEvidenceSequence: '0040A385',
  ReferencedSeriesSequence: '00081115',
  ReferencedSOPSequence: '00081199',
  ReferencedSOPClassUID: '00081150',
  ReferencedSOPInstanceUID: '00081155',
} as const;

/** IOCM rejection reasons (PS3.16 CID 7011): quality, patient safety, wrong worklist entry, retention expired. */
const REJECTION_TITLES = new Set(['113001', '113037', '113038', '113039']);

function items(ds: DicomJsonDataset | Record<string, unknown>, tag: string): Record<string, unknown>[] {
  const a = (ds as Record<string, { Value?: unknown[] } | undefined>)[tag];
  return Array.isArray(a?.Value) ? (a.Value.filter((v) => v && typeof v === 'object') as Record<string, unknown>[]) : [];
}

function text(ds: Record<string, unknown>, tag: string): string | undefined {
  return str(ds as DicomJsonDataset, tag);
}

/** Instances listed in an evidence sequence (Hierarchical SOP Instance Reference Macro). */
export function evidenceInstances(ds: DicomJsonDataset, tag: string): RejectedInstance[] {
  const out: RejectedInstance[] = [];
  for (const study of items(ds, tag)) {
    for (const series of items(study, T.ReferencedSeriesSequence)) {
      const seriesInstanceUid = text(series, T.SeriesInstanceUID);
      for (const sop of items(series, T.ReferencedSOPSequence)) {
        const sopClassUid = text(sop, T.ReferencedSOPClassUID);
        const sopInstanceUid = text(sop, T.ReferencedSOPInstanceUID);
        if (seriesInstanceUid && sopClassUid && sopInstanceUid) out.push({ seriesInstanceUid, sopClassUid, sopInstanceUid });
      }
    }
  }
  return out;
}

/** One SR instance's metadata -> a result set of ours for the source series, or undefined. */
export function resultSetOf(ds: DicomJsonDataset, sourceSeriesUid: string): ResultSet | undefined {
  if (text(ds, T.Manufacturer) !== MANUFACTURER) return undefined;
  if (!items(ds, T.ContentTemplateSequence).some((t) => text(t, T.TemplateIdentifier) === '1500')) return undefined;
  const evidence = evidenceInstances(ds, T.CurrentRequestedProcedureEvidenceSequence);
  if (!evidence.some((e) => e.seriesInstanceUid === sourceSeriesUid)) return undefined;
  const sopInstanceUid = text(ds, T.SOPInstanceUID);
  const sopClassUid = text(ds, T.SOPClassUID);
  const seriesInstanceUid = text(ds, T.SeriesInstanceUID);
  if (!sopInstanceUid || !sopClassUid || !seriesInstanceUid) return undefined;
  const members = [...evidence.filter((e) => e.seriesInstanceUid !== sourceSeriesUid), ...evidenceInstances(ds, T.PertinentOtherEvidenceSequence)];
  return { sr: { sopInstanceUid, sopClassUid, seriesInstanceUid }, members };
}

/** SOP Instance UIDs a rejection note (KO) rejects; empty for any other KO. */
export function rejectedBy(ds: DicomJsonDataset): string[] {
  const title = items(ds, T.ConceptNameCodeSequence)[0];
  if (!title || text(title, T.CodingSchemeDesignator) !== 'DCM' || !REJECTION_TITLES.has(text(title, T.CodeValue) ?? '')) return [];
  return evidenceInstances(ds, T.CurrentRequestedProcedureEvidenceSequence).map((e) => e.sopInstanceUid);
}

export async function scanPacsResults(client: DicomWebClient, studyUid: string, sourceSeriesUid: string, signal?: AbortSignal): Promise<PacsResultsScan> {
  const [srSeries, koSeries] = await Promise.all([
    client.findSeries(studyUid, { modality: 'SR' }, { signal }),
    client.findSeries(studyUid, { modality: 'KO' }, { signal }),
  ]);
  const sets: ResultSet[] = [];
  for (const s of srSeries) {
    for (const ds of await fetchSeriesMetadata(client, studyUid, s.seriesInstanceUid, signal)) {
      const set = resultSetOf(ds, sourceSeriesUid);
      if (set) sets.push(set);
    }
  }
  const rejected = new Set<string>();
  for (const s of koSeries) {
    for (const ds of await fetchSeriesMetadata(client, studyUid, s.seriesInstanceUid, signal)) for (const uid of rejectedBy(ds)) rejected.add(uid);
  }
  return { sets, rejected };
}
