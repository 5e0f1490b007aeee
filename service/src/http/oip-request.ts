import { z } from 'zod';
import { HttpError } from './http-error';
import { checkPhotoFormat } from './photo-format';
import { megabytes } from '../inference/decode-memory';
import type { ModelInput } from '../inference/prediction';
import type { ModelDescription } from '../inference/worker-protocol';

/**
 * An Open Inference Protocol v2 infer request, from the bytes of its body to the Predictor's inputs. Two input
 * forms: BYTES holding encoded images (base64 in JSON), or FP32 [N, H, W, 3] pixel values in 0..255. Everything a
 * request can get wrong is found here, before it is admitted, and every step is bounded before it runs: the values
 * are counted before JSON.parse builds them, the base64 is checked in linear time, shapes are judged before a
 * value is read.
 */

export interface OipBudget {
  maxUploadBytes: number;
  maxPixels: number;
  /** images one request may carry; FP32 values are budgeted as this many images of the model's view size */
  maxImages: number;
}

export const OUTPUT_NAMES = ['probabilities', 'label'] as const;
export type OutputName = (typeof OUTPUT_NAMES)[number];

export interface InferRequest {
  id?: string;
  inputs: ModelInput[];
  /** the outputs to answer with, in the protocol's order */
  outputs: OutputName[];
}

const tensorSchema = z.object({
  name: z.string().min(1),
  shape: z.array(z.number().int().min(0)).min(1),
  datatype: z.string(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  data: z.array(z.unknown()),
});

const inferRequestSchema = z.object({
  id: z.string().optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  inputs: z.array(tensorSchema).min(1, 'inputs must hold one tensor'),
  outputs: z.array(z.object({ name: z.string() })).optional(),
});

type Tensor = z.infer<typeof tensorSchema>;

const badRequest = (message: string) => new HttpError(400, 'bad_request', message);
const tooLarge = (message: string) => new HttpError(413, 'too_large', message);

const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The base64 characters of one photo of at most maxBytes (4 for every 3 bytes, padded). */
const base64Chars = (maxBytes: number) => Math.ceil(maxBytes / 3) * 4;

const DATA_URL_PREFIX_MAX = 256;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * One BYTES element to the photo it encodes. Every step is linear in the element's length (the check used to
 * be a pattern that backtracked quadratically on a run of whitespace), and the size is bounded before the
 * bytes are decoded.
 */
function photoFromBase64(element: unknown, where: string, maxBytes: number): Buffer {
  const photoTooLarge = () =>
    tooLarge(
      `${where}: the photo is larger than ${megabytes(maxBytes)}; send a smaller or more compressed one.`,
    );
  if (typeof element !== 'string') throw badRequest(`${where}: expected a base64 string.`);
  let base64 = element;
  // A data: URL prefix is tolerated, as browsers' FileReader produces it.
  if (base64.startsWith('data:')) {
    const comma = base64.indexOf(',');
    if (comma < 0 || comma > DATA_URL_PREFIX_MAX || !base64.slice(0, comma).endsWith(';base64')) {
      throw badRequest(`${where}: a data: URL must be base64 (data:image/jpeg;base64,...).`);
    }
    base64 = base64.slice(comma + 1);
  }
  base64 = base64.replace(/\s+/g, '');
  if (base64.length > base64Chars(maxBytes)) {
    throw photoTooLarge();
  }
  // A lone character after the last group of four cannot encode a byte: a truncated or corrupt string.
  if (!BASE64.test(base64) || base64.replace(/=+$/, '').length % 4 === 1) {
    throw badRequest(`${where}: not valid base64.`);
  }
  const photo = Buffer.from(base64, 'base64');
  if (photo.length === 0) throw badRequest(`${where}: the image is empty.`);
  if (photo.length > maxBytes) {
    throw photoTooLarge();
  }
  checkPhotoFormat(photo);
  return photo;
}

/** BYTES: one encoded image per element, base64 in JSON. Everything is checked before any is decoded. */
function photosFromBytes(tensor: Tensor, budget: OipBudget): ModelInput[] {
  if (tensor.data.length === 0) throw badRequest(`Input '${tensor.name}' holds no image.`);
  if (product(tensor.shape) !== tensor.data.length) {
    throw badRequest(
      `Input '${tensor.name}': shape [${tensor.shape.join(', ')}] does not match ${tensor.data.length} elements.`,
    );
  }
  if (tensor.data.length > budget.maxImages) {
    throw tooLarge(
      `Input '${tensor.name}' holds ${tensor.data.length} images: send at most ${budget.maxImages} per request.`,
    );
  }
  return tensor.data.map((element, i) => ({
    photo: photoFromBase64(element, `Input '${tensor.name}' element ${i}`, budget.maxUploadBytes),
  }));
}

/** Values an FP32 request may hold: maxImages images of the model's view size. */
export const valueBudget = (model: ModelDescription, budget: OipBudget) =>
  budget.maxImages * model.view.size ** 2 * 3;

/**
 * FP32 [N, H, W, 3] in 0..255, clamped to bytes. The shape is judged before a value is read: more images or
 * more values than the model can use are refused, so no request makes the server hold millions of numbers.
 */
