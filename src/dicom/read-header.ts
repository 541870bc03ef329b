import { createHash } from 'node:crypto';
import type { DataSet } from 'dicom-parser';
import type { Vec3 } from '../imaging/volume.js';
import { int, multi, num, str, us, usOrSs } from './dataset-values.js';
import { frameHeaders } from './functional-groups.js';
import { identityFromDataSet } from './patient-identity.js';
import type { DicomSliceHeader } from './slice.js';
import { substituteUids } from './substitute-uids.js';

const PIXEL_DATA = 'x7fe00010';

/**
 * The header of every image plane of one instance: one for a single-frame image, one per frame for a
 * multi-frame one (functional-groups.ts). UIDs the file lacks are substituted (substitute-uids.ts) and
 * listed in `substitutedUids`. Throws a VbmdError for a multi-frame image whose frames cannot be placed.
 */
export function readHeaders(ds: DataSet, source: string): DicomSliceHeader[] {
  const base = instanceHeader(ds, source);
  const frames = frameHeaders(ds, base, source);
  const first = frames[0];
  const uids = substituteUids(
    {
      ...first,
      studyInstanceUid: str(ds, 'x0020000d')?.trim(),
      seriesInstanceUid: str(ds, 'x0020000e')?.trim(),
      sopInstanceUid: str(ds, 'x00080018')?.trim(),
      studyTime: str(ds, 'x00080030')?.trim(),
      studyId: str(ds, 'x00200010')?.trim(),
    },
    () => headerDigest(ds),
  );
  const { substituted, ...ids } = uids;
  return frames.map((h) => ({ ...h, ...ids, ...(substituted.length > 0 ? { substitutedUids: substituted } : {}) }));
}

/**
 * SHA-1 of the bytes before Pixel Data (meta header and dataset): identical for a header-only scan and a
 * full read of one file, and for a file copied twice, so its substitute SOP Instance UID is too.
 */
function headerDigest(ds: DataSet): string {
  const el = ds.elements[PIXEL_DATA];
  const end = el ? Math.min(el.dataOffset, ds.byteArray.length) : ds.byteArray.length;
  return createHash('sha1').update(ds.byteArray.subarray(0, end)).digest('hex');
}

/** Top-level attributes; UIDs are left empty here (readHeaders fills them). */
function instanceHeader(ds: DataSet, source: string): DicomSliceHeader {
  const transferSyntaxUid = (str(ds, 'x00020010') ?? '1.2.840.10008.1.2').trim();
  const pixelRepresentation = us(ds, 'x00280103') ?? 0;
  const bitsAllocated = us(ds, 'x00280100') ?? 0;
  const dt = str(ds, 'x0008002a');
  const ps = multi(ds, 'x00280030', 2);
  const ipp = multi(ds, 'x00200032', 3);
  const iop = multi(ds, 'x00200037', 6);
  const header: DicomSliceHeader = {
    source,
    sopInstanceUid: '',
    sopClassUid: str(ds, 'x00080016')?.trim(),
    studyInstanceUid: '',
    seriesInstanceUid: '',
    modality: str(ds, 'x00080060')?.trim().toUpperCase(),
    imageType: (ds.string('x00080008') ?? '')
      .split('\\')
      .map((s) => s.trim().toUpperCase())
      .filter((s) => s.length > 0),
    seriesDescription: str(ds, 'x0008103e'),
    seriesNumber: int(ds, 'x00200011'),
    instanceNumber: int(ds, 'x00200013'),
    acquisitionNumber: int(ds, 'x00200012'),
    patientId: str(ds, 'x00100020'),
    accessionNumber: str(ds, 'x00080050'),
    identity: identityFromDataSet(ds),
    studyDate: str(ds, 'x00080020'),
    acquisitionDate: str(ds, 'x00080022') ?? dt?.slice(0, 8) ?? str(ds, 'x00080023'),
    acquisitionTime: str(ds, 'x00080032') ?? (dt && dt.length > 8 ? dt.slice(8).replace(/[+-]\d{4}$/, '') : undefined) ?? str(ds, 'x00080033'),
    manufacturer: str(ds, 'x00080070'),
    manufacturerModelName: str(ds, 'x00081090'),
    kvp: num(ds, 'x00180060'),
    contrastAgent: str(ds, 'x00180010'),
    gantryTiltDeg: num(ds, 'x00181120'),
    rows: us(ds, 'x00280010') ?? 0,
    columns: us(ds, 'x00280011') ?? 0,
    pixelSpacingMm: ps ? [ps[0], ps[1]] : undefined,
    sliceThicknessMm: num(ds, 'x00180050'),
    convolutionKernel: ds.string('x00181210')?.trim() || undefined,
    imagePositionMm: ipp ? (ipp as Vec3) : undefined,
    imageOrientation: iop ? (iop as [number, number, number, number, number, number]) : undefined,
    rescaleSlope: num(ds, 'x00281053') ?? 1,
    rescaleIntercept: num(ds, 'x00281052') ?? 0,
    pixelRepresentation,
    bitsAllocated,
    bitsStored: us(ds, 'x00280101') ?? bitsAllocated,
    pixelPaddingValue: usOrSs(ds, 'x00280120', pixelRepresentation === 1),
    pixelPaddingRangeLimit: usOrSs(ds, 'x00280121', pixelRepresentation === 1),
    numberOfFrames: Math.max(1, int(ds, 'x00280008') ?? 1),
    transferSyntaxUid,
  };
  return header;
}
