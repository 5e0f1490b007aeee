import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { BackboneSpecSchema } from './backbone-spec';
import { ClassLabelSchema } from './labels';

export const METADATA_FILE = 'metadata.json';

export const InputSpecSchema = z.object({
  /** Square side in pixels the decoder must produce; equals the head's backbone inputSize. */
  size: z.number().int().positive(),
  /** 'cover': scale to fill the square and centre-crop the rest; 'fill': stretch. */
  resize: z.enum(['cover', 'fill']),
});
export type InputSpec = z.infer<typeof InputSpecSchema>;

/** The backbone a head was trained on: its spec plus what identifies its features exactly. */
export const TrainedOnBackboneSchema = BackboneSpecSchema.extend({
  digest: z.string().regex(/^[0-9a-f]{64}$/, 'a backbone digest is 64 lowercase hex characters (sha256)'),
  featureDim: z.number().int().positive(),
});
export type TrainedOnBackbone = z.infer<typeof TrainedOnBackboneSchema>;

export const HeadEntrySchema = z.object({
  /** e.g. 'clean' (ImageNet backbone fetched by URL) or 'npm' (the offline fallback). */
  id: z.string().min(1),
  /** Folder of the head's TF.js layers model (model.json + weights.bin), relative to the metadata file. */
  path: z.string().min(1),
  backbone: TrainedOnBackboneSchema,
  /** Average the prediction with the horizontally flipped photo's (twice the compute). */
  testTimeFlip: z.boolean().default(false),
  /** Accuracy figures from evaluation, by name (e.g. 'lowres11', 'photos4'), as fractions. */
  accuracy: z.record(z.string(), z.number().min(0).max(1)).default({}),
  /** Measured model time per photo on wasm, one core. */
  msPerPhoto: z.number().positive().optional(),
  version: z.string().min(1).optional(),
  trainedAt: z.string().optional(),
});
export type HeadEntry = z.infer<typeof HeadEntrySchema>;

export const ModelMetadataSchema = z.object({
  schemaVersion: z.literal(1),
  name: z.string().min(1),
  version: z.string().min(1),
  /** In class-index order (Food-11's for the shipped model). */
  labels: z
    .array(ClassLabelSchema)
    .min(2)
    .refine((ls) => ls.every((l, i) => l.index === i), 'labels must be listed in index order 0, 1, 2, …'),
  input: z.object({ resize: z.enum(['cover', 'fill']) }),
  heads: z.array(HeadEntrySchema).min(1),
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
