import { z } from 'zod';
import { vertebraLevel, type VertebraLevel } from '../../bmd/report.js';
import type { LoadedVolume } from '../../imaging/volume.js';
import type { Person } from './anatomy.js';
import type { Vertebra } from './anatomy.js';
import type { Placement } from './frame.js';
import type { HardAnatomy } from './hard/anatomy.js';
import type { HardRequest } from './hard/spec.js';

export const PHANTOM_TRUTH_SCHEMA = 'vbmd.phantom-truth/1';
export const PHANTOM_GENERATOR_VERSION = '1.0.0';

export type LesionKind = 'blastic' | 'lytic';
export const PHANTOM_PRESETS = ['default', 'hard'] as const;
export type PhantomPreset = (typeof PHANTOM_PRESETS)[number];

export interface LesionRequest {
  level: VertebraLevel;
  /** Default: chosen by the seed. */
  kind?: LesionKind;
}

export interface FractureRequest {
  level: VertebraLevel;
  /** Anterior height loss as a fraction of the posterior height; default drawn in 0.25-0.40. */
  heightLossFraction?: number;
}

export interface PhantomOptions {
  /** Any integer; the same seed and options give the same phantom, voxel for voxel. Default 1. */
  seed?: number;
  /**
   * 'default' (unchanged since the model was trained on it) or 'hard': real-CT anatomy and acquisitions drawn per
   * seed (src/research/phantom/hard). Options given explicitly override the hard preset's own draws.
   */
  preset?: PhantomPreset;
  /** Hard preset: restrict or force its features. */
  hard?: HardRequest;
  /** Levels the scan must cover fully, e.g. "T8-L3" (chest CT ~ "T1-L2", abdomen ~ "T10-L5", "T10-S1"). */
  levels?: string;
  /** Per-level trabecular vBMD overrides, mg/cm3 K2HPO4; other levels follow the seed around their mean. */
  vbmdMgCm3?: Partial<Record<VertebraLevel, number>>;
  /** Tube voltage; default drawn from 100/120/140 (mostly 120). */
  kvp?: number;
  /** Image noise SD in a uniform region, HU; default drawn 12-30. */
  noiseHu?: number;
  /** Reconstructed slice thickness, mm (default 1.0). */
  sliceThicknessMm?: number;
  /** Distance between slice centres, mm (default = thickness). */
  sliceSpacingMm?: number;
  /** Rows = columns (default 512). */
  size?: number;
  /** In-plane pixel spacing, mm (default: a seed-drawn 340-420 mm field of view / size). */
  pixelSpacingMm?: number;
  /** Intravenous iodinated contrast (portal-venous like): enhanced blood, organs, slightly denser marrow. */
  contrast?: boolean;
  lesions?: LesionRequest[];
  fractures?: FractureRequest[];
  /** Allow the ~2 % of people with 11 or 13 rib pairs (default true). */
  ribAnomalies?: boolean;
  /** Override the seed-drawn scanner (matched by name against the built-in list, or used as given). */
  manufacturer?: string;
  manufacturerModelName?: string;
}

const vec3 = z.tuple([z.number(), z.number(), z.number()]);

export const phantomLevelTruth = z.object({
  level: vertebraLevel,
  /** True trabecular vBMD, mg/cm3 K2HPO4-equivalent (the number a perfect measurement returns). */
  vbmdMgCm3: z.number(),
  /** Expected HU of the central trabecular bone: intercept + slope*vBMD + contrast + beam-hardening cupping. */
  trabecularHu: z.number(),
  /** Centre of the vertebral body, LPS mm. */
  centerMm: vec3,
  heightsMm: z.object({ anterior: z.number(), middle: z.number(), posterior: z.number() }),
  halfWidthMm: z.number(),
  halfDepthMm: z.number(),
  /** Axis-aligned bounding box of the body, LPS mm. */
  bboxMm: z.object({ min: vec3, max: vec3 }),
  /** Sagittal tilt of the endplates from axial, degrees (lordosis/kyphosis). */
  tiltDeg: z.number(),
  hasRibs: z.boolean(),
  /** The whole body lies inside the scanned z-range. */
  fullyCovered: z.boolean(),
  lesion: z
    .object({ kind: z.enum(['blastic', 'lytic']), centerMm: vec3, radiusMm: z.number(), hu: z.number() })
    .nullable(),
  fracture: z
    .object({
      heightLossFraction: z.number(),
      /** Hard preset: shape and Genant semiquantitative grade (1 mild 20-25 %, 2 moderate 25-40 %, 3 severe > 40 %). */
      shape: z.enum(['wedge', 'biconcave', 'crush']).optional(),
      genantGrade: z.number().int().min(1).max(3).optional(),
    })
    .nullable(),
  /** Centre of the aorta in this body's mid-slice, LPS mm. */
  aortaCenterMm: vec3,
  aortaRadiusMm: z.number(),
  // The fields below are written by the hard preset only (src/research/phantom/hard).
  /** The body's local axes in LPS: u lateral (left), v posterior, w along the spine (superior endplate normal). */
  bodyAxes: z.object({ u: vec3, v: vec3, w: vec3 }).optional(),
  /** Centres and outward normals of the superior and inferior endplates, LPS mm. */
  endplates: z.object({ superior: z.object({ centerMm: vec3, normal: vec3 }), inferior: z.object({ centerMm: vec3, normal: vec3 }) }).optional(),
  /** The whole body lies inside the reconstructed field in-plane (a small field of view can cut it). */
  inPlaneCovered: z.boolean().optional(),
  hardware: z.object({ cement: z.boolean(), screws: z.boolean() }).optional(),
  transitional: z.enum(['sacralised-L5', 'lumbarised-S1']).optional(),
  discBelow: z
    .object({ heightMm: z.number(), vacuum: z.boolean(), calcified: z.boolean(), osteophyteMm: z.number(), bridging: z.boolean(), sclerosisMm: z.number() })
    .optional(),
});
export type PhantomLevelTruth = z.infer<typeof phantomLevelTruth>;

