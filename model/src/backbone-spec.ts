import { z } from 'zod';

/** The public base model Teachable Machine loads (`@teachablemachine/image`, Apache-2.0): ImageNet weights. */
export const TEACHABLE_MACHINE_MOBILENET_V2_035_URL =
  'https://storage.googleapis.com/teachable-machine-models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top/model.json';

export const BackboneSpecSchema = z.object({
  /** A stable name for the features, e.g. 'mobilenet_v2_0.35-imagenet'; recorded with every head. */
  id: z.string().min(1),
  /**
   * kind 'layers': an http(s):// or file:// URL of a TF.js layers model.json (a functional MobileNet, or a
   * Sequential whose first layer is one, as Teachable Machine exports it).
   * kind 'nsfwjs': 'nsfwjs/<model>' — a layers model shipped inside the nsfwjs npm package, e.g. 'nsfwjs/mobilenet_v2'.
   */
  source: z.string().min(1),
  kind: z.enum(['layers', 'nsfwjs']),
  /** Layers whose outputs are global-average-pooled and concatenated, in this order, into the feature vector. */
  layers: z.array(z.string().min(1)).min(1),
  /** Square input side in pixels; the model's input layer is rebuilt at this size (the nets are convolutional). */
  inputSize: z.number().int().min(32).max(1024),
  /** How RGB bytes are scaled before the first convolution: x/127.5-1 or x/255. */
  scaling: z.enum(['[-1,1]', '[0,1]']),
});
export type BackboneSpec = z.infer<typeof BackboneSpecSchema>;

/** Clean ImageNet MobileNetV2-0.35, fetched from its public URL (or BACKBONE_URL). */
export const CLEAN_BACKBONE: BackboneSpec = {
  id: 'mobilenet_v2_0.35-imagenet',
  source: TEACHABLE_MACHINE_MOBILENET_V2_035_URL,
  kind: 'layers',
  // Pooled and concatenated: six late layers beat out_relu alone by 3 points on photos and 2 at 64 px for the
  // same milliseconds (model/README.md, trade-off table).
  layers: [
    'block_12_add',
    'block_13_expand_relu',
    'block_15_add',
    'block_16_expand_relu',
    'block_16_project_BN',
    'out_relu',
  ],
  inputSize: 224,
  scaling: '[-1,1]',
};

/** The offline fallback: nsfwjs's MobileNetV2 (uint8-quantised; blocks 0–10 keep ImageNet weights). */
export const NPM_BACKBONE: BackboneSpec = {
  id: 'nsfwjs-mobilenet_v2',
  source: 'nsfwjs/mobilenet_v2',
  kind: 'nsfwjs',
  layers: ['block_10_project_BN', 'block_13_expand_relu', 'out_relu'],
  inputSize: 160,
  scaling: '[0,1]',
};
