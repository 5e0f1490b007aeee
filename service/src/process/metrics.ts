import client from 'prom-client';

/**
 * The Prometheus metrics the service exposes; names and labels are a contract with tools/ and users'
 * dashboards (docs/interfaces.md). Each service instance owns its registry so tests can build several apps.
 */
export interface Metrics {
  registry: client.Registry;
  httpRequestDuration: client.Histogram<'method' | 'route' | 'status_code'>;
  inferenceDuration: client.Histogram;
  queueDepth: client.Gauge;
  inFlight: client.Gauge;
  rejections: client.Counter<'reason'>;
  predictions: client.Counter<'label'>;
  modelInfo: client.Gauge<'name' | 'version' | 'architecture' | 'tfjs_backend'>;
  workerTensors: client.Gauge<'worker'>;
  labels: client.Counter<'kind' | 'model' | 'version' | 'class' | 'result'>;
  labelQueueBytes: client.Gauge;
  labelDropped: client.Counter<'reason'>;
  labelWritten: client.Counter;
  labelStoreUp: client.Gauge;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequestDuration: new client.Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration, from the first byte read to the last byte written.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    inferenceDuration: new client.Histogram({
      name: 'inference_duration_seconds',
      help: 'Model time per image inside a worker thread (a batch is divided among its images).',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    queueDepth: new client.Gauge({
      name: 'inference_queue_depth',
      help: 'Images waiting for a free worker thread.',
      registers: [registry],
    }),
    inFlight: new client.Gauge({
      name: 'inference_in_flight',
      help: 'Images being classified by worker threads right now.',
      registers: [registry],
    }),
    rejections: new client.Counter({
      name: 'inference_rejections_total',
      help: 'Requests answered 503 instead of queued: queue_full (the expected wait is too long), draining, or upload_budget (the bytes all uploads in progress may hold are spent).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    predictions: new client.Counter({
      name: 'predictions_total',
      help: 'Predictions by top-1 class.',
      labelNames: ['label'],
      registers: [registry],
    }),
    modelInfo: new client.Gauge({
      name: 'model_info',
      help: 'The model being served (always 1).',
      labelNames: ['name', 'version', 'architecture', 'tfjs_backend'],
      registers: [registry],
    }),
    workerTensors: new client.Gauge({
      name: 'inference_worker_tensors',
      help: 'Live TF.js tensors in each worker thread after its last job: steady when nothing leaks.',
      labelNames: ['worker'],
      registers: [registry],
    }),
    labels: new client.Counter({
      name: 'labels_total',
      help: "Predictions labelled by users (first label only: a replaced label is not counted again), by kind (heldout: asked before the model's answer was shown; correction), model version, the user's class, and whether the model was right.",
      labelNames: ['kind', 'model', 'version', 'class', 'result'],
      registers: [registry],
    }),
    labelQueueBytes: new client.Gauge({
      name: 'label_pending_queue_bytes',
      help: 'Photos of predictions waiting to be written to the labels store, in bytes (bounded by LABEL_QUEUE_MAX_MB).',
      registers: [registry],
    }),
    labelDropped: new client.Counter({
      name: 'label_pending_dropped_total',
      help: 'Predictions not written to the labels store: queue_full (answered without an id), expired (the store was down for the whole pending window), photo (could not be scaled), shutdown.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    labelWritten: new client.Counter({
      name: 'label_pending_written_total',
      help: 'Predictions written to the labels store to wait for a label.',
      registers: [registry],
    }),
    labelStoreUp: new client.Gauge({
      name: 'label_store_up',
      help: 'Whether the last operation on the labels store succeeded (1) or not (0).',
      registers: [registry],
    }),
  };
}
