import express, { type Request, type Response, type NextFunction, Router } from 'express';
import { z } from 'zod';
import { preprocessPixels, preprocessPhoto, type DecoderName } from '../../model/src/preprocess';
import { oipBodyLimit } from './config';
import type { Admission, ClassifyResult, Engine } from './engine';
import { HttpError, toHttpError } from './http-error';
import { rank } from './prediction';
import { sniffImageFormat } from './upload';
import type { ModelDescription } from './worker-protocol';

/**
 * Open Inference Protocol v2 (the REST dialect KServe and Triton speak), so the classifier can stand behind
 * the same clients and gateways as a model server. Two input forms: BYTES holding encoded images (base64 in
 * JSON), or FP32 [N, H, W, 3] pixel values in 0..255. Errors are `{"error": "..."}`.
 */

export interface OipOptions {
  engine: Engine;
  isReady(): boolean;
  maxUploadBytes: number;
  maxPixels: number;
  decoder: DecoderName;
  /** images one request may carry; FP32 values are budgeted as this many images of the model's input size */
  maxImages: number;
  /** receives each request's top-1 label, for the predictions metric */
  onPrediction?(label: string): void;
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

interface ModelParams {
  [key: string]: string | undefined;
  name: string;
  version?: string;
}

const OUTPUT_NAMES = ['probabilities', 'label'] as const;

const bad = (message: string) => new HttpError(400, 'bad_request', message);

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const tooLarge = (message: string) => new HttpError(413, 'too_large', message);

const mb = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

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
  if (typeof element !== 'string') throw bad(`${where}: expected a base64 string.`);
  let base64 = element;
  // A data: URL prefix is tolerated, as browsers' FileReader produces it.
  if (base64.startsWith('data:')) {
    const comma = base64.indexOf(',');
    if (comma < 0 || comma > DATA_URL_PREFIX_MAX || !base64.slice(0, comma).endsWith(';base64')) {
      throw bad(`${where}: a data: URL must be base64 (data:image/jpeg;base64,...).`);
    }
    base64 = base64.slice(comma + 1);
  }
  base64 = base64.replace(/\s+/g, '');
  if (base64.length > base64Chars(maxBytes)) {
    throw tooLarge(
      `${where}: the photo is larger than ${mb(maxBytes)}; send a smaller or more compressed one.`,
    );
  }
  // A lone character after the last group of four cannot encode a byte: a truncated or corrupt string.
  if (!BASE64.test(base64) || base64.replace(/=+$/, '').length % 4 === 1) {
    throw bad(`${where}: not valid base64.`);
  }
  const photo = Buffer.from(base64, 'base64');
  if (photo.length === 0) throw bad(`${where}: the image is empty.`);
  if (photo.length > maxBytes) {
    throw tooLarge(
      `${where}: the photo is larger than ${mb(maxBytes)}; send a smaller or more compressed one.`,
    );
  }
  sniffImageFormat(photo);
  return photo;
}

/** BYTES: one encoded image per element, base64 in JSON. Everything is checked before any is decoded. */
function photosFromBytes(tensor: Tensor, o: OipOptions): Buffer[] {
  if (tensor.data.length === 0) throw bad(`Input '${tensor.name}' holds no image.`);
  if (product(tensor.shape) !== tensor.data.length) {
    throw bad(
      `Input '${tensor.name}': shape [${tensor.shape.join(', ')}] does not match ${tensor.data.length} elements.`,
    );
  }
  if (tensor.data.length > o.maxImages) {
    throw tooLarge(
      `Input '${tensor.name}' holds ${tensor.data.length} images: send at most ${o.maxImages} per request.`,
    );
  }
  return tensor.data.map((element, i) =>
    photoFromBase64(element, `Input '${tensor.name}' element ${i}`, o.maxUploadBytes),
  );
}

/** Classifies encoded photos: decoded here with sharp, or by the workers with the pure-JS decoder. */
async function classifyPhotos(
  photos: Buffer[],
  model: ModelDescription,
  o: OipOptions,
  admission: Admission,
): Promise<ClassifyResult[]> {
  const decode = { maxPixels: o.maxPixels, decoder: o.decoder };
  if (o.decoder === 'jimp') {
    return Promise.all(photos.map((photo) => o.engine.classifyPhoto(photo, decode, admission)));
  }
  const images = await Promise.all(
    photos.map(async (photo) => {
      const decoded = await preprocessPhoto(photo, { view: model.view, ...decode });
      return decoded.rgb;
    }),
  );
  return o.engine.classify(images, admission);
}

/** Values an FP32 request may hold: maxImages images of the model's input size. */
const valueBudget = (model: ModelDescription, o: OipOptions) => o.maxImages * model.view.size ** 2 * 3;

