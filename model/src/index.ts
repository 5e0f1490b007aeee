/**
 * The model's run-time library: backbones, their digests, the model metadata, and the classifier. Backend-neutral:
 * nothing here picks a TF.js backend except initBackend, which the caller runs first.
 */
export { initBackend, type BackendName } from './backend';
export {
  CLEAN_BACKBONE,
  NPM_BACKBONE,
  TEACHABLE_MACHINE_MOBILENET_V2_035_URL,
  BackboneSpecSchema,
  type BackboneSpec,
} from './backbone-spec';
export {
  loadBackbone,
  fetchBackboneIntoCache,
  BackboneMismatchError,
  type Backbone,
  type BackboneLoadOptions,
} from './backbone';
export { DEFAULT_BACKBONE_CACHE_DIR, cacheEntryDir } from './backbone-cache';
export { backboneDigest } from './digest';
export {
  readArtifactsFromUrl,
  readArtifactsDir,
  writeArtifactsDir,
  saveLayersModel,
  loadLayersModelDir,
  DEFAULT_FETCH_TIMEOUT_MS,
  type LayersArtifacts,
} from './artifacts';
export { FOOD11_LABELS, ClassLabelSchema, type ClassLabel } from './labels';
export {
  readMetadata,
  writeMetadata,
  ModelMetadataSchema,
  HeadEntrySchema,
  InputSpecSchema,
  METADATA_FILE,
  type ModelMetadata,
  type ModelMetadataInput,
  type HeadEntry,
  type InputSpec,
  type TrainedOnBackbone,
} from './metadata';
export {
  loadClassifier,
  defaultModelDir,
  type Classifier,
  type LoadOptions,
  type ModelInfo,
} from './classifier';
export { timeExtraction, type ExtractionTiming } from './bench-backbones';
export type { LogFn } from './log';
