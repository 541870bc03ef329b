import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';

/**
 * Deflate bombs for tests: a real Deflated Explicit VR Little Endian file (gdcmconv --deflated) whose
 * deflate stream is replaced by its own dataset followed by `extraMiB` MiB of zeros. Each MiB of zeros is
 * one independent deflate block sequence (Z_FULL_FLUSH resets the history), so it is compressed once and
 * repeated: a few KB per MiB, e.g. ~2 MB of file for 2 GiB of output.
 */
export function gdcmDeflate(nativeFile: string, out: string): Uint8Array {
  const r = spawnSync('/usr/bin/gdcmconv', ['--deflated', nativeFile, out], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`gdcmconv --deflated failed (Debian package libgdcm-tools): ${r.error?.message ?? r.stderr}`);
  return readFileSync(out);
}

/** Byte offset where the (deflated) dataset starts: the end of the file meta group. */
export function metaEnd(part10: Uint8Array): number {
  return (dicomParser.readPart10Header(part10) as unknown as { position: number }).position;
}

export function deflateBomb(deflatedFile: Uint8Array, extraMiB: number, extraDataset?: Uint8Array): Buffer {
  const at = metaEnd(deflatedFile);
  const dataset = extraDataset ?? inflateRawSync(deflatedFile.subarray(at));
  const head = deflateRawSync(dataset, { finishFlush: constants.Z_FULL_FLUSH });
  const zeros = deflateRawSync(Buffer.alloc(1024 * 1024), { finishFlush: constants.Z_FULL_FLUSH });
  const end = deflateRawSync(Buffer.alloc(0));
  const out = Buffer.alloc(at + head.length + zeros.length * extraMiB + end.length);
  out.set(deflatedFile.subarray(0, at), 0);
  let p = at;
  out.set(head, p);
  p += head.length;
  for (let n = 0; n < extraMiB; n++, p += zeros.length) out.set(zeros, p);
  out.set(end, p);
  return out;
}
