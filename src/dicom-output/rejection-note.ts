import type { VbmdReport } from '../bmd/report.js';
import { DCM, SOP_CLASS } from './codes.js';
import { commonModules, dicomDateTimeUtc, writePart10, type Dataset, type DicomObject } from './part10.js';
import type { SourceSeries } from './source-series.js';
import { compositeContent, containerItem, evidence, imageContent, textContent } from './sr-items.js';
import { uidFromName } from './uids.js';

/**
 * IHE IOCM Rejection Note: a Key Object Selection Document (PS3.3 A.35.4, TID 2010) titled (113001, DCM,
 * "Rejected for Quality Reasons") that lists the instances of an earlier analysis a new one replaces. An
 * archive that implements IOCM (Image Manager, "Rejection Note Stored") hides them from regular use; the
 * reason "Quality" is the IOCM one for objects that are superseded by better ones (not "Patient Safety",
 * which is for objects that must not be seen at all, nor "Incorrect Modality Worklist Entry", which is for
 * objects filed under the wrong order).
 */
export interface RejectedInstance {
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
}

const IMAGE_CLASSES = new Set<string>([SOP_CLASS.secondaryCapture, SOP_CLASS.segmentation]);

export function buildRejectionNote(
  report: VbmdReport,
  source: SourceSeries,
  rejected: readonly RejectedInstance[],
  replacedBy: { srSopInstanceUid: string },
  createdAt: Date,
): DicomObject {
  const key = [...rejected.map((r) => r.sopInstanceUid)].sort().join(',');
  const sopInstanceUid = uidFromName('rejection-note', replacedBy.srSopInstanceUid, key);
  const seriesInstanceUid = uidFromName('rejection-note-series', replacedBy.srSopInstanceUid, key);
  const { date, time } = dicomDateTimeUtc(createdAt);
  const bySeries = new Map<string, { sopClassUid: string; sopInstanceUid: string }[]>();
  for (const r of rejected) {
    const list = bySeries.get(r.seriesInstanceUid) ?? [];
    list.push({ sopClassUid: r.sopClassUid, sopInstanceUid: r.sopInstanceUid });
    bySeries.set(r.seriesInstanceUid, list);
  }
  const dataset: Dataset = {
    ...commonModules(source, report, {
      sopClassUid: SOP_CLASS.keyObjectSelection,
      sopInstanceUid,
      seriesInstanceUid,
      modality: 'KO',
      seriesNumber: 9803,
      seriesDescription: 'vBMD results replaced (IOCM rejection note)',
      createdAt,
    }),
    ReferencedPerformedProcedureStepSequence: [],
    InstanceNumber: '1',
    ContentDate: date,
    ContentTime: time,
    CurrentRequestedProcedureEvidenceSequence: evidence(source.patientStudy.StudyInstanceUID, bySeries),
    ...containerItem(
      null,
      DCM.rejectedForQualityReasons,
      [
        textContent('CONTAINS', DCM.keyObjectDescription, `Superseded by a new vBMD analysis of series ${source.seriesInstanceUid} (SR ${replacedBy.srSopInstanceUid}).`),
        ...rejected.map((r) => (IMAGE_CLASSES.has(r.sopClassUid) ? imageContent('CONTAINS', r) : compositeContent('CONTAINS', r))),
      ],
      '2010',
    ),
  };
  return { kind: 'rejection-note', sopClassUid: SOP_CLASS.keyObjectSelection, sopInstanceUid, seriesInstanceUid, bytes: writePart10(dataset) };
}
