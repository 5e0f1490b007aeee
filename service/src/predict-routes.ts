import { performance } from 'node:perf_hooks';
import { Router, type Request, type Response } from 'express';
import { round, type Predictions, type Predictor, type RankedLabel } from './prediction';
import type { UploadReceiver } from './upload';
import { modelInputDataUrl, resultPage, wantsHtml } from './views';

/**
 * The classifier's own protocol, an adapter over the Predictor: POST /predict takes one photo (a form's field
 * `file`, or the photo as the body), GET /test classifies the bundled photo; each answers JSON, or the result
 * page for a browser. The JSON is the contract docs/interfaces.md describes.
 */

export interface Prediction {
  label: string;
  confidence: number;
  top: RankedLabel[];
  timings: { decodeMs: number; queueMs: number; inferenceMs: number; totalMs: number };
  model: { name: string; version: string };
}

/** The requests these routes serve: the HTTP layer sheds them under overload before reading their bodies. */
export const PHOTO_ROUTES: readonly { method: string; path: string }[] = [
  { method: 'POST', path: '/predict' },
  { method: 'GET', path: '/test' },
];

export interface PredictRouteDeps {
  predictor: Predictor;
  uploads: UploadReceiver;
  /** the bundled photo GET /test classifies */
  testPhoto: Buffer;
}

/** One photo's result as the JSON answer; totalMs counts from when the request arrived. */
function toPrediction({ model, images }: Predictions, started: number): Prediction {
  const { ranked, timings } = images[0]!;
  const best = ranked[0]!;
  return {
    label: best.label,
    confidence: best.confidence,
    top: ranked.slice(0, 3),
    timings: { ...timings, totalMs: round(performance.now() - started, 1) },
    model: { name: model.info.name, version: model.info.version },
  };
}

async function respond(req: Request, res: Response, result: Predictions, started: number): Promise<void> {
  const prediction = toPrediction(result, started);
  if (!wantsHtml(req)) {
    res.json(prediction);
    return;
  }
  const image = result.images[0]!;
  const photoUrl = await modelInputDataUrl(image.viewed, result.model.view.size);
  res.type('html').send(resultPage({ prediction, photoUrl, photo: image.photo! }));
}

export function createPredictRouter({ predictor, uploads, testPhoto }: PredictRouteDeps): Router {
  const router = Router();
  router.post('/predict', async (req, res) => {
    const started = performance.now();
    const photo = await uploads.receive(req, res);
    await respond(req, res, await predictor.predict([{ photo }]), started);
  });
  router.get('/test', async (req, res) => {
    const started = performance.now();
    await respond(req, res, await predictor.predict([{ photo: testPhoto }]), started);
  });
  return router;
}
