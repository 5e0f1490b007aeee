import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ClassLabelSchema } from './labels';

export const METADATA_FILE = 'metadata.json';

/** 'cover': scale to fill the square and centre-crop the rest; 'fill': stretch. */
export const CROP_MODES = ['cover', 'fill'] as const;
export type CropMode = (typeof CROP_MODES)[number];

export const WEIGHTS_DTYPES = ['float32', 'float16'] as const;
export type WeightsDtype = (typeof WEIGHTS_DTYPES)[number];

/**
 * How a photo is brought to the model (model/src/preprocess.ts): EXIF rotation, sRGB, then `crop` to a square of
 * `size` pixels, and — for a model trained on the 64 px look — a JPEG round trip at `jpegQuality`, as the 64 px
 * photos were stored. The same view in training and serving is what keeps sharpness from naming a class.
 */
const ViewSchema = z.object({
  size: z.number().int().positive().max(1024),
  crop: z.enum(CROP_MODES),
  jpegQuality: z.number().int().min(1).max(100).optional(),
});
export type View = z.infer<typeof ViewSchema>;

/** The whole network, as a TF.js layers model: view bytes resized to `inputSize`, scaled, classified. */
const NetworkSchema = z.object({
  /** Folder of the TF.js layers model (model.json + weights.bin), relative to the metadata file. */
  path: z.string().min(1),
  /** e.g. 'mobilenet_v2_0.35'. */
  architecture: z.string().min(1),
  /** The view is resized (bilinear, half-pixel centres) to this square before the first layer. */
  inputSize: z.number().int().positive().max(1024),
  /** x / 127.5 − 1, as MobileNetV2 was trained on ImageNet. */
  scaling: z.literal('[-1,1]'),
  /** Average the prediction with the mirrored photo's (twice the compute). */
  testTimeFlip: z.boolean().default(false),
  weightsDtype: z.enum(WEIGHTS_DTYPES).default('float32'),
});

/** What the network was fine-tuned from, for attribution and for `train --base`. */
const BaseSchema = z.object({
  id: z.string().min(1),
  source: z.string().min(1),
  licence: z.string().min(1),
});

export const ModelMetadataSchema = z.object({
  schemaVersion: z.literal(2),
  name: z.string().min(1),
  version: z.string().min(1),
  /** In class-index order (Food-11's for the shipped model). */
  labels: z
    .array(ClassLabelSchema)
    .min(2)
    .refine((ls) => ls.every((l, i) => l.index === i), 'labels must be listed in index order 0, 1, 2, …'),
  view: ViewSchema,
  network: NetworkSchema,
  base: BaseSchema,
  /** Accuracy figures from evaluation, by name (e.g. 'validation:lowres'), as fractions. */
  accuracy: z.record(z.string(), z.number().min(0).max(1)).default({}),
  /** Measured model time per photo on wasm, one core, batch 1. */
  msPerPhoto: z.number().positive().optional(),
  trainedAt: z.string().optional(),
  /** The training recipe, as the trainer recorded it. */
  training: z.record(z.string(), z.unknown()).optional(),
});
export type ModelMetadata = z.infer<typeof ModelMetadataSchema>;
/** What a writer supplies: fields with defaults may be left out. */
export type ModelMetadataInput = z.input<typeof ModelMetadataSchema>;

function formatIssues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** Reads and validates `<dir>/metadata.json`. */
export async function readMetadata(dir: string): Promise<ModelMetadata> {
  const file = path.join(dir, METADATA_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new Error(
      `No model metadata at ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); ` +
        'set MODEL_DIR to a folder made by the training CLI.',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = ModelMetadataSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${file} is not valid model metadata: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/** Validates and writes `<dir>/metadata.json`; returns what was written. */
export async function writeMetadata(dir: string, metadata: ModelMetadataInput): Promise<ModelMetadata> {
  const parsed = ModelMetadataSchema.safeParse(metadata);
  if (!parsed.success)
    throw new Error(`Refusing to write invalid model metadata: ${formatIssues(parsed.error)}`);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, METADATA_FILE), JSON.stringify(parsed.data, null, 2) + '\n');
  return parsed.data;
}
