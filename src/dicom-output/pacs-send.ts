import type { DicomWebClient } from '../dicom/dicomweb/client.js';
import { isDicomWebError } from '../dicom/dicomweb/errors.js';
import type { VbmdReport } from '../bmd/report.js';
import { log } from '../util/log.js';
import type { DicomOutputs } from './build.js';
import type { DicomObject } from './part10.js';
import { scanPacsResults } from './pacs-results.js';
import { buildRejectionNote, type RejectedInstance } from './rejection-note.js';
import type { SourceSeries } from './source-series.js';
import { stowInstances } from './stow.js';

/**
 * Idempotent delivery of one analysis to the PACS (IHE AIR "Store Analysis Result", IOCM "Rejection Note
 * Stored"):
 * 1. read what the PACS already holds for this source series (earlier result sets, rejection notes);
 * 2. STOW-RS the SR, SEG and key image the PACS does not hold yet (same analysis = same UIDs, so a re-send or
 *    a retried job stores nothing twice);
 * 3. only then reject every earlier result set of the series with one IOCM rejection note ("Rejected for
 *    Quality Reasons"), so there is never a moment with no result; an archive implementing IOCM hides them.
 */
export interface PacsSendResult {
  server: string;
  studyInstanceUid: string;
  /** Instances stored by this call. */
  sent: { kind: DicomObject['kind']; sopInstanceUid: string }[];
  /** Instances of this analysis the PACS held already (nothing sent again). */
  alreadyStored: { kind: DicomObject['kind']; sopInstanceUid: string }[];
  /** SR SOP Instance UIDs of the earlier result sets this analysis replaced, and how many instances were rejected. */
  replaced: { srSopInstanceUid: string; instances: number }[];
  rejectionNote?: string;
}

async function instancesOf(client: DicomWebClient, studyUid: string, seriesUid: string, signal?: AbortSignal): Promise<Set<string>> {
  try {
    return new Set((await client.findInstances(studyUid, seriesUid, {}, { signal })).map((i) => i.sopInstanceUid));
  } catch (e) {
    if (isDicomWebError(e) && e.details.status === 404) return new Set();
    throw e;
  }
}

export async function sendToPacs(
  client: DicomWebClient,
  report: VbmdReport,
  source: SourceSeries,
  outputs: DicomOutputs,
  createdAt: Date,
  signal?: AbortSignal,
): Promise<PacsSendResult> {
  const studyUid = source.patientStudy.StudyInstanceUID;
  const scan = await scanPacsResults(client, studyUid, source.seriesInstanceUid, signal);
  const objects = [outputs.sr, outputs.seg, outputs.keyImage];
  const present = new Set<string>();
  for (const o of objects) if ((await instancesOf(client, studyUid, o.seriesInstanceUid, signal)).has(o.sopInstanceUid)) present.add(o.sopInstanceUid);
  const toSend = objects.filter((o) => !present.has(o.sopInstanceUid));
  await stowInstances(client, studyUid, toSend, signal);

  const ours = new Set(objects.map((o) => o.sopInstanceUid));
  const earlier = scan.sets.filter((s) => !ours.has(s.sr.sopInstanceUid) && !scan.rejected.has(s.sr.sopInstanceUid));
  const rejected: RejectedInstance[] = [];
  const seen = new Set<string>();
  for (const set of earlier) {
    for (const r of [set.sr, ...set.members]) {
      if (ours.has(r.sopInstanceUid) || scan.rejected.has(r.sopInstanceUid) || seen.has(r.sopInstanceUid)) continue;
      seen.add(r.sopInstanceUid);
      rejected.push(r);
    }
  }
  let rejectionNote: string | undefined;
  if (rejected.length > 0) {
    const note = buildRejectionNote(report, source, rejected, { srSopInstanceUid: outputs.sr.sopInstanceUid }, createdAt);
    await stowInstances(client, studyUid, [note], signal);
    rejectionNote = note.sopInstanceUid;
  }
  const result: PacsSendResult = {
    server: client.server,
    studyInstanceUid: studyUid,
    sent: toSend.map((o) => ({ kind: o.kind, sopInstanceUid: o.sopInstanceUid })),
    alreadyStored: objects.filter((o) => present.has(o.sopInstanceUid)).map((o) => ({ kind: o.kind, sopInstanceUid: o.sopInstanceUid })),
    replaced: earlier.map((s) => ({ srSopInstanceUid: s.sr.sopInstanceUid, instances: rejected.filter((r) => r.sopInstanceUid === s.sr.sopInstanceUid || s.members.some((m) => m.sopInstanceUid === r.sopInstanceUid)).length })),
    ...(rejectionNote ? { rejectionNote } : {}),
  };
  log.info(
    { server: client.server, sent: result.sent.length, alreadyStored: result.alreadyStored.length, replaced: result.replaced.length, rejectionNote },
    result.replaced.length > 0
      ? `DICOM results stored; ${result.replaced.length} earlier result set(s) of the series rejected (IOCM, Rejected for Quality Reasons)`
      : result.sent.length === 0
        ? 'DICOM results already on the PACS; nothing sent'
        : 'DICOM results stored',
  );
  return result;
}
