import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pino } from 'pino';
import { createApp, serviceStatus } from './http/app';
import { assetsDir, TEST_PHOTO } from './http/assets';
import { ConfigError, loadConfig, type Config } from './config';
import { DecodeMemory } from './inference/decode-memory';
import { Engine } from './inference/engine';
import { startInternalServer } from './process/internal-server';
import { Labels } from './labels';
import { createMetrics } from './process/metrics';
import { applySharpSettings } from './inference/sharp-settings';
import { Lifecycle } from './process/shutdown';

/**
 * Starts the classifier: validates the configuration, listens at once (so liveness answers while the model
 * loads), loads the model in the worker threads, then reports ready. SIGTERM and SIGINT drain gracefully.
 */

function readConfig(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}

const config = readConfig();
const logger = pino({ level: config.logLevel, base: { service: 'gourmetgram' } });
const metrics = createMetrics();

const engine = new Engine({
  workers: config.workers,
  init: {
    backend: config.tfjsBackend,
    modelDir: config.modelDir,
    warmupBatchSizes: config.batchMaxSize > 1 ? [1, config.batchMaxSize] : [1],
  },
  queueMaxWaitMs: config.queueMaxWaitMs,
  batchMaxSize: config.batchMaxSize,
  batchMaxWaitMs: config.batchMaxWaitMs,
  observer: {
    queueDepth: (depth) => metrics.queueDepth.set(depth),
    inFlight: (count) => metrics.inFlight.set(count),
    inference: (msPerImage, images) => {
      for (let i = 0; i < images; i++) metrics.inferenceDuration.observe(msPerImage / 1000);
    },
    rejected: (reason) => metrics.rejections.inc({ reason }),
    workerTensors: (worker, n) => metrics.workerTensors.set({ worker: String(worker) }, n),
    log: (level, msg, fields) => logger[level](fields ?? {}, msg),
  },
});
// One budget for every decode: the model's view of each upload, and the labels' 512 px copy of it.
const decodeMemory = new DecodeMemory(config.decodeMemoryBytes);
const labels = config.labels.enabled
  ? new Labels({
      database: { url: config.labels.databaseUrl, dataDir: config.labels.dataDir },
      pendingMs: config.labels.pendingMs,
      retentionMs: config.labels.retentionMs,
      queueMaxBytes: config.labels.queueMaxBytes,
      reserveMemory: decodeMemory.reserve,
      observer: {
        queueBytes: (bytes) => metrics.labelQueueBytes.set(bytes),
        dropped: (reason) => metrics.labelDropped.inc({ reason }),
        written: (n) => metrics.labelWritten.inc(n),
        storeUp: (up) => metrics.labelStoreUp.set(up ? 1 : 0),
        labelled: (p) =>
          metrics.labels.inc({
            kind: p.heldOut ? 'heldout' : 'correction',
            model: p.modelName,
            version: p.modelVersion,
            class: p.label,
            result: p.label === p.predicted ? 'right' : 'wrong',
          }),
        log: (level, msg, fields) => logger[level](fields ?? {}, msg),
      },
    })
  : undefined;
// While the model loads: an embedded store holds readiness back until it has opened (Labels.ready), a server's
// never does (the service classifies whether or not the database answers).
void labels?.start();
const lifecycle = new Lifecycle(() => metrics.rejections.inc({ reason: 'draining' }));
const assets = assetsDir();

const app = createApp({
  config,
  engine,
  metrics,
  logger,
  lifecycle,
  assetsDir: assets,
  testPhoto: fs.readFileSync(path.join(assets, TEST_PHOTO)),
  decodeMemory,
  ...(labels ? { labels } : {}),
});

const server = http.createServer(
  {
    headersTimeout: config.headersTimeoutMs,
    // The body guard answers a late body with 408 first; this is Node's own backstop for the whole request.
    requestTimeout: config.headersTimeoutMs + config.bodyTimeoutMs + 1000,
    // Node checks those deadlines on this interval (30 s by default), so they hold to about a second.
    connectionsCheckingInterval: 1000,
  },
  app,
);
server.listen(config.port, config.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info(
    { host: config.host, port, workers: config.workers },
    `listening on http://${config.host}:${port}`,
  );
});
server.on('error', (err) => {
  logger.fatal({ err }, `cannot listen on ${config.host}:${config.port}`);
  process.exit(1);
});

// Probes and scrapes have a listener and a thread of their own; both keep answering while the service drains
// (readiness then says so), and the process's exit ends them.
startInternalServer({
  host: config.host,
  port: config.metricsPort,
  stallMs: config.livenessStallMs,
  status: () => serviceStatus(engine, lifecycle, labels),
  metrics: async () => ({
    text: await metrics.registry.metrics(),
    contentType: metrics.registry.contentType,
  }),
}).then(
  (internal) => {
    // Readiness flips at once when the drain begins, not at the next heartbeat.
    lifecycle.onDrain(() => internal.update());
    logger.info(
      { host: config.host, port: internal.port },
      `metrics and probes on http://${config.host}:${internal.port} (/metrics, /healthz, /readyz)`,
    );
  },
  (err: Error) => {
    logger.fatal(
      { err: err.message },
      `cannot listen for metrics and probes on ${config.host}:${config.metricsPort}`,
    );
    process.exit(1);
  },
);

const loadStarted = Date.now();
// Photos are decoded only once the model is ready, so libvips' settings are in place before the first one.
applySharpSettings(config)
  .then(() => engine.start())
  .then((model) => {
    const { info } = model;
    metrics.modelInfo.set(
      {
        name: info.name,
        version: info.version,
        architecture: info.architecture,
        tfjs_backend: model.backend,
      },
      1,
    );
    logger.info(
      {
        model: `${info.name} ${info.version}`,
        tfjsBackend: model.backend,
        architecture: info.architecture,
        inputSize: info.inputSize,
        engine: info.engine,
        view: model.view,
        workers: config.workers,
        loadMs: Date.now() - loadStarted,
      },
      `ready: ${info.name} ${info.version} (${info.architecture} at ${info.inputSize} px) on TF.js '${model.backend}'`,
    );
  })
  .catch((err: Error) => {
    logger.fatal({ err: err.message }, 'the model could not be loaded; exiting');
    process.exit(1);
  });

const shutdown = (signal: string) => {
  logger.info({ signal }, 'shutdown requested');
  void lifecycle.shutdown(
    {
      server,
      closeEngine: async () => {
        // Predictions still queued for the labels store get a moment to reach it before the process exits.
        await Promise.all([engine.close(), labels?.close(Math.min(2000, config.shutdownTimeoutMs / 4))]);
      },
      log: (level, msg, fields) => logger[level](fields ?? {}, msg),
      exit: (code) => process.exit(code),
    },
    config.shutdownTimeoutMs,
  );
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
