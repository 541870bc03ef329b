/**
 * The small part of dcmjs (it ships no types) the project uses: naturalized <-> DICOM-JSON-like datasets
 * and the Part-10 reader/writer. Only the default export exists at run time.
 */
declare module 'dcmjs' {
  export type DenaturalizedDataset = Record<string, { vr: string; Value?: unknown[]; InlineBinary?: string }>;
  export interface DicomDictInstance {
    meta: DenaturalizedDataset;
    dict: DenaturalizedDataset;
    write(options?: { fragmentMultiframe?: boolean; allowInvalidVRLength?: boolean }): ArrayBuffer;
  }
  const dcmjs: {
    data: {
      DicomDict: new (meta: DenaturalizedDataset) => DicomDictInstance;
      DicomMessage: { readFile(buffer: ArrayBuffer, options?: Record<string, unknown>): DicomDictInstance };
      DicomMetaDictionary: {
        denaturalizeDataset(dataset: Record<string, unknown>): DenaturalizedDataset;
        naturalizeDataset(dataset: DenaturalizedDataset): Record<string, unknown>;
        uid(): string;
      };
    };
  };
  export default dcmjs;
}