function imagesFromFloats(tensor: Tensor, model: ModelDescription, budget: OipBudget): ModelInput[] {
  const [n, height, width, channels] = tensor.shape;
  if (tensor.shape.length !== 4 || channels !== 3 || !n || !height || !width) {
    throw badRequest(
      `Input '${tensor.name}': FP32 shape must be [N, H, W, 3] with N, H, W > 0, got [${tensor.shape.join(', ')}].`,
    );
  }
  if (n > budget.maxImages) {
    throw tooLarge(`Input '${tensor.name}' holds ${n} images: send at most ${budget.maxImages} per request.`);
  }
  const { size } = model.view;
  const values = product(tensor.shape);
  if (values > valueBudget(model, budget)) {
    throw tooLarge(
      `Input '${tensor.name}': [${tensor.shape.join(', ')}] is ${values} values, more than this model uses; send images of ${size}x${size} (at most ${valueBudget(model, budget)} values per request).`,
    );
  }
  if (height * width > budget.maxPixels) {
    throw new HttpError(
      422,
      'too_many_pixels',
      `Input '${tensor.name}': ${width}x${height} exceeds ${budget.maxPixels} pixels.`,
    );
  }
  const flat = tensor.data.flat(3);
  if (flat.length !== values) {
    throw badRequest(
      `Input '${tensor.name}': shape [${tensor.shape.join(', ')}] needs ${values} values, got ${flat.length}.`,
    );
  }
  const perImage = height * width * 3;
  const images: ModelInput[] = [];
  for (let k = 0; k < n; k++) {
    const pixels = new Uint8Array(perImage);
    for (let i = 0; i < perImage; i++) {
      const v = flat[k * perImage + i];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw badRequest(`Input '${tensor.name}': value ${k * perImage + i} is not a finite number.`);
      }
      pixels[i] = Math.min(255, Math.max(0, Math.round(v)));
    }
    images.push({ pixels, width, height });
  }
  return images;
}

/**
 * Counts the commas outside JSON strings (an upper bound on array values), stopping once past the limit: a
 * linear byte scan that lets a request with millions of numbers be refused before JSON.parse builds them.
 */
export function valuesOutsideStrings(body: Buffer, limit: number): number {
  let count = 0;
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (c === 0x22) {
      // Skip the string: find its closing quote, one not escaped by an odd run of backslashes.
      let j = i + 1;
      for (;;) {
        j = body.indexOf(0x22, j);
        if (j < 0) return count; // unterminated: JSON.parse reports it
        let backslashes = 0;
        while (body[j - 1 - backslashes] === 0x5c) backslashes++;
        if (backslashes % 2 === 0) break;
        j++;
      }
      i = j + 1;
      continue;
    }
    if (c === 0x2c && ++count > limit) return count;
    i++;
  }
  return count;
}

/** Commas a request's structure needs besides its tensor values (keys, inputs, outputs, parameters). */
const STRUCTURE_ALLOWANCE = 1024;

/** The JSON body, parsed only once its values have been counted. */
function parseBody(body: unknown, model: ModelDescription, budget: OipBudget): unknown {
  if (!Buffer.isBuffer(body) || body.length === 0) {
    throw badRequest('The body is empty: send an inference request as JSON.');
  }
  const limit = valueBudget(model, budget) + STRUCTURE_ALLOWANCE;
  if (valuesOutsideStrings(body, limit) > limit) {
    const { size } = model.view;
    throw tooLarge(
      `The request holds more than ${valueBudget(model, budget)} values, more than this model uses: send at most ${budget.maxImages} images of ${size}x${size}x3 per request, or the photos themselves as BYTES.`,
    );
  }
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'bad_json', `The body is not valid JSON (${(err as Error).message}).`);
  }
}

/** Reads an infer request's body (the raw bytes) into the Predictor's inputs; throws HttpError for a bad one. */
export function readInferRequest(body: unknown, model: ModelDescription, budget: OipBudget): InferRequest {
  const parsed = inferRequestSchema.safeParse(parseBody(body, model, budget));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw badRequest(`Invalid inference request at '${issue.path.join('.') || '(body)'}': ${issue.message}.`);
  }
  const request = parsed.data;
  if (request.inputs.length !== 1)
    throw badRequest(`This model takes one input, got ${request.inputs.length}.`);
  const wanted = request.outputs?.map((out) => out.name) ?? [...OUTPUT_NAMES];
  const unknown = wanted.find((name) => !(OUTPUT_NAMES as readonly string[]).includes(name));
  if (unknown) throw badRequest(`Unknown output '${unknown}': this model has ${OUTPUT_NAMES.join(' and ')}.`);

  const tensor = request.inputs[0]!;
  if (tensor.datatype !== 'BYTES' && tensor.datatype !== 'FP32') {
    throw badRequest(
      `Input '${tensor.name}': datatype ${tensor.datatype} is not accepted; use BYTES (encoded images) or FP32.`,
    );
  }
  return {
    ...(request.id !== undefined ? { id: request.id } : {}),
    inputs:
      tensor.datatype === 'BYTES' ? photosFromBytes(tensor, budget) : imagesFromFloats(tensor, model, budget),
    outputs: OUTPUT_NAMES.filter((name) => wanted.includes(name)),
  };
}
