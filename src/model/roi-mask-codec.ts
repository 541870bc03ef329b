import { deflateRawSync, inflateRawSync } from 'node:zlib';

/**
 * The model's ROI mask as it travels in a `vbmd.report/1` level (`modelRoiMask`): one bit per patch voxel
 * (src/model/contract.ts layout), packed LSB first, raw-deflated and base64 (a 32^3 mask is 4 KiB of bits and
 * a few hundred bytes deflated, since it is one compact blob).
 */
export const ROI_MASK_ENCODING = 'bits-lsb-deflate-base64' as const;

export interface EncodedRoiMask {
  voxels: number;
  spacingMm: number;
  encoding: typeof ROI_MASK_ENCODING;
  data: string;
}

/** Packs `mask[i] >= threshold` (logits: 0 is the sigmoid's 0.5) for a voxels^3 patch. */
export function encodeRoiMask(mask: ArrayLike<number>, voxels: number, spacingMm: number, threshold = 0): EncodedRoiMask {
  const n = voxels ** 3;
  if (mask.length !== n) throw new RangeError(`ROI mask has ${mask.length} values, ${n} expected for ${voxels}^3 voxels`);
  const bits = new Uint8Array(Math.ceil(n / 8));
  for (let i = 0; i < n; i++) if (mask[i] >= threshold) bits[i >> 3] |= 1 << (i & 7);
  return { voxels, spacingMm, encoding: ROI_MASK_ENCODING, data: deflateRawSync(bits).toString('base64') };
}

/** One byte (0/1) per patch voxel, contract layout. Throws a RangeError when the data does not fit. */
export function decodeRoiMask(m: EncodedRoiMask): Uint8Array {
  if (m.encoding !== ROI_MASK_ENCODING) throw new RangeError(`unknown ROI mask encoding ${String(m.encoding)}`);
  const n = m.voxels ** 3;
  const bits = inflateRawSync(Buffer.from(m.data, 'base64'));
  if (bits.length !== Math.ceil(n / 8)) throw new RangeError(`ROI mask holds ${bits.length} bytes, ${Math.ceil(n / 8)} expected for ${m.voxels}^3 voxels`);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (bits[i >> 3] >> (i & 7)) & 1;
  return out;
}
