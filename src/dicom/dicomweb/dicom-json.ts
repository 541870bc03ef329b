import { z } from 'zod';

/**
 * The DICOM JSON model (PS3.18 Annex F, `application/dicom+json`), validated with zod at the edge.
 * An object maps 8-hex-digit tags to `{ vr, Value?, BulkDataURI?, InlineBinary? }`; PN values are objects
 * (`{ Alphabetic }`), numbers may arrive as numbers or (IS/DS) strings depending on the server.
 */
const attributeSchema = z.looseObject({
  vr: z.string().regex(/^[A-Z]{2}$/),
  Value: z.array(z.unknown()).optional(),
  BulkDataURI: z.string().optional(),
  InlineBinary: z.string().optional(),
});

export const dicomJsonDatasetSchema = z.record(z.string().regex(/^[0-9A-Fa-f]{8}$/), attributeSchema);
export const dicomJsonArraySchema = z.array(dicomJsonDatasetSchema);

export type DicomJsonDataset = z.infer<typeof dicomJsonDatasetSchema>;

/** Tags (PS3.6) the client reads. */
export const TAG = {
  SpecificCharacterSet: '00080005',
  ImageType: '00080008',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyDate: '00080020',
  StudyTime: '00080030',
  AccessionNumber: '00080050',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
  StudyDescription: '00081030',
  SeriesDescription: '0008103E',
  PatientID: '00100020',
  BodyPartExamined: '00180015',
  SliceThickness: '00180050',
  ConvolutionKernel: '00181210',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',
  NumberOfFrames: '00280008',
  Rows: '00280010',
  Columns: '00280011',
  TransferSyntaxUID: '00020010',
  AvailableTransferSyntaxUID: '00083002',
} as const;

function attr(ds: DicomJsonDataset, tag: string): z.infer<typeof attributeSchema> | undefined {
  return ds[tag] ?? ds[tag.toLowerCase()];
}

function valueToString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (v && typeof v === 'object' && 'Alphabetic' in v) {
    const a = (v as { Alphabetic?: unknown }).Alphabetic;
    return typeof a === 'string' ? a : undefined;
  }
  return undefined;
}

/** All values of an attribute as trimmed strings (empty array if absent). */
export function strings(ds: DicomJsonDataset, tag: string): string[] {
  const values = attr(ds, tag)?.Value ?? [];
  const out: string[] = [];
  for (const v of values) {
    const s = valueToString(v);
    if (s !== undefined) out.push(s.trim());
  }
  return out;
}

/** First value as a trimmed string; undefined when absent or empty. */
export function str(ds: DicomJsonDataset, tag: string): string | undefined {
  const s = strings(ds, tag)[0];
  return s === undefined || s === '' ? undefined : s;
}

/** First value as a finite number (IS/DS may arrive as strings); undefined otherwise. */
export function num(ds: DicomJsonDataset, tag: string): number | undefined {
  const v = attr(ds, tag)?.Value?.[0];
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}
