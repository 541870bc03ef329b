export { calibrate, internalCalibration, fitLine } from './calibrate.js';
export { parseSiteCalibration, readSiteCalibrationFile, matchSiteCalibration, siteCalibrationFileSchema, type SiteMatch } from './site-file.js';
export { sampleReferenceTissues, type TissueSamples, type TissueSample } from './tissue-sampling.js';
export { KVP_REFERENCES, DEFAULT_KVP, FIT_BOUNDS, TISSUE_SD_HU, referenceForKvp, equivalentDensityMgCm3, type KvpReference, type ReferenceTissue } from './references.js';
export { hounsfieldToVbmd, type CalibrationInput, type SiteCalibrationEntry, type SiteCalibrationFile, type Calibrate } from './types.js';