/**
 * FP32 [N, H, W, 3] in 0..255, clamped to bytes. The shape is judged before a value is read: more images or
 * more values than the model can use are refused, so no request makes the server hold millions of numbers.
 */
function imagesFromFloats(
  tensor: Tensor,
  model: ModelDescription,
  o: OipOptions,
): { rgb: Uint8Array; width: number; height: number }[] {
  const [n, height, width, channels] = tensor.shape;
  if (tensor.shape.length !== 4 || channels !== 3 || !n || !height || !width) {
    throw bad(
      `Input '${tensor.name}': FP32 shape must be [N, H, W, 3] with N, H, W > 0, got [${tensor.shape.join(', ')}].`,
    );
  }
  if (n > o.maxImages) {
    throw tooLarge(`Input '${tensor.name}' holds ${n} images: send at most ${o.maxImages} per request.`);
  }
  const { size } = model.view;
  if (product(tensor.shape) > valueBudget(model, o)) {
    throw tooLarge(
      `Input '${tensor.name}': [${tensor.shape.join(', ')}] is ${product(tensor.shape)} values, more than this model uses; send images of ${size}x${size} (at most ${valueBudget(model, o)} values per request).`,
    );
  }
  if (height * width > o.maxPixels) {
    throw new HttpError(
      422,
      'too_many_pixels',
      `Input '${tensor.name}': ${width}x${height} exceeds ${o.maxPixels} pixels.`,
    );
  }
  const values = tensor.data.flat(3);
  if (values.length !== product(tensor.shape)) {
    throw bad(
      `Input '${tensor.name}': shape [${tensor.shape.join(', ')}] needs ${product(tensor.shape)} values, got ${values.length}.`,
    );
  }
  const perImage = height * width * 3;
  const images: { rgb: Uint8Array; width: number; height: number }[] = [];
  for (let k = 0; k < n; k++) {
    const rgb = new Uint8Array(perImage);
    for (let i = 0; i < perImage; i++) {
      const v = values[k * perImage + i];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw bad(`Input '${tensor.name}': value ${k * perImage + i} is not a finite number.`);
      }
      rgb[i] = Math.min(255, Math.max(0, Math.round(v)));
    }
    images.push({ rgb, width, height });
  }
  return images;
}

