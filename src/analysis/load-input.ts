import { stat } from 'node:fs/promises';
import { FolderDicomSource } from '../dicom/folder-source.js';
import { loadStudyVolume, type LoadStudyOptions } from '../dicom/load-study.js';
import { VbmdError } from '../util/errors.js';
import type { LoadedVolume } from '../imaging/volume.js';

/**
 * `vbmd analyze <input>`: a NIfTI file (.nii/.nii.gz, affine honoured) or a folder of DICOM files (any
 * nesting, several series; the best series is chosen) or a single DICOM file. Bad input becomes one clear
 * VbmdError: path missing, empty folder, no DICOM among N files, no usable series, broken series.
 */
export async function loadInputPath(path: string, opts: LoadStudyOptions = {}): Promise<LoadedVolume> {
  let isFile: boolean;
  try {
    isFile = (await stat(path)).isFile();
  } catch {
    throw new VbmdError('not-found', `${path} does not exist; give a DICOM folder or a .nii/.nii.gz file.`);
  }
  // The NIfTI reader loads only for NIfTI input (~30 ms of start-up a DICOM analysis does not need).
  if (isFile && /\.nii(\.gz)?$/i.test(path)) return (await import('../imaging/nifti.js')).readNiftiFile(path);

  const source = new FolderDicomSource(path);
  const scan = await source.scan(opts);
  const dicomFiles = scan.series.reduce((a, s) => a + s.files.length, 0);
  if (scan.fileCount === 0) throw new VbmdError('bad-input', `${path} is an empty folder; it holds no DICOM files.`);
  if (dicomFiles === 0) {
    const broken = scan.unreadable[0];
    throw new VbmdError(
      'bad-input',
      broken
        ? `No readable DICOM image in ${path}: ${scan.unreadable.length} DICOM file(s) could not be read (e.g. ${broken.message}) and ${scan.nonDicomCount} other file(s) are not DICOM.`
        : isFile
          ? `${path} is neither a DICOM file nor a .nii/.nii.gz file.`
          : `No DICOM files found in ${path} among its ${scan.fileCount} file(s) (e.g. ${scan.nonDicomExamples.join(', ')}).`,
    );
  }
  const loaded = await loadStudyVolume(source, {}, opts);
  const notes: string[] = [];
  const studies = new Set(scan.series.map((s) => s.studyInstanceUid));
  if (studies.size > 1) {
    notes.push(`${path} holds ${studies.size} studies; only study ${loaded.meta.studyInstanceUid} was analysed (give a folder per study to choose).`);
  }
  if (scan.nonDicomCount > 0) notes.push(`${scan.nonDicomCount} non-DICOM file(s) in ${path} were ignored (e.g. ${scan.nonDicomExamples.join(', ')}).`);
  if (scan.unreadable.length > 0) {
    notes.push(`${scan.unreadable.length} DICOM file(s) could not be read and were ignored (e.g. ${scan.unreadable[0].message}).`);
  }
  if (notes.length > 0) loaded.meta.warnings = [...(loaded.meta.warnings ?? []), ...notes];
  return loaded;
}
