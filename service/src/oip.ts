import express, { type Request, type Response, type NextFunction, Router } from 'express';
import { z } from 'zod';
import { preprocessPixels, preprocessPhoto, type DecoderName } from '../../model/src/preprocess';
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

/** BYTES: one encoded image per element, base64 in JSON (a data: URL prefix is tolerated). */
function photosFromBytes(tensor: Tensor): Buffer[] {
  if (tensor.data.length === 0) throw bad(`Input '${tensor.name}' holds no image.`);
  if (product(tensor.shape) !== tensor.data.length) {
    throw bad(
      `Input '${tensor.name}': shape [${tensor.shape.join(', ')}] does not match ${tensor.data.length} elements.`,
    );
  }
  return tensor.data.map((element, i) => {
    if (typeof element !== 'string')
      throw bad(`Input '${tensor.name}' element ${i}: expected a base64 string.`);
    const base64 = element.replace(/^data:[^,]*;base64,/, '');
    if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(base64)) {
      throw bad(`Input '${tensor.name}' element ${i}: not valid base64.`);
    }
    const photo = Buffer.from(base64, 'base64');
    if (photo.length === 0) throw bad(`Input '${tensor.name}' element ${i}: the image is empty.`);
    sniffImageFormat(photo);
    return photo;
  });
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

/** FP32 [N, H, W, 3] in 0..255: clamped to bytes and, when not the model's size, resized like a photo. */
async function imagesFromFloats(
  tensor: Tensor,
  model: ModelDescription,
  o: OipOptions,
): Promise<Uint8Array[]> {
  const [n, height, width, channels] = tensor.shape;
  if (tensor.shape.length !== 4 || channels !== 3 || !n || !height || !width) {
    throw bad(
      `Input '${tensor.name}': FP32 shape must be [N, H, W, 3] with N, H, W > 0, got [${tensor.shape.join(', ')}].`,
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
  const images: Uint8Array[] = [];
  for (let k = 0; k < n; k++) {
    const rgb = new Uint8Array(perImage);
    for (let i = 0; i < perImage; i++) {
      const v = values[k * perImage + i];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw bad(`Input '${tensor.name}': value ${k * perImage + i} is not a finite number.`);
      }
      rgb[i] = Math.min(255, Math.max(0, Math.round(v)));
    }
    images.push(await preprocessPixels(rgb, width, height, model.view));
  }
  return images;
}

export function createOipRouter(o: OipOptions): Router {
  const router = Router();
  const e = o.engine;
  // Base64 inflates by 4/3 and JSON numbers take several bytes each: allow twice the upload limit.
  const json = express.json({ limit: o.maxUploadBytes * 2 + 64 * 1024 });

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
    json,
    async (req: Request<ModelParams>, res: Response) => {
      const model = modelOr404(req.params);
      if (!req.is('application/json'))
        throw bad('Send the inference request as JSON (Content-Type: application/json).');
      const parsed = inferRequestSchema.safeParse(req.body);
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
      const admission = e.admit(Math.max(1, tensor.shape[0] ?? 1));
      let results: ClassifyResult[];
      try {
        results =
          tensor.datatype === 'BYTES'
            ? await classifyPhotos(photosFromBytes(tensor), model, o, admission)
            : await e.classify(await imagesFromFloats(tensor, model, o), admission);
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
