import { performance } from 'node:perf_hooks';
import { preprocessPhoto, type DecoderName } from '../../model/src/preprocess';
import { NotReadyError, type ClassifyResult, type Engine } from './engine';
import type { ModelDescription } from './worker-protocol';

/**
 * From photo bytes to a labelled answer: decode to the model's input, classify in the engine, name the classes.
 * No HTTP here: the routes turn the result (or the typed errors thrown on the way) into responses.
 */

export interface Prediction {
  label: string;
  confidence: number;
  top: { label: string; confidence: number }[];
  timings: { decodeMs: number; queueMs: number; inferenceMs: number; totalMs: number };
  model: { name: string; version: string };
}

export interface PhotoPrediction {
  prediction: Prediction;
  /** the photo as the model saw it (RGB, input size squared), for the result page */
  modelInput: { rgb: Uint8Array; size: number };
  image: { width: number; height: number; format: string };
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Names the classes of one probability vector, most likely first. */
export function rank(
  model: ModelDescription,
  probabilities: Float32Array,
): { label: string; confidence: number }[] {
  return model.labels
    .map((l) => ({ label: l.name, confidence: round(probabilities[l.index] ?? 0, 4) }))
    .sort((a, b) => b.confidence - a.confidence);
}

export class Predictor {
  constructor(
    private readonly engine: Engine,
    private readonly decoding: { maxPixels: number; decoder: DecoderName },
  ) {}

  async predictPhoto(photo: Buffer, started = performance.now()): Promise<PhotoPrediction> {
    const model = this.engine.model;
    // Before the model is loaded the decoder's target size is unknown.
    if (!model || !this.engine.ready) throw new NotReadyError();
    const admission = this.engine.admit();
    let decoded: { rgb: Uint8Array; width: number; height: number; format: string; decodeMs: number };
    let result: ClassifyResult;
    try {
      if (this.decoding.decoder === 'jimp') {
        // Pure-JavaScript decoding would stall every other request (and the probes) on this thread.
        result = await this.engine.classifyPhoto(photo, this.decoding, admission);
        decoded = result.decoded!;
      } else {
        decoded = await preprocessPhoto(photo, { view: model.view, ...this.decoding });
        [result] = (await this.engine.classify([decoded.rgb], admission)) as [ClassifyResult];
      }
    } finally {
      // A photo that failed to decode gives its place back.
      admission.release();
    }
    const ranked = rank(model, result.probabilities);
    const best = ranked[0]!;
    return {
      prediction: {
        label: best.label,
        confidence: best.confidence,
        top: ranked.slice(0, 3),
        timings: {
          decodeMs: round(decoded.decodeMs, 1),
          queueMs: round(result.queueMs, 1),
          inferenceMs: round(result.inferenceMs, 1),
          totalMs: round(performance.now() - started, 1),
        },
        model: { name: model.info.name, version: model.info.version },
      },
      modelInput: { rgb: decoded.rgb, size: model.view.size },
      image: { width: decoded.width, height: decoded.height, format: decoded.format },
    };
  }
}
