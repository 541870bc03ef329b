import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import * as nifti from 'nifti-reader-js';
import { VbmdError } from '../util/errors.js';
import type { LoadedVolume, Vec3, Volume } from './volume.js';
import { sharedFloat32 } from './shared-memory.js';

/**
 * NIfTI-1/2 (.nii, .nii.gz) to a Volume in LPS. NIfTI world coordinates are RAS+, DICOM's are LPS+, so the
 * first two rows of the affine change sign (NIfTI-1 header docs, "qform_code/sform_code"; dcm2niix does
 * the reverse). sform wins over qform when both are set, as in nifti1_io.c; with neither, the voxel
 * sizes alone ("method 1", analyze-style) are used and a warning is recorded.
 */
export async function readNiftiFile(path: string): Promise<LoadedVolume> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new VbmdError('bad-input', `Cannot read NIfTI file ${path}: ${(e as Error).message}.`);
  }
  return parseNifti(bytes, path);
}

export function parseNifti(bytes: Uint8Array, source: string): LoadedVolume {
  let raw: ArrayBuffer;
  try {
    const plain = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
    raw = plain.buffer.slice(plain.byteOffset, plain.byteOffset + plain.byteLength) as ArrayBuffer;
  } catch {
    throw new VbmdError('bad-input', `${source} is not a readable gzip file (truncated or corrupt .nii.gz).`);
  }
  if (!nifti.isNIFTI(raw)) throw new VbmdError('bad-input', `${source} is not a NIfTI-1 or NIfTI-2 file.`);
  const header = nifti.readHeader(raw);
  if (!header) throw new VbmdError('bad-input', `${source}: the NIfTI header could not be read.`);
  const [, nx, ny, nz] = header.dims;
  if (header.dims[0] < 3 || !(nx > 0 && ny > 0 && nz > 0)) {
    throw new VbmdError('bad-input', `${source} is not a 3D image (dims ${header.dims.join(',')}).`);
  }
  const count = nx * ny * nz;
  const image = nifti.readImage(header, raw);
  const needBytes = count * (header.numBitsPerVoxel / 8);
  if (image.byteLength < needBytes) {
    throw new VbmdError('bad-input', `${source} is truncated: ${image.byteLength} of ${needBytes} voxel bytes present.`);
  }
  const typed = typedVoxels(header.datatypeCode, image, source);
  const slope = header.scl_slope && Number.isFinite(header.scl_slope) ? header.scl_slope : 1;
  const inter = Number.isFinite(header.scl_inter) ? header.scl_inter : 0;
  // In shared memory, as a DICOM series is: the engine's helper thread reads it without a copy.
  const hu = sharedFloat32(count);
  for (let n = 0; n < count; n++) hu[n] = typed[n] * slope + inter;

  const warnings: string[] = [];
  const affine = rasAffine(header, warnings);
  // Columns of the 3x3 part are the voxel axes scaled by the voxel size; LPS = diag(-1,-1,1) * RAS.
  const axis = (c: number): { unit: Vec3; len: number } => {
    const v: Vec3 = [-affine[0][c], -affine[1][c], affine[2][c]];
    const len = Math.hypot(v[0], v[1], v[2]);
    if (!(len > 0)) throw new VbmdError('bad-input', `${source}: the NIfTI affine has a zero-length axis.`);
    return { unit: [v[0] / len, v[1] / len, v[2] / len], len };
  };
  const a0 = axis(0);
  const a1 = axis(1);
  const a2 = axis(2);
  const volume: Volume = {
    hu,
    dims: [nx, ny, nz],
    spacingMm: [a0.len, a1.len, a2.len],
    originMm: [-affine[0][3], -affine[1][3], affine[2][3]],
    direction: [a0.unit, a1.unit, a2.unit],
  };
  return { volume, meta: { kind: 'nifti', source, warnings } };
}

function rasAffine(h: nifti.NIFTI1 | nifti.NIFTI2, warnings: string[]): number[][] {
  if (h.sform_code > 0) return h.affine;
  if (h.qform_code > 0) {
    const qfac = h.pixDims[0] < 0 ? -1 : 1;
    return h.convertNiftiQFormToNiftiSForm(
      h.quatern_b, h.quatern_c, h.quatern_d, h.qoffset_x, h.qoffset_y, h.qoffset_z,
      h.pixDims[1], h.pixDims[2], h.pixDims[3], qfac,
    );
  }
  warnings.push('NIfTI file has neither sform nor qform: orientation assumed from voxel sizes only.');
  return [
    [h.pixDims[1], 0, 0, 0],
    [0, h.pixDims[2], 0, 0],
    [0, 0, h.pixDims[3], 0],
    [0, 0, 0, 1],
  ];
}

type Numeric = ArrayLike<number>;

function typedVoxels(code: number, buf: ArrayBuffer, source: string): Numeric {
  // NIfTI-1 datatype codes (nifti1.h). Voxel data are little-endian on every file we accept.
  switch (code) {
    case 2: return new Uint8Array(buf);
    case 4: return new Int16Array(buf, 0, Math.floor(buf.byteLength / 2));
    case 8: return new Int32Array(buf, 0, Math.floor(buf.byteLength / 4));
    case 16: return new Float32Array(buf, 0, Math.floor(buf.byteLength / 4));
    case 64: return new Float64Array(buf, 0, Math.floor(buf.byteLength / 8));
    case 256: return new Int8Array(buf);
    case 512: return new Uint16Array(buf, 0, Math.floor(buf.byteLength / 2));
    case 768: return new Uint32Array(buf, 0, Math.floor(buf.byteLength / 4));
    default:
      throw new VbmdError('unsupported', `${source}: NIfTI datatype ${code} is not supported (use int16, int32 or float32).`);
  }
}
