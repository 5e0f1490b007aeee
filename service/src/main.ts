import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { createApp } from './app';
import { assetsDir, TEST_PHOTO } from './assets';
import { ConfigError, loadConfig, type Config } from './config';
import { Engine } from './engine';
import { createMetrics } from './metrics';
import { Lifecycle } from './shutdown';

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
});

const server = app.listen(config.port, config.host, () => {
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

const loadStarted = Date.now();
engine
  .start()
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
      closeEngine: () => engine.close(),
      log: (level, msg, fields) => logger[level](fields ?? {}, msg),
      exit: (code) => process.exit(code),
    },
    config.shutdownTimeoutMs,
  );
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
