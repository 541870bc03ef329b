export { generatePhantom, parseLevelRange } from './generate.js';
export { writePhantom, type WrittenPhantom } from './write.js';
export {
  PHANTOM_TRUTH_SCHEMA,
  PHANTOM_GENERATOR_VERSION,
  phantomTruth,
  phantomLevelTruth,
  type Phantom,
  type PhantomOptions,
  type PhantomTruth,
  type PhantomLevelTruth,
  type LesionKind,
  type LesionRequest,
  type FractureRequest,
} from './types.js';
