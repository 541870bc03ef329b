import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import dcmjs from 'dcmjs';
import { ds, encodeHeader, newDicomUid, writePixelDataElementHeader } from '../../src/dicom/write-series.js';
import type { Vec3, Volume } from '../../src/imaging/volume.js';

const { DicomMetaDictionary } = dcmjs.data;

/**
 * Test fixtures: a volume written as one Enhanced CT Image Storage object (PS3.3 A.38), frames carrying
 * their geometry in Multi-frame Functional Groups (C.7.6.16): Plane Position per frame, and Pixel
 * Measures, Plane Orientation and Pixel Value Transformation either shared or repeated per frame. Built
 * with dcmjs from the same synthetic volumes as the single-frame fixtures (Debian's dicom3tools has no
 * dcmulti to build them independently); dcm2niix and dciodvfy check the result in the tests.
 */
export const ENHANCED_CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2.1';

export interface EnhancedCtOptions {
  patientId?: string;
  /** '' writes an empty (Type 1 violated, as some exports do) UID; undefined generates one. */
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  seriesNumber?: number;
  manufacturer?: string;
  /** Geometry and rescale in the Shared Functional Groups (default) or repeated in every frame's item. */
  shared?: boolean;
  /** Frame f holds slice frameOrder[f] of the volume (default: reversed, so frame order is not slice order). */
  frameOrder?: number[];
  rescaleSlope?: number;
  rescaleIntercept?: number;
  acquisitionDateTime?: string;
}

export async function writeEnhancedCt(file: string, volume: Volume, o: EnhancedCtOptions = {}): Promise<void> {
  const [cols, rows, slices] = volume.dims;
  const order = o.frameOrder ?? Array.from({ length: slices }, (_, k) => slices - 1 - k);
  const slope = o.rescaleSlope ?? 1;
  const intercept = o.rescaleIntercept ?? -1024;
  const [di, dj, dk] = volume.direction;
  const [sx, sy, sz] = volume.spacingMm;
  const sop = o.sopInstanceUid ?? newDicomUid();
  const dimensionOrganization = newDicomUid();
  const measures = { PixelMeasuresSequence: [{ PixelSpacing: [ds(sy), ds(sx)], SliceThickness: ds(sz) }] };
  const orientation = { PlaneOrientationSequence: [{ ImageOrientationPatient: [...di, ...dj].map(ds) }] };
  const transform = { PixelValueTransformationSequence: [{ RescaleIntercept: ds(intercept), RescaleSlope: ds(slope), RescaleType: 'HU' }] };
  const geometry = { ...measures, ...orientation, ...transform };
  const perFrame = order.map((k, f) => {
    const pos: Vec3 = [0, 0, 0];
    for (let a = 0; a < 3; a++) pos[a] = volume.originMm[a] + k * sz * dk[a];
    return {
      FrameContentSequence: [{ StackID: '1', InStackPositionNumber: k + 1, DimensionIndexValues: [1, k + 1], FrameAcquisitionNumber: 1, FrameAcquisitionDateTime: dt(o), FrameReferenceDateTime: dt(o), FrameAcquisitionDuration: 100, TemporalPositionIndex: 1 + 0 * f }],
      PlanePositionSequence: [{ ImagePositionPatient: pos.map(ds) }],
      CTImageFrameTypeSequence: [{ FrameType: ['ORIGINAL', 'PRIMARY', 'VOLUME', 'NONE'], PixelPresentation: 'MONOCHROME', VolumetricProperties: 'VOLUME', VolumeBasedCalculationTechnique: 'NONE' }],
      ...(o.shared === false ? geometry : {}),
    };
  });
  const dataset: Record<string, unknown> = {
    SpecificCharacterSet: 'ISO_IR 100',
    ImageType: ['ORIGINAL', 'PRIMARY', 'VOLUME', 'NONE'],
    SOPClassUID: ENHANCED_CT_IMAGE_STORAGE,
    SOPInstanceUID: sop,
    StudyDate: dt(o).slice(0, 8),
    StudyTime: dt(o).slice(8),
    ContentDate: dt(o).slice(0, 8),
    ContentTime: dt(o).slice(8),
    AcquisitionDateTime: dt(o),
    AccessionNumber: 'ACC-E',
    Modality: 'CT',
    Manufacturer: o.manufacturer ?? 'VBMD TEST',
    ManufacturerModelName: 'Synthetic',
    DeviceSerialNumber: '1',
    SoftwareVersions: '1',
    ReferringPhysicianName: '',
    PatientName: 'ENHANCED^CT',
    PatientID: o.patientId ?? 'ENH-1',
    PatientBirthDate: '',
    PatientSex: '',
    StudyInstanceUID: o.studyInstanceUid ?? newDicomUid(),
    SeriesInstanceUID: o.seriesInstanceUid ?? newDicomUid(),
    StudyID: '1',
    SeriesNumber: String(o.seriesNumber ?? 7),
    InstanceNumber: '1',
    FrameOfReferenceUID: newDicomUid(),
    PositionReferenceIndicator: '',
    PatientPosition: 'HFS',
    AcquisitionContextSequence: [],
    AcquisitionDuration: 5,
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    NumberOfFrames: String(slices),
    Rows: rows,
    Columns: cols,
    BitsAllocated: 16,
    BitsStored: 16,
    HighBit: 15,
    PixelRepresentation: 1,
    ContentQualification: 'PRODUCT',
    BurnedInAnnotation: 'NO',
    LossyImageCompression: '00',
    PresentationLUTShape: 'IDENTITY',
    AcquisitionNumber: '1',
    VolumetricProperties: 'VOLUME',
    VolumeBasedCalculationTechnique: 'NONE',
    PixelPresentation: 'MONOCHROME',
    DimensionOrganizationType: '3D',
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimensionOrganization }],
    DimensionIndexSequence: [
      { DimensionOrganizationUID: dimensionOrganization, DimensionIndexPointer: 0x00209056, FunctionalGroupPointer: 0x00209111, DimensionDescriptionLabel: 'Stack ID' },
      { DimensionOrganizationUID: dimensionOrganization, DimensionIndexPointer: 0x00209057, FunctionalGroupPointer: 0x00209111, DimensionDescriptionLabel: 'In-Stack Position' },
    ],
    SharedFunctionalGroupsSequence: [
      {
        ...(o.shared === false ? {} : geometry),
        ...ctAcquisitionMacros(sx, sy, cols),
      },
    ],
    PerFrameFunctionalGroupsSequence: perFrame,
  };
  const header = encodeHeader(DicomMetaDictionary.denaturalizeDataset(dataset), ENHANCED_CT_IMAGE_STORAGE, sop);
  const plane = cols * rows;
  const pixels = Buffer.alloc(plane * slices * 2);
  order.forEach((k, f) => {
    for (let n = 0; n < plane; n++) {
      const v = Math.round((volume.hu[k * plane + n] - intercept) / slope);
      pixels.writeInt16LE(Math.max(-32768, Math.min(32767, v)), (f * plane + n) * 2);
    }
  });
  const el = Buffer.alloc(12);
  writePixelDataElementHeader(el, 0, pixels.length);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, Buffer.concat([header, el, pixels]));
}

