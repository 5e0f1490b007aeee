/**
 * The model's run-time library: the one preprocessing from photo bytes to the model's input, the metadata that
 * says how, and the classifier. Backend-neutral: nothing here picks a TF.js backend except initBackend, which the
 * caller runs first.
 */
export { initBackend, type BackendName } from './backend';
export { readArtifactsFromUrl, writeArtifactsDir } from './artifacts';
export { FOOD11_LABELS, type ClassLabel } from './labels';
export {
  readMetadata,
  writeMetadata,
  CROP_MODES,
  WEIGHTS_DTYPES,
  type CropMode,
  type WeightsDtype,
  type ModelMetadata,
  type ModelMetadataInput,
  type View,
} from './metadata';
export { loadNetwork, type Network } from './network';
export {
  preprocessPhoto,
  preprocessPixels,
  DEFAULT_MAX_PIXELS,
  ACCEPTED_FORMATS,
  DECODER_NAMES,
  sniffFormat,
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
