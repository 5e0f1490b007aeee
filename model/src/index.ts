/**
 * The model's run-time library: the one preprocessing from photo bytes to the model's input, the metadata that
 * says how, and the classifier. Backend-neutral: nothing here picks a TF.js backend except initBackend, which the
 * caller runs first.
 */
export { initBackend, type BackendName } from './backend';
export {
  readArtifactsDir,
  readArtifactsFromUrl,
  writeArtifactsDir,
  saveLayersModel,
  layersModelFromArtifacts,
  type LayersArtifacts,
} from './artifacts';
export { FOOD11_LABELS, ClassLabelSchema, type ClassLabel } from './labels';
export {
  readMetadata,
  writeMetadata,
  ModelMetadataSchema,
  ViewSchema,
  NetworkSchema,
  METADATA_FILE,
  CROP_MODES,
  WEIGHTS_DTYPES,
  type CropMode,
  type WeightsDtype,
  type ModelMetadata,
  type ModelMetadataInput,
  type View,
  type Network as NetworkSpec,
} from './metadata';
export { loadNetwork, type Network } from './network';
export {
  preprocessPhoto,
  preprocessPixels,
  DEFAULT_MAX_PIXELS,
  IMAGE_FORMATS,
  ACCEPTED_FORMATS,
  DECODER_NAMES,
  sniffFormat,
  headerDimensions,
  DecodeError,
  type DecodedImage,
  type DecodeErrorCode,
  type DecodeOptions,
  type DecoderName,
  type ImageFormat,
} from './preprocess';
export {
  loadClassifier,
  defaultModelDir,
  type Classifier,
  type LoadOptions,
  type ModelInfo,
} from './classifier';
export type { LogFn } from './log';