/** The CT-specific functional group macros the Enhanced CT IOD requires (PS3.3 C.8.15.3), with plausible values. */
function ctAcquisitionMacros(sx: number, sy: number, cols: number): Record<string, unknown> {
  return {
    FrameAnatomySequence: [{ AnatomicRegionSequence: [{ CodeValue: '818981001', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Abdomen' }], FrameLaterality: 'U' }],
    IrradiationEventIdentificationSequence: [{ IrradiationEventUID: '2.25.1' }],
    CTAcquisitionTypeSequence: [{ AcquisitionType: 'SPIRAL', ConstantVolumeFlag: 'NO', FluoroscopyFlag: 'NO' }],
    CTAcquisitionDetailsSequence: [{ DataCollectionDiameter: ds(cols * sx), GantryDetectorTilt: '0', TableHeight: '150', RotationDirection: 'CW', SingleCollimationWidth: 0.6, TotalCollimationWidth: 38.4 }],
    CTTableDynamicsSequence: [{ TableSpeed: 50, TableFeedPerRotation: 40, SpiralPitchFactor: 1 }],
    CTPositionSequence: [{ TablePosition: 0, ReconstructionTargetCenterPatient: [0, 0, 0], DataCollectionCenterPatient: [0, 0, 0] }],
    CTGeometrySequence: [{ DistanceSourceToDetector: 1000, DistanceSourceToDataCollectionCenter: 500 }],
    CTReconstructionSequence: [{ ReconstructionAlgorithm: 'FILTER_BACK_PROJ', ConvolutionKernel: ['B30f'], ConvolutionKernelGroup: 'SOFT_TISSUE', ReconstructionDiameter: ds(cols * sx), ReconstructionPixelSpacing: [sy, sx], ReconstructionAngle: 360, ImageFilter: 'NONE' }],
    CTExposureSequence: [{ ExposureTimeInms: 500, XRayTubeCurrentInmA: 200, ExposureInmAs: 100, ExposureModulationType: 'NONE' }],
    CTXRayDetailsSequence: [{ KVP: '120', FocalSpots: ['1.2'], FilterType: 'FLAT', FilterMaterial: ['AL'], CalciumScoringMassFactorPatient: 1, CalciumScoringMassFactorDevice: [1, 1, 1] }],
  };
}

function dt(o: EnhancedCtOptions): string {
  return (o.acquisitionDateTime ?? '2024-05-06T07:08:09').replace(/[-:T]/g, '');
}