/** Images not at the view's size are given the model's view, as a photo is. */
function toModelSize(
  images: { rgb: Uint8Array; width: number; height: number }[],
  model: ModelDescription,
): Promise<Uint8Array[]> {
  return Promise.all(
    images.map(({ rgb, width, height }) => preprocessPixels(rgb, width, height, model.view)),
  );
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

export function createOipRouter(o: OipOptions): Router {
  const router = Router();
  const e = o.engine;
  // Read as bytes, not parsed: what the body holds is judged (valuesOutsideStrings) before JSON.parse runs.
  const body = express.raw({ type: () => true, limit: oipBodyLimit(o.maxUploadBytes) });

  // Every model route also answers under /versions/<version>, as the protocol allows; there is one version.
  const modelOr404 = ({ name, version }: ModelParams): ModelDescription => {
    const model = e.model;
    if (!model)
      throw new HttpError(503, 'not_ready', 'The model is still loading; retry in a few seconds.', {
        'Retry-After': '5',
      });
    if (name !== model.info.name) {
      throw new HttpError(
        404,
        'unknown_model',
        `No model '${name}' here: this server serves '${model.info.name}'.`,
      );
    }
    if (version !== undefined && version !== model.info.version) {
      throw new HttpError(
        404,
        'unknown_version',
        `No version '${version}' of '${name}' here: this server serves version '${model.info.version}'.`,
      );
    }
    return model;
  };

  router.get('/', (_req, res) => {
    res.json({ name: 'gourmetgram', version: '2', extensions: [] });
  });
  // Triton's model-repository index, so a client (the load test) can learn the model's name without
  // running an inference or reaching the metrics port.
  router.post('/repository/index', (_req, res) => {
    const model = e.model;
    res.json(
      model
        ? [
            {
              name: model.info.name,
              version: model.info.version,
              state: o.isReady() ? 'READY' : 'UNAVAILABLE',
            },
          ]
        : [],
    );
  });
  router.get('/health/live', (_req, res) => {
    res.json({ live: true });
  });
  router.get('/health/ready', (_req, res) => {
    const ready = o.isReady();
    res.status(ready ? 200 : 503).json({ ready });
  });
  router.get('/models/:name{/versions/:version}', (req: Request<ModelParams>, res) => {
    const model = modelOr404(req.params);
    res.json({
      name: model.info.name,
      versions: [model.info.version],
      platform: `tfjs_${model.backend}`,
      inputs: [
        { name: 'image', datatype: 'BYTES', shape: [-1] },
        { name: 'input', datatype: 'FP32', shape: [-1, model.view.size, model.view.size, 3] },
      ],
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: [-1, model.labels.length] },
        { name: 'label', datatype: 'BYTES', shape: [-1] },
      ],
      parameters: {
        labels: model.labels.map((l) => l.name),
        architecture: model.info.architecture,
        view: model.view,
      },
    });
  });
  router.get('/models/:name{/versions/:version}/ready', (req: Request<ModelParams>, res) => {
    const model = modelOr404(req.params);
    const ready = o.isReady();
    res.status(ready ? 200 : 503).json({ name: model.info.name, ready });
  });
  router.post(
    '/models/:name{/versions/:version}/infer',
    (req: Request<ModelParams>, _res: Response, next: NextFunction) => {
      // Refused before the body is read: a request for another model, or one that is not JSON.
      modelOr404(req.params);
      if (!req.is('application/json'))
        throw bad('Send the inference request as JSON (Content-Type: application/json).');
      next();
    },
    body,
    async (req: Request<ModelParams>, res: Response) => {
      const model = modelOr404(req.params);
      const raw: unknown = req.body;
      if (!Buffer.isBuffer(raw) || raw.length === 0) {
        throw bad('The body is empty: send an inference request as JSON.');
      }
      const budget = valueBudget(model, o);
      if (valuesOutsideStrings(raw, budget + STRUCTURE_ALLOWANCE) > budget + STRUCTURE_ALLOWANCE) {
        throw tooLarge(
          `The request holds more than ${budget} values, more than this model uses: send at most ${o.maxImages} images of ${model.view.size}x${model.view.size}x3 per request, or the photos themselves as BYTES.`,
        );
      }
      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        throw new HttpError(400, 'bad_json', `The body is not valid JSON (${(err as Error).message}).`);
      }
      const parsed = inferRequestSchema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw bad(`Invalid inference request at '${issue.path.join('.') || '(body)'}': ${issue.message}.`);
      }
      const request = parsed.data;
      if (request.inputs.length !== 1) throw bad(`This model takes one input, got ${request.inputs.length}.`);
      const wanted = request.outputs?.map((out) => out.name) ?? [...OUTPUT_NAMES];
      const unknown = wanted.find((name) => !(OUTPUT_NAMES as readonly string[]).includes(name));
      if (unknown) throw bad(`Unknown output '${unknown}': this model has ${OUTPUT_NAMES.join(' and ')}.`);

      const tensor = request.inputs[0]!;
      if (tensor.datatype !== 'BYTES' && tensor.datatype !== 'FP32') {
        throw bad(
          `Input '${tensor.name}': datatype ${tensor.datatype} is not accepted; use BYTES (encoded images) or FP32.`,
        );
      }
      // Everything a request can get wrong is found before it is admitted: admission judges only the load,
      // for the number of images the request really carries.
      const input =
        tensor.datatype === 'BYTES'
          ? { photos: photosFromBytes(tensor, o) }
          : { floats: imagesFromFloats(tensor, model, o) };
      const admission = e.admit(input.photos?.length ?? input.floats!.length);
      let results: ClassifyResult[];
      try {
        results = input.photos
          ? await classifyPhotos(input.photos, model, o, admission)
          : await e.classify(await toModelSize(input.floats!, model), admission);
      } finally {
        admission.release();
      }

      const labels = results.map((r) => rank(model, r.probabilities)[0]!.label);
      labels.forEach((label) => o.onPrediction?.(label));
      const outputs = [];
      if (wanted.includes('probabilities')) {
        outputs.push({
          name: 'probabilities',
          datatype: 'FP32',
          shape: [results.length, model.labels.length],
          parameters: { labels: model.labels.map((l) => l.name) },
          data: results.flatMap((r) => Array.from(r.probabilities)),
        });
      }
      if (wanted.includes('label')) {
        outputs.push({ name: 'label', datatype: 'BYTES', shape: [results.length], data: labels });
      }
      res.json({
        model_name: model.info.name,
        model_version: model.info.version,
        ...(request.id !== undefined ? { id: request.id } : {}),
        outputs,
      });
    },
  );

  router.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'No such Open Inference Protocol route.' });
  });
  // Protocol clients expect every error as {"error": "..."}; a bad input (not an image, an image it cannot read)
  // is a 400 there, as KServe answers it, where /predict distinguishes 415 and 422.
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const http = toHttpError(err);
    const status = http.status === 415 || http.status === 422 ? 400 : http.status;
    if (http.status >= 500 && http.code === 'internal') req.log?.error({ err }, 'OIP request failed');
    res.status(status).set(http.headers).json({ error: http.message });
  });
  return router;
}
