import { createHash } from 'node:crypto';

/**
 * Substitute UIDs for images whose Study, Series or SOP Instance UID is empty or missing (anonymisers and
 * some PET/CT exports blank them). Such files are grouped the way dcm2niix groups them when UIDs do not
 * tell (nii_dicom_batch.cpp isSameSet: same manufacturer, modality, original/derived, series number,
 * study date/time and image size; acquisition numbers may vary within a series), plus what a volume needs
 * to share (pixel spacing, orientation), and each group gets UIDs derived from its grouping attributes:
 * the same files give the same UIDs on every run, on every machine, so reports and FHIR identifiers
 * built on them are stable. They are not the PACS's UIDs, and results say so.
 *
 * Form: "2.25." + the decimal value of a name-based (SHA-1, version 5) UUID (RFC 4122 section 4.3) in
 * vbmd's own name space; PS3.5 B.2 allows UIDs derived from UUIDs under the root 2.25.
 */

/** vbmd's RFC 4122 name space for substitute UIDs (a random UUID fixed once; never change it). */
const NAMESPACE = Buffer.from('c61cb77603214953a7806dba34a39b20', 'hex');

/** A deterministic UID for `name` (2.25 form, at most 44 characters). */
export function nameBasedUid(name: string): string {
  const h = createHash('sha1').update(NAMESPACE).update(name, 'utf8').digest();
  h[6] = (h[6] & 0x0f) | 0x50; // version 5
  h[8] = (h[8] & 0x3f) | 0x80; // RFC 4122 variant
  return `2.25.${BigInt(`0x${h.subarray(0, 16).toString('hex')}`).toString()}`;
}

/** What grouping and substitution read from one image (its first frame's geometry for a multi-frame one). */
export interface UidSources {
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  patientId?: string;
  studyDate?: string;
  studyTime?: string;
  studyId?: string;
  accessionNumber?: string;
  manufacturer?: string;
  modality?: string;
  sopClassUid?: string;
  seriesNumber?: number;
  imageType: string[];
  rows: number;
  columns: number;
  pixelSpacingMm?: [number, number];
  imageOrientation?: readonly number[];
  sliceThicknessMm?: number;
}

export interface SubstitutedUids {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  /** Which of the three were substituted (empty when the image had all three). */
  substituted: ('study' | 'series' | 'instance')[];
}

/**
 * The image's UIDs, substituting those it lacks. `instanceDigest` identifies one instance among its series
 * (a hash of its header bytes, so a file copied twice is one instance); it is only called when needed.
 */
export function substituteUids(f: UidSources, instanceDigest: () => string): SubstitutedUids {
  const substituted: SubstitutedUids['substituted'] = [];
  let study = f.studyInstanceUid;
  if (!study) {
    // dcm2niix: without a Study UID, images of one study share the study date and time.
    study = nameBasedUid(key('study', [f.patientId, f.studyDate, f.studyTime, f.accessionNumber, f.studyId]));
    substituted.push('study');
  }
  let series = f.seriesInstanceUid;
  if (!series) {
    series = nameBasedUid(key('series', seriesAttributes(f, study)));
    substituted.push('series');
  }
  let sop = f.sopInstanceUid;
  if (!sop) {
    sop = nameBasedUid(key('instance', [series, instanceDigest()]));
    substituted.push('instance');
  }
  return { studyInstanceUid: study, seriesInstanceUid: series, sopInstanceUid: sop, substituted };
}

/**
 * The series grouping key: dcm2niix's (manufacturer, modality, original/derived via Image Type, series
 * number, image size) with the whole Image Type (a localizer is not an axial series), the SOP class, the
 * reconstructed thickness, pixel spacing and orientation, which one volume shares. Acquisition Number is
 * not part of it: it changes every rotation in step-and-shoot CT (dcm2niix stacks across it too); the
 * folder source splits by it only when it separates slices that would otherwise sit at one position.
 */
function seriesAttributes(f: UidSources, studyUid: string): unknown[] {
  return [
    studyUid,
    f.manufacturer?.trim().toUpperCase(),
    f.modality,
    f.sopClassUid,
    f.seriesNumber,
    f.imageType.join('\\'),
    f.rows,
    f.columns,
    f.pixelSpacingMm?.map(round4),
    f.imageOrientation?.map(round4),
    f.sliceThicknessMm === undefined ? undefined : round4(f.sliceThicknessMm),
  ];
}

/** The UID of one acquisition's part of a substituted series (see seriesAttributes). */
export function acquisitionSeriesUid(seriesUid: string, acquisitionNumber: number | undefined): string {
  return nameBasedUid(key('series-acquisition', [seriesUid, acquisitionNumber]));
}

/** Scanners write 6-10 significant digits; one series rounds to the same value at 1e-4. */
function round4(x: number): string {
  return String(Math.round(x * 1e4) / 1e4 + 0);
}

function key(kind: string, parts: unknown[]): string {
  return `vbmd substitute UID v1\n${kind}\n${JSON.stringify(parts.map((p) => (p === undefined ? null : p)))}`;
}

/** Human text for a result's warnings: which UIDs were missing and what stands in for them. */
export function substitutedUidWarning(kinds: ReadonlySet<string>): string {
  const names = (['study', 'series', 'instance'] as const)
    .filter((k) => kinds.has(k))
    .map((k) => ({ study: 'Study Instance UID', series: 'Series Instance UID', instance: 'SOP Instance UID' })[k]);
  const grouped = kinds.has('study') || kinds.has('series');
  return (
    `The images had no ${names.join(', ')} (empty or missing in the source); ` +
    (grouped
      ? 'vbmd grouped them into a series as dcm2niix does (same patient, study date and time, manufacturer, modality, series number, image type, size, pixel spacing and orientation) and gave them substitute UIDs derived from those attributes'
      : 'vbmd gave each image a substitute UID derived from its header') +
    ' (2.25 form): they identify this result but are not known to the PACS.'
  );
}
