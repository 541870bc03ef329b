/**
 * A CT volume in Hounsfield units with its geometry in DICOM patient coordinates (LPS, mm).
 *
 * Memory layout follows DICOM/cornerstone: index = i + j*columns + k*columns*rows, where i runs along a
 * row (column index), j down the columns (row index) and k over slices. Voxel (i,j,k) has its centre at
 * originMm + i*spacingMm[0]*direction[0] + j*spacingMm[1]*direction[1] + k*spacingMm[2]*direction[2].
 */
export type Vec3 = [number, number, number];

/** Voxel values in HU: index them alike; never assume float storage (or write fractions into one). */
export type HuArray = Float32Array | Int16Array;

export interface Volume {
  /**
   * HU = stored*slope + intercept, already applied; padding voxels set to PADDING_HU. Int16Array when every
   * HU is an integer in int16 range (CT series with integer rescale: half the memory of float32),
   * Float32Array otherwise (fractional rescale, interpolated gaps, NIfTI, phantoms).
   */
  readonly hu: HuArray;
  /** [columns, rows, slices] */
  readonly dims: Vec3;
  /** [column spacing, row spacing, slice spacing] in mm; slice spacing measured from positions. */
  readonly spacingMm: Vec3;
  /** LPS position of the centre of voxel (0,0,0). */
  readonly originMm: Vec3;
  /** Unit vectors (LPS) of increasing i, j, k. */
  readonly direction: readonly [Vec3, Vec3, Vec3];
}

/** Value written where the scanner marked pixels as padding (outside the reconstruction circle). */
export const PADDING_HU = -1024;

/** What we know about where a volume came from, needed for calibration, QC and the report. */
export interface VolumeMeta {
  kind: 'dicom' | 'nifti' | 'dicomweb' | 'phantom';
  /** File, folder or URL the data came from; for messages, never PHI. */
  source: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  seriesDescription?: string;
  patientId?: string;
  accessionNumber?: string;
  /** ISO 8601 */
  acquisitionDateTime?: string;
  manufacturer?: string;
  manufacturerModelName?: string;
  kvp?: number;
  /** DICOM (0018,0010) Contrast/Bolus Agent present and not "NONE"/empty. */
  contrastAgent?: string;
  /** Why other series were not chosen (DICOM input with several series). */
  skippedSeries?: { seriesInstanceUid: string; reason: string }[];
  /** Non-fatal remarks from assembly (e.g. slight spacing jitter). */
  warnings?: string[];
}

export interface LoadedVolume {
  volume: Volume;
  meta: VolumeMeta;
}

export function voxelCount(v: Pick<Volume, 'dims'>): number {
  return v.dims[0] * v.dims[1] * v.dims[2];
}

export function voxelIndex(v: Pick<Volume, 'dims'>, i: number, j: number, k: number): number {
  return i + v.dims[0] * (j + v.dims[1] * k);
}

/** LPS position (mm) of the centre of voxel (i,j,k); i,j,k may be fractional. */
export function voxelToPatientMm(v: Volume, i: number, j: number, k: number): Vec3 {
  const [sx, sy, sz] = v.spacingMm;
  const [di, dj, dk] = v.direction;
  const out: Vec3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) out[a] = v.originMm[a] + i * sx * di[a] + j * sy * dj[a] + k * sz * dk[a];
  return out;
}

/** Inverse of voxelToPatientMm (direction vectors assumed orthonormal). */
export function patientMmToVoxel(v: Volume, p: Vec3): Vec3 {
  const d: Vec3 = [p[0] - v.originMm[0], p[1] - v.originMm[1], p[2] - v.originMm[2]];
  const out: Vec3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const u = v.direction[a];
    out[a] = (d[0] * u[0] + d[1] * u[1] + d[2] * u[2]) / v.spacingMm[a];
  }
  return out;
}
