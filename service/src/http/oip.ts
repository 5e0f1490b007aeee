import express, { type Request, type Response, type NextFunction, Router } from 'express';
import { oipBodyLimit } from '../config';
import { NotReadyError, type Engine } from '../inference/engine';
import { HttpError, toHttpError } from './http-error';
import { readInferRequest, type InferRequest, type OipBudget } from './oip-request';
import type { Predictions, Predictor } from '../inference/prediction';
import type { ModelDescription } from '../inference/worker-protocol';

/**
 * Open Inference Protocol v2 (the REST dialect KServe and Triton speak), so the classifier can stand behind
 * the same clients and gateways as a model server. An adapter over the same Predictor /predict uses: the request
 * is read into its inputs (oip-request.ts), the result is written as the protocol's outputs. Errors are
 * `{"error": "..."}`.
 */

export interface OipOptions {
  predictor: Predictor;
  /** what the workers loaded, for the metadata routes (which answer before the model is ready) */
  engine: Pick<Engine, 'model'>;
  isReady(): boolean;
  budget: OipBudget;
}

interface ModelParams {
  [key: string]: string | undefined;
  name: string;
  version?: string;
}

/** The model a route names, or 404 for another model or version (503 while none is loaded). */
function namedModel(engine: OipOptions['engine'], { name, version }: ModelParams): ModelDescription {
  const model = engine.model;
  if (!model) throw new NotReadyError();
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
}

function modelMetadata(model: ModelDescription) {
  return {
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
  };
}

/** The protocol's answer: the outputs the request asked for, in the protocol's order. */
function inferResponse(request: InferRequest, { model, images }: Predictions) {
  const outputs = request.outputs.map((name) =>
    name === 'probabilities'
      ? {
          name,
          datatype: 'FP32',
          shape: [images.length, model.labels.length],
          parameters: { labels: model.labels.map((l) => l.name) },
          data: images.flatMap((image) => Array.from(image.probabilities)),
        }
      : {
          name,
          datatype: 'BYTES',
          shape: [images.length],
          data: images.map((image) => image.ranked[0]!.label),
        },
  );
  return {
    model_name: model.info.name,
    model_version: model.info.version,
    ...(request.id !== undefined ? { id: request.id } : {}),
    outputs,
  };
}

export function createOipRouter({ predictor, engine, isReady, budget }: OipOptions): Router {
  const router = Router();
  // Read as bytes, not parsed: what the body holds is judged (valuesOutsideStrings) before JSON.parse runs.
  const rawBody = express.raw({ type: () => true, limit: oipBodyLimit(budget.maxUploadBytes) });

  router.get('/', (_req, res) => {
    res.json({ name: 'gourmetgram', version: '2', extensions: [] });
  });
  // Triton's model-repository index, so a client (the load test) can learn the model's name without
  // running an inference or reaching the metrics port.
  router.post('/repository/index', (_req, res) => {
    const model = engine.model;
    const state = isReady() ? 'READY' : 'UNAVAILABLE';
    res.json(model ? [{ name: model.info.name, version: model.info.version, state }] : []);
  });
  router.get('/health/live', (_req, res) => {
    res.json({ live: true });
  });
  router.get('/health/ready', (_req, res) => {
    const ready = isReady();
    res.status(ready ? 200 : 503).json({ ready });
  });
  // Every model route also answers under /versions/<version>, as the protocol allows; there is one version.
  router.get('/models/:name{/versions/:version}', (req: Request<ModelParams>, res) => {
    res.json(modelMetadata(namedModel(engine, req.params)));
  });
  router.get('/models/:name{/versions/:version}/ready', (req: Request<ModelParams>, res) => {
    const model = namedModel(engine, req.params);
    const ready = isReady();
    res.status(ready ? 200 : 503).json({ name: model.info.name, ready });
  });
  router.post(
    '/models/:name{/versions/:version}/infer',
    (req: Request<ModelParams>, _res: Response, next: NextFunction) => {
      // Refused before the body is read: a request for another model, or one that is not JSON.
      namedModel(engine, req.params);
      if (!req.is('application/json')) {
        throw new HttpError(
          400,
          'bad_request',
          'Send the inference request as JSON (Content-Type: application/json).',
        );
      }
      next();
    },
    rawBody,
    async (req: Request<ModelParams>, res: Response) => {
      const request = readInferRequest(req.body, namedModel(engine, req.params), budget);
      res.json(inferResponse(request, await predictor.predict(request.inputs)));
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
