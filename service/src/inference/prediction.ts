import { performance } from 'node:perf_hooks';
import { preprocessPhoto, preprocessPixels, type ImageFormat } from '../../../model/src/preprocess';
import type { DecodeMemory } from './decode-memory';
import { NotReadyError, type Admission, type ClassifyResult, type Engine } from './engine';
import type { Decoding, ModelDescription } from './worker-protocol';

/**
 * The one path from a validated input to named probabilities, shared by every protocol the way KServe's v1 and
 * v2 endpoints share one data plane: admit the request's images, bring each to the model's view, classify them in
 * the engine, rank the classes. No HTTP here: each protocol (the upload form and JSON at /predict and /test, the
 * Open Inference Protocol at /v2) is an adapter that turns its request into ModelInputs and the result into its
 * answer, and the routes turn the typed errors thrown on the way into statuses.
 */

/** One image of a request, as its protocol adapter validated it. */
export type ModelInput =
  /** an encoded photo whose signature the adapter has checked (checkPhotoFormat) */
  | { photo: Buffer }
  /** RGB pixels that arrive decoded (OIP FP32), row-major HWC */
  | { pixels: Uint8Array; width: number; height: number };

export interface RankedLabel {
  label: string;
  confidence: number;
}

export interface ImagePrediction {
  /** one per class, in the model's label order */
  probabilities: Float32Array;
  /** the classes by confidence, most likely first */
  ranked: RankedLabel[];
  /** the image as the model saw it: RGB, view.size squared, for the result page */
  viewed: Uint8Array;
  /** the photo as it arrived; absent for pixels */
  photo?: { width: number; height: number; format: ImageFormat };
  timings: { decodeMs: number; queueMs: number; inferenceMs: number };
}

export interface Predictions {
  model: ModelDescription;
  images: ImagePrediction[];
}

/**
 * One photo's prediction as the classifier's own protocol answers it (POST /predict, GET /test; the contract
 * docs/interfaces.md describes) and the result page shows it.
 */
export interface Prediction {
  label: string;
  confidence: number;
  top: RankedLabel[];
  timings: { decodeMs: number; queueMs: number; inferenceMs: number; totalMs: number };
  model: { name: string; version: string };
  /** what POST /labels takes to label this prediction; absent when it cannot be labelled */
  id?: string;
}

/** A held-out prediction's JSON: the model's answer is withheld until the user's label is in. */
export interface HeldOutPrediction {
  id: string;
  heldOut: true;
  timings: Prediction['timings'];
  model: Prediction['model'];
}

/** One photo's result as the JSON answer; totalMs counts from when the request arrived. */
export function toPrediction({ model, images }: Predictions, started: number): Prediction {
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

export interface PredictorObserver {
  /** one call per classified image, with its top-1 label (the predictions metric) */
  predicted?(label: string): void;
}

/** Rounds to the digits an answer reports (timings to 0.1 ms, confidences to 4 places). */
export const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Names the classes of one probability vector, most likely first. */
export function rank(model: ModelDescription, probabilities: Float32Array): RankedLabel[] {
  return model.labels
    .map((l) => ({ label: l.name, confidence: round(probabilities[l.index] ?? 0, 4) }))
    .sort((a, b) => b.confidence - a.confidence);
}

/** An image at the model's view, with what the preparing cost and what the photo was. */
interface Prepared {
  rgb: Uint8Array;
  decodeMs: number;
  photo?: ImagePrediction['photo'];
}

export class Predictor {
  constructor(
    private readonly engine: Engine,
    private readonly decoding: Decoding,
    private readonly observer: PredictorObserver = {},
    /** bounds what the decodes on this thread hold together (sharp); none: unbounded */
    private readonly decodeMemory?: DecodeMemory,
  ) {}

  /** The model being served; NotReadyError until one is loaded and a worker can take work. */
  get model(): ModelDescription {
    const model = this.engine.model;
    if (!model || !this.engine.ready) throw new NotReadyError();
    return model;
  }

  /**
   * Classifies a request's images, in order. They are admitted together before any is decoded, so a request
   * that will be shed costs next to nothing and a burst is judged whole; a decode error rejects the request.
   */
  async predict(inputs: ModelInput[]): Promise<Predictions> {
    const model = this.model;
    const admission = this.engine.admit(inputs.length);
    let classified: { prepared: Prepared; result: ClassifyResult }[];
    try {
      classified = await this.classify(inputs, model, admission);
    } finally {
      // A request whose photo failed to decode gives its places back.
      admission.release();
    }
    const images = classified.map(({ prepared, result }) => {
      const ranked = rank(model, result.probabilities);
      this.observer.predicted?.(ranked[0]!.label);
      return {
        probabilities: result.probabilities,
        ranked,
        viewed: prepared.rgb,
        ...(prepared.photo ? { photo: prepared.photo } : {}),
        timings: {
          decodeMs: round(prepared.decodeMs, 1),
          queueMs: round(result.queueMs, 1),
          inferenceMs: round(result.inferenceMs, 1),
        },
      };
    });
    return { model, images };
  }

  private async classify(
    inputs: ModelInput[],
    model: ModelDescription,
    admission: Admission,
  ): Promise<{ prepared: Prepared; result: ClassifyResult }[]> {
    if (this.decoding.decoder === 'jimp' && inputs.every((input) => 'photo' in input)) {
      // Pure-JavaScript decoding would stall every other request (and the probes) on this thread: the workers
      // decode, and say what they made of each photo.
      const results = await Promise.all(
        inputs.map((input) => this.engine.classifyPhoto(input.photo, this.decoding, admission)),
      );
      return results.map((result) => {
        const { rgb, decodeMs, width, height, format } = result.decoded!;
        return { prepared: { rgb, decodeMs, photo: { width, height, format } }, result };
      });
    }
    const prepared = await Promise.all(inputs.map((input) => this.prepare(input, model)));
    const results = await this.engine.classify(
      prepared.map((p) => p.rgb),
      admission,
    );
    return prepared.map((p, i) => ({ prepared: p, result: results[i]! }));
  }

  /** Brings one input to the model's view on this thread (sharp works on libuv's pool, off the event loop). */
  private async prepare(input: ModelInput, model: ModelDescription): Promise<Prepared> {
    const started = performance.now();
    if ('pixels' in input) {
      const rgb = await preprocessPixels(input.pixels, input.width, input.height, model.view);
      return { rgb, decodeMs: performance.now() - started };
    }
    const { rgb, decodeMs, width, height, format } = await preprocessPhoto(input.photo, {
      view: model.view,
      ...this.decoding,
      ...(this.decodeMemory ? { reserveMemory: this.decodeMemory.reserve } : {}),
    });
    return { rgb, decodeMs, photo: { width, height, format } };
  }
}
