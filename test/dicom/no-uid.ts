import dicomParser from 'dicom-parser';

/** Study, Series and SOP Instance UID, and the meta header's copy of the SOP Instance UID. */
export const UID_TAGS = ['x00020003', 'x00080018', 'x0020000d', 'x0020000e'];

/**
 * An explicit VR little endian Part-10 file with the given top-level elements emptied (value length 0,
 * as anonymisers leave them) or removed, and the file meta group length fixed. Works on compressed files
 * too (everything after the header is copied as is), so a series can be compressed by gdcmconv (which
 * invents a SOP Instance UID when it is empty) and have its UIDs emptied afterwards.
 */
export function withoutUids(bytes: Uint8Array, mode: 'empty' | 'absent', tags: readonly string[] = UID_TAGS): Buffer {
  const ds = dicomParser.parseDicom(bytes, { untilTag: 'x7fe00010' });
  const cuts = tags
    .map((t) => ds.elements[t])
    .filter((el): el is dicomParser.Element => el !== undefined)
    .map((el) => ({ meta: el.tag.startsWith('x0002'), from: mode === 'empty' ? el.dataOffset : el.dataOffset - 8, to: el.dataOffset + el.length, lengthAt: el.dataOffset - 2 }))
    .sort((a, b) => a.from - b.from);
  const out = Buffer.from(bytes);
  for (const c of cuts) if (mode === 'empty') out.writeUInt16LE(0, c.lengthAt);
  const groupLength = ds.elements.x00020000;
  if (groupLength) {
    const removed = cuts.filter((c) => c.meta).reduce((n, c) => n + c.to - c.from, 0);
    out.writeUInt32LE(out.readUInt32LE(groupLength.dataOffset) - removed, groupLength.dataOffset);
  }
  const parts: Buffer[] = [];
  let at = 0;
  for (const c of cuts) {
    parts.push(out.subarray(at, c.from));
    at = c.to;
  }
  parts.push(out.subarray(at));
  return Buffer.concat(parts);
}
