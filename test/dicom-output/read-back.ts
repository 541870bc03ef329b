import dcmjs from 'dcmjs';

/**
 * Reads what vbmd wrote back out of Part-10 bytes with dcmjs (not with our writer's own structures), so tests
 * compare the report with what a PACS or viewer would see.
 */
const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

export type Natural = Record<string, unknown>;

export function naturalize(bytes: Uint8Array): Natural {
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(buf).dict);
}

export function seq(ds: Natural, key: string): Natural[] {
  const v = ds[key];
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]) as Natural[];
}

function code(ds: Natural, key: string): { value: string; scheme: string; meaning: string } | undefined {
  const c = seq(ds, key)[0];
  return c ? { value: String(c.CodeValue), scheme: String(c.CodingSchemeDesignator), meaning: String(c.CodeMeaning) } : undefined;
}

/** One SR measurement group as plain data: tracking id, codes, text and numeric items (with their derivation). */
export interface GroupReadBack {
  template?: string;
  trackingId?: string;
  findingSite?: string;
  method?: string;
  segmentNumber?: number;
  codes: Record<string, string>;
  texts: Record<string, string[]>;
  nums: { concept: string; value: number; unit: string; derivation?: string; algorithm: string[] }[];
}

export function srGroups(sr: Natural): GroupReadBack[] {
  const measurements = seq(sr, 'ContentSequence').find((i) => code(i, 'ConceptNameCodeSequence')?.value === '126010');
  if (!measurements) throw new Error('SR has no Imaging Measurements container');
  return seq(measurements, 'ContentSequence').map((g) => {
    const out: GroupReadBack = { template: seq(g, 'ContentTemplateSequence')[0]?.TemplateIdentifier as string | undefined, codes: {}, texts: {}, nums: [] };
    for (const item of seq(g, 'ContentSequence')) {
      const concept = code(item, 'ConceptNameCodeSequence')?.value ?? '';
      switch (item.ValueType) {
        case 'TEXT':
          if (concept === '112039') out.trackingId = String(item.TextValue);
          else (out.texts[concept] ??= []).push(String(item.TextValue));
          break;
        case 'CODE': {
          const v = code(item, 'ConceptCodeSequence')!;
          if (concept === '363698007') out.findingSite = v.value;
          else if (concept === '370129005') out.method = v.value;
          else out.codes[concept] = v.value;
          break;
        }
        case 'IMAGE':
          if (concept === '121191') out.segmentNumber = Number(seq(item, 'ReferencedSOPSequence')[0]?.ReferencedSegmentNumber);
          break;
        case 'NUM': {
          const mv = seq(item, 'MeasuredValueSequence')[0]!;
          const mods = seq(item, 'ContentSequence');
          out.nums.push({
            concept,
            value: Number(mv.NumericValue),
            unit: code(mv, 'MeasurementUnitsCodeSequence')!.value,
            derivation: mods.map((m) => (code(m, 'ConceptNameCodeSequence')?.value === '121401' ? code(m, 'ConceptCodeSequence')?.value : undefined)).find(Boolean),
            algorithm: mods.filter((m) => ['111001', '111003', '111002'].includes(code(m, 'ConceptNameCodeSequence')?.value ?? '')).map((m) => String(m.TextValue)),
          });
          break;
        }
      }
    }
    return out;
  });
}

/** A BINARY SEG's frames as voxel sets per segment: key "segment:sopInstanceUid", value the set pixel indices. */
export function segFrames(seg: Natural): { segment: number; sourceSop: string; pixels: number[] }[] {
  const rows = Number(seg.Rows);
  const cols = Number(seg.Columns);
  const plane = rows * cols;
  const data = new Uint8Array((seg.PixelData as ArrayBuffer[])[0]);
  return seq(seg, 'PerFrameFunctionalGroupsSequence').map((f, n) => {
    const segment = Number(seq(f, 'SegmentIdentificationSequence')[0]!.ReferencedSegmentNumber);
    const sourceSop = String(seq(seq(f, 'DerivationImageSequence')[0]!, 'SourceImageSequence')[0]!.ReferencedSOPInstanceUID);
    const pixels: number[] = [];
    for (let p = 0; p < plane; p++) {
      const bit = n * plane + p;
      if ((data[bit >> 3] >> (bit & 7)) & 1) pixels.push(p);
    }
    return { segment, sourceSop, pixels };
  });
}