/** What a hard study shows and how it was acquired (src/research/phantom/hard). */
export const hardTruth = z.object({
  /** Hard features drawn present for this study (some may lie outside the scanned range). */
  features: z.array(z.string()),
  /** Features whose anatomy is in the scanned volume. */
  featuresInView: z.array(z.string()),
  arms: z.enum(['up', 'down']),
  contrastPhase: z.enum(['arterial', 'portal-venous', 'nephrographic', 'excretory']).nullable(),
  range: z.object({ kind: z.string(), top: z.string(), bottom: z.string() }),
  fov: z.object({ kind: z.string(), matrix: z.number().int(), pixelMm: z.number(), centerMm: z.tuple([z.number(), z.number()]) }),
  clipMaxHu: z.number(),
  noise2mmHu: z.number(),
  transitional: z.enum(['sacralised-L5', 'lumbarised-S1']).nullable(),
  curvature: z.object({ kyphosisCobbDeg: z.number(), lordosisCobbDeg: z.number(), sacralSlopeDeg: z.number(), scoliosisCobbDeg: z.number() }),
  /** Levels carrying pedicle screws, and bodies with vertebroplasty cement. */
  screwLevels: z.array(z.string()),
  cementLevels: z.array(z.string()),
});
export type HardTruth = z.infer<typeof hardTruth>;

export const phantomTruth = z.object({
  schema: z.literal(PHANTOM_TRUTH_SCHEMA),
  generatorVersion: z.string(),
  seed: z.number(),
  /** Options as given plus every default that was drawn. */
  options: z.record(z.string(), z.unknown()),
  volume: z.object({ dims: vec3, spacingMm: vec3, originMm: vec3, sliceThicknessMm: z.number() }),
  scanner: z.object({
    manufacturer: z.string(),
    model: z.string(),
    kvp: z.number(),
    effectiveEnergyKev: z.number(),
    boneEffectiveEnergyKev: z.number(),
    waterEquivalentDiameterMm: z.number(),
    psfSigmaMm: z.number(),
  }),
  /** The bone calibration line at the spine: trabecular HU = intercept + slope * vBMD (before cupping/contrast). */
  calibration: z.object({
    slope: z.number(),
    intercept: z.number(),
    kvp: z.number(),
    manufacturer: z.string(),
    model: z.string(),
  }),
  /** Unenhanced tissue HUs this person/scanner was drawn with. */
  tissueHu: z.record(z.string(), z.number()),
  contrast: z.object({ enabled: z.boolean(), iodineMgMl: z.number(), aortaHu: z.number(), trabecularDeltaHu: z.number() }),
  noise: z.object({ sdHu: z.number(), psfSigmaMm: z.number() }),
  /** Central beam-hardening depression at the spine, HU (added to every tissue there). */
  cuppingAtSpineHu: z.number(),
  ribPairs: z.number().int(),
  levels: z.array(phantomLevelTruth),
  /** Absent for the default preset. */
  preset: z.literal('hard').optional(),
  hard: hardTruth.optional(),
});
export type PhantomTruth = z.infer<typeof phantomTruth>;

export interface Phantom {
  loaded: LoadedVolume;
  truth: PhantomTruth;
  /**
   * The analytic anatomy the volume was rendered from and where it sat in the scanner, for truth that the JSON
   * does not carry (the model's trabecular-mask labels, src/research/training-data/truth-mask.ts). In memory only; not written.
   */
  anatomy?: {
    person: Person;
    placement: Placement;
    /** Hard preset: the spine drawn (with C6, and S2 under a lumbarised S1). */
    spine?: Vertebra[];
    /** Hard preset: its spec and the structures the default phantom lacks (girdle, sternum, cartilage, hardware). */
    hard?: HardAnatomy;
  };
}
