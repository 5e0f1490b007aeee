import express, { Router } from 'express';
import { NotReadyError } from '../inference/engine';
import { HttpError } from '../http/http-error';
import { rank, round } from '../inference/prediction';
import { wantsHtml } from '../http/views';
import type { ModelDescription } from '../inference/worker-protocol';
import type { Labels } from './labels';
import { accuracyPage, labelledPage, type ClassChoice } from './pages';
import { isUuid } from './prediction-id';

/**
 * POST /labels (JSON `{"id", "label"}`, or the pages' form post, answered with a page) and GET /accuracy (JSON,
 * or a page for a browser). Requests are validated here, before the store is asked; the store's own failures
 * arrive as HttpErrors (503 + Retry-After) from labels.ts.
 */

export interface LabelRouteDeps {
  labels: Labels;
  /** the model being served (its classes name the labels); undefined while it loads */
  model(): ModelDescription | undefined;
}

/** A label request is two short strings: anything bigger is not one. */
const LABEL_BODY_LIMIT = '4kb';

const normalised = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '');

export function classChoices(model: ModelDescription): ClassChoice[] {
  return model.labels.map((l) => ({ id: l.id, name: l.name }));
}

/** A class named by its id (`Dairy-product`) or its display name (`Dairy product`), loosely. */
function resolveClass(given: string, classes: ClassChoice[]): ClassChoice {
  const key = normalised(given);
  const found = classes.find((c) => normalised(c.id) === key || normalised(c.name) === key);
  if (!found) {
    throw new HttpError(
      400,
      'bad_label',
      `'${given.slice(0, 60)}' is not one of the classes: ${classes.map((c) => c.id).join(', ')}.`,
    );
  }
  return found;
}

function readLabelRequest(body: unknown): { id: string; label: string } {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof b.id !== 'string' || typeof b.label !== 'string') {
    throw new HttpError(
      400,
      'bad_label_request',
      'Send {"id": "<the prediction\'s id>", "label": "<a class>"} as JSON (Content-Type: application/json) or as a form (id=…&label=…).',
    );
  }
  if (!isUuid(b.id)) throw new HttpError(400, 'bad_id', `'${b.id.slice(0, 60)}' is not a prediction id.`);
  return { id: b.id.toLowerCase(), label: b.label };
}

export function createLabelRouter({ labels, model }: LabelRouteDeps): Router {
  const router = Router();
  const servedModel = () => {
    const m = model();
    if (!m) throw new NotReadyError();
    return m;
  };

  router.post(
    '/labels',
    express.json({ limit: LABEL_BODY_LIMIT }),
    express.urlencoded({ extended: false, limit: LABEL_BODY_LIMIT }),
    async (req, res) => {
      const request = readLabelRequest(req.body);
      const served = servedModel();
      const classes = classChoices(served);
      const label = resolveClass(request.label, classes);
      const stored = await labels.label(request.id, label.id);
      const nameOf = (id: string) => classes.find((c) => c.id === id)?.name ?? id;
      const probabilities = new Float32Array(served.labels.length);
      for (const l of served.labels) probabilities[l.index] = stored.probabilities[l.id] ?? 0;
      const top = rank(served, probabilities).slice(0, 3);
      const predicted = nameOf(stored.predicted);
      const confidence = round(stored.probabilities[stored.predicted] ?? 0, 4);
      if (wantsHtml(req)) {
        res.type('html').send(
          labelledPage({
            heldOut: stored.heldOut,
            label: label.name,
            predicted,
            confidence,
            top,
            replaced: !stored.first,
          }),
        );
        return;
      }
      res.json({
        id: stored.id,
        label: label.name,
        labelId: label.id,
        kind: stored.heldOut ? 'heldout' : 'correction',
        replaced: !stored.first,
        prediction: { label: predicted, confidence, top },
        model: { name: stored.modelName, version: stored.modelVersion },
      });
    },
  );

  router.get('/accuracy', async (req, res) => {
    const served = model();
    const classes = served ? classChoices(served) : [];
    const report = await labels.accuracy(classes.map((c) => c.id));
    if (wantsHtml(req)) res.type('html').send(accuracyPage(report, classes));
    else res.json({ ...report, classes });
  });
  return router;
}
