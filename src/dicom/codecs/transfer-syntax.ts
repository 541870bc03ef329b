/**
 * Transfer syntaxes (PS3.6 Annex A) and how we decode each. A syntax not listed, or listed with
 * `decoder: 'none'`, is rejected with its UID and name so a user can ask the PACS for
 * 1.2.840.10008.1.2.1 (explicit VR little endian) instead.
 */
export type PixelDecoderKind =
  | 'native-le'
  | 'native-be'
  | 'jpeg2000'
  | 'jpeg-ls'
  | 'jpeg-baseline'
  | 'jpeg-lossless'
  | 'rle'
  | 'none';

export interface TransferSyntaxInfo {
  uid: string;
  name: string;
  decoder: PixelDecoderKind;
  /** Pixel values are not the scanner's: HU are approximate. */
  lossy: boolean;
}

const TABLE: TransferSyntaxInfo[] = [
  { uid: '1.2.840.10008.1.2', name: 'Implicit VR Little Endian', decoder: 'native-le', lossy: false },
  { uid: '1.2.840.10008.1.2.1', name: 'Explicit VR Little Endian', decoder: 'native-le', lossy: false },
  { uid: '1.2.840.10008.1.2.1.99', name: 'Deflated Explicit VR Little Endian', decoder: 'native-le', lossy: false },
  { uid: '1.2.840.10008.1.2.2', name: 'Explicit VR Big Endian (retired)', decoder: 'native-be', lossy: false },
  { uid: '1.2.840.10008.1.2.4.50', name: 'JPEG Baseline (Process 1)', decoder: 'jpeg-baseline', lossy: true },
  { uid: '1.2.840.10008.1.2.4.51', name: 'JPEG Extended (Process 2 & 4)', decoder: 'none', lossy: true },
  { uid: '1.2.840.10008.1.2.4.57', name: 'JPEG Lossless, Non-Hierarchical (Process 14)', decoder: 'jpeg-lossless', lossy: false },
  { uid: '1.2.840.10008.1.2.4.70', name: 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, SV1)', decoder: 'jpeg-lossless', lossy: false },
  { uid: '1.2.840.10008.1.2.4.80', name: 'JPEG-LS Lossless', decoder: 'jpeg-ls', lossy: false },
  { uid: '1.2.840.10008.1.2.4.81', name: 'JPEG-LS Lossy (Near-Lossless)', decoder: 'jpeg-ls', lossy: true },
  { uid: '1.2.840.10008.1.2.4.90', name: 'JPEG 2000 Image Compression (Lossless Only)', decoder: 'jpeg2000', lossy: false },
  { uid: '1.2.840.10008.1.2.4.91', name: 'JPEG 2000 Image Compression', decoder: 'jpeg2000', lossy: true },
  { uid: '1.2.840.10008.1.2.4.201', name: 'High-Throughput JPEG 2000 (Lossless Only)', decoder: 'none', lossy: false },
  { uid: '1.2.840.10008.1.2.4.202', name: 'High-Throughput JPEG 2000 with RPCL Options (Lossless Only)', decoder: 'none', lossy: false },
  { uid: '1.2.840.10008.1.2.4.203', name: 'High-Throughput JPEG 2000', decoder: 'none', lossy: true },
  { uid: '1.2.840.10008.1.2.4.100', name: 'MPEG2 Main Profile / Main Level', decoder: 'none', lossy: true },
  { uid: '1.2.840.10008.1.2.4.102', name: 'MPEG-4 AVC/H.264 High Profile', decoder: 'none', lossy: true },
  { uid: '1.2.840.10008.1.2.5', name: 'RLE Lossless', decoder: 'rle', lossy: false },
];

const BY_UID = new Map(TABLE.map((t) => [t.uid, t]));

export function transferSyntaxInfo(uid: string): TransferSyntaxInfo {
  return BY_UID.get(uid) ?? { uid, name: 'unknown transfer syntax', decoder: 'none', lossy: false };
}

export function isEncapsulated(info: TransferSyntaxInfo): boolean {
  return info.decoder !== 'native-le' && info.decoder !== 'native-be';
}
