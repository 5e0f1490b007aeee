import { performance } from 'node:perf_hooks';
import { Router, type Request, type Response } from 'express';
import { HttpError } from './http-error';
import {
  classChoices,
  correctionForm,
  heldOutPage,
  scalePhoto,
  type Labels,
  type ReserveMemory,
} from '../labels';
import {
  round,
  toPrediction,
  type HeldOutPrediction,
  type Prediction,
  type Predictions,
  type Predictor,
} from '../inference/prediction';
import type { UploadReceiver } from './upload';
import { modelInputDataUrl, resultPage, wantsHtml } from './views';

/**
 * The classifier's own protocol, an adapter over the Predictor: POST /predict takes one photo (a form's field
 * `file`, or the photo as the body), GET /test classifies the bundled photo; each answers JSON, or the result
 * page for a browser. The JSON is the contract docs/interfaces.md describes.
 */

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
  /** absent: predictions get no id (LABELS=off) */
  labelling?: {
    labels: Labels;
    /** the decode memory budget, which showing a held-out photo draws on */
    reserveMemory?: ReserveMemory;
    /** the share of the page's uploads that are held out */
    sampleRate: number;
    pendingMinutes: number;
    random?: () => number;
  };
}

/**
 * `?heldOut=1` (or `true`) asks for a held-out prediction, `?heldOut=0` for an ordinary one; without it a page
 * upload is held out at the sample rate and a JSON one is not.
 */
function wantsHeldOut(req: Request, labelling: NonNullable<PredictRouteDeps['labelling']>): boolean {
  const asked = req.query.heldOut;
  if (asked === undefined)
    return wantsHtml(req) && (labelling.random ?? Math.random)() < labelling.sampleRate;
  if (typeof asked === 'string' && /^(1|true)$/i.test(asked)) return true;
  if (typeof asked === 'string' && /^(0|false)$/i.test(asked)) return false;
  throw new HttpError(400, 'bad_held_out', 'heldOut must be 1, true, 0 or false.');
}

/** Hands the prediction to the labels store's queue (never waited for); its id, or undefined when refused. */
function recordForLabels(
  labelling: NonNullable<PredictRouteDeps['labelling']>,
  result: Predictions,
  prediction: Prediction,
  photo: Buffer,
  heldOut: boolean,
): string | undefined {
  const { model } = result;
  const { probabilities } = result.images[0]!;
  const idOf = new Map(model.labels.map((l) => [l.name, l.id]));
  return labelling.labels.record({
    heldOut,
    modelName: model.info.name,
    modelVersion: model.info.version,
    predicted: idOf.get(prediction.label) ?? prediction.label,
    probabilities: Object.fromEntries(model.labels.map((l) => [l.id, round(probabilities[l.index] ?? 0, 6)])),
    timings: prediction.timings,
    original: photo,
  });
}

async function respond(
  req: Request,
  res: Response,
  result: Predictions,
  started: number,
  labelling?: { deps: NonNullable<PredictRouteDeps['labelling']>; photo: Buffer; heldOut: boolean },
): Promise<void> {
  const prediction = toPrediction(result, started);
  const heldOut = labelling?.heldOut ?? false;
  const id = labelling && recordForLabels(labelling.deps, result, prediction, labelling.photo, heldOut);
  // A prediction the queue refused cannot be labelled: it is answered as an ordinary one, without an id.
  const askFirst = heldOut && id !== undefined;
  const classes = classChoices(result.model);
  if (!wantsHtml(req)) {
    if (askFirst) {
      const answer: HeldOutPrediction = {
        id,
        heldOut: true,
        timings: prediction.timings,
        model: prediction.model,
      };
      res.json(answer);
    } else res.json(id ? { ...prediction, id } : prediction);
    return;
  }
  if (askFirst && labelling) {
    const photoUrl = `data:image/jpeg;base64,${(await scalePhoto(labelling.photo, labelling.deps.reserveMemory)).toString('base64')}`;
    res
      .type('html')
      .send(heldOutPage({ id, photoUrl, classes, pendingMinutes: labelling.deps.pendingMinutes }));
    return;
  }
  const image = result.images[0]!;
  const photoUrl = await modelInputDataUrl(image.viewed, result.model.view.size);
  res.type('html').send(
    resultPage({
      prediction,
      photoUrl,
      photo: image.photo!,
      ...(id ? { labelling: correctionForm(id, prediction.label, classes) } : {}),
    }),
  );
}

export function createPredictRouter({ predictor, uploads, testPhoto, labelling }: PredictRouteDeps): Router {
  const router = Router();
  router.post('/predict', async (req, res) => {
    const started = performance.now();
    const photo = await uploads.receive(req, res);
    const heldOut = labelling ? wantsHeldOut(req, labelling) : false;
    const result = await predictor.predict([{ photo }]);
    await respond(req, res, result, started, labelling && { deps: labelling, photo, heldOut });
  });
  // The bundled photo is nobody's upload: its predictions are not offered for labelling.
  router.get('/test', async (req, res) => {
    const started = performance.now();
    await respond(req, res, await predictor.predict([{ photo: testPhoto }]), started);
  });
  return router;
}
