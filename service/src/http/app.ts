import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { stdSerializers, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { BodyGuard } from './body-guard';
import { oipBodyLimit, predictBodyLimit, type Config } from '../config';
import { megabytes, type DecodeMemory } from '../inference/decode-memory';
import { OverloadedError, type Engine } from '../inference/engine';
import { errorAnswer, type ErrorAnswer } from './error-answer';
import { HttpError, toHttpError } from './http-error';
import { createLabelRouter, type Labels, type LabelsState } from '../labels';
import type { Metrics } from '../process/metrics';
import { createOipRouter } from './oip';
import { createPredictRouter, PHOTO_ROUTES } from './predict-routes';
import { Predictor } from '../inference/prediction';
import type { Lifecycle } from '../process/shutdown';
import { createUploadReceiver, photoTooLargeMessage } from './upload';
import { uploadPage } from './views';

/** The routes. Everything they use is handed in, so a test or main.ts decides what runs behind them. */
export interface AppDeps {
  config: Pick<
    Config,
    | 'maxUploadBytes'
    | 'maxPixels'
    | 'imageDecoder'
    | 'maxInflightUploadBytes'
    | 'bodyTimeoutMs'
    | 'oipMaxImages'
    | 'linger'
    | 'labels'
  >;
  engine: Engine;
  metrics: Metrics;
  logger: Logger;
  lifecycle: Lifecycle;
  assetsDir: string;
  /** the bundled photo GET /test classifies */
  testPhoto: Buffer;
  /** the labels store (LABELS=on): predictions get an id, /labels and /accuracy answer */
  labels?: Labels;
  /** what photo decodes may hold together (DECODE_MEMORY_BYTES): the predictions' and the labels' */
  decodeMemory: DecodeMemory;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

function routeLabel(req: Request): string {
  const route = req.route as { path?: string } | undefined;
  if (route?.path) return `${req.baseUrl}${route.path}`;
  if (req.originalUrl.startsWith('/static/')) return '/static';
  // Unmatched paths share one label so scanners cannot blow up the metric's cardinality.
  return 'unmatched';
}

/** Every request's duration, by route template (never the raw path). */
function timeRequests(metrics: Metrics): express.RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      metrics.httpRequestDuration.observe(
        { method: req.method, route: routeLabel(req), status_code: String(res.statusCode) },
        (performance.now() - started) / 1000,
      );
    });
    next();
  };
}

/**
 * Under overload most prediction requests are shed. Answering those here, before their body is read, logged or
 * given security headers, keeps each one cheap, so the event loop stays free for the probes. admit() still
 * decides for the requests that pass.
 */
function shedWhenOverloaded(
  engine: Engine,
  lifecycle: Lifecycle,
  answer: ErrorAnswer,
): express.RequestHandler {
  return (req, res, next) => {
    const photoRoute = PHOTO_ROUTES.some((r) => r.method === req.method && r.path === req.path);
    if (!photoRoute || lifecycle.draining) {
      next();
      return;
    }
    try {
      engine.check(1);
    } catch (err) {
      if (!(err instanceof OverloadedError)) {
        next();
        return;
      }
      answer(req, res, toHttpError(err));
      return;
    }
    next();
  };
}

/** One log line per request, with its id (the client's X-Request-Id when it is sane, else a new one). */
function logRequests(logger: Logger): express.RequestHandler {
  return pinoHttp({
    logger,
    genReqId: (req, res) => {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    // Enough to follow a request; headers (cookies, auth) stay out of the log.
    serializers: {
      req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url,
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      // pino-http makes up an Error for every 5xx; its stack points into pino-http, never at a cause.
      err: (err: Error) =>
        err.message.startsWith('failed with status code')
          ? { message: err.message }
          : stdSerializers.err(err),
    },
    // Probes and scrapes arrive every few seconds; logging each would drown the requests that matter.
    autoLogging: { ignore: (req) => ['/healthz', '/readyz'].includes(req.url ?? '') },
    // A 503 is the service shedding load or draining as designed: worth a warning, not an error (and under
    // overload, one error with a stack per shed request would itself be load).
    customLogLevel: (_req, res, err) =>
      err || (res.statusCode >= 500 && res.statusCode !== 503)
        ? 'error'
        : res.statusCode >= 400
          ? 'warn'
          : 'info',
  });
}

/**
 * The service is often reached over plain HTTP (a load balancer's IP): upgrade-insecure-requests would make
 * browsers fetch the stylesheet, script and form target over https and fail. The upload page previews the chosen
 * photo from a blob: URL; the result page shows it as a data: URL.
 */
const securityHeaders = () =>
  helmet({
    contentSecurityPolicy: {
      directives: { upgradeInsecureRequests: null, imgSrc: ["'self'", 'data:', 'blob:'] },
    },
  });

/** Budgets for bodies before a route reads one (body-guard.ts), per protocol. */
function guardBodies(config: AppDeps['config'], metrics: Metrics, answer: ErrorAnswer): BodyGuard {
  const { maxUploadBytes } = config;
  const isOip = (path: string) => path.startsWith('/v2/');
  return new BodyGuard({
    limitFor: (path) => (isOip(path) ? oipBodyLimit(maxUploadBytes) : predictBodyLimit(maxUploadBytes)),
    tooLargeMessage: (path, limit) =>
      isOip(path)
        ? `The request body is larger than ${megabytes(limit)}: send fewer or smaller photos.`
        : photoTooLargeMessage(maxUploadBytes),
    budgetBytes: config.maxInflightUploadBytes,
    bodyTimeoutMs: config.bodyTimeoutMs,
    onRefused: (reason) => {
      if (reason === 'upload_budget') metrics.rejections.inc({ reason });
    },
    answer,
  });
}

export interface ServiceStatus {
  /** the model is loaded and warm, the embedded labels store has opened, and the service is not draining */
  ready: boolean;
  modelLoaded: boolean;
  draining: boolean;
  /** the labels store: `off` with LABELS=off */
  labelsStore: LabelsState | 'off';
}

/** What /readyz says, on the public port and on the internal one. */
export function serviceStatus(engine: Engine, lifecycle: Lifecycle, labels?: Labels): ServiceStatus {
  return {
    ready: engine.ready && !lifecycle.draining && (labels?.ready ?? true),
    modelLoaded: engine.model !== undefined,
    draining: lifecycle.draining,
    labelsStore: labels?.state ?? 'off',
  };
}

/** The probes on the public port (the pods probe the internal port; these serve people and load balancers). */
function healthRoutes(status: () => ServiceStatus): express.Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'alive' });
  });
  router.get('/readyz', (_req, res) => {
    const now = status();
    res.status(now.ready ? 200 : 503).json(now);
  });
  return router;
}

function notFound(req: Request, _res: Response, next: NextFunction): void {
  next(
    new HttpError(
      404,
      'not_found',
      `Nothing at ${req.method} ${req.path}: upload a photo at / or POST it to /predict.`,
    ),
  );
}

function answerErrors(answer: ErrorAnswer): express.ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const http = toHttpError(err);
    // Client errors are already logged by pino-http with the request; only our failures need the stack.
    if (http.status >= 500 && http.code === 'internal') req.log.error({ err }, 'request failed');
    answer(req, res, http);
  };
}

export function createApp(deps: AppDeps): express.Express {
  const { engine, metrics, lifecycle, config } = deps;
  const status = () => serviceStatus(engine, lifecycle, deps.labels);
  const isReady = () => status().ready;
  const predictor = new Predictor(
    engine,
    { maxPixels: config.maxPixels, decoder: config.imageDecoder },
    { predicted: (label) => metrics.predictions.inc({ label }) },
    deps.decodeMemory,
  );
  const answer = errorAnswer(config.linger);
  const bodies = guardBodies(config, metrics, answer);
  lifecycle.onDrain(() => bodies.startDrain());

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use(timeRequests(metrics));
  app.use(shedWhenOverloaded(engine, lifecycle, answer));
  app.use(logRequests(deps.logger));
  app.use(securityHeaders());
  app.use(lifecycle.middleware);
  app.use(bodies.middleware);

  app.use(healthRoutes(status));
  app.use('/static', express.static(path.join(deps.assetsDir, 'static'), { maxAge: '1h', index: false }));
  app.get('/', (_req, res) => {
    const classes = engine.model?.labels.map((l) => l.name) ?? [];
    res.type('html').send(uploadPage({ classes, maxUploadBytes: config.maxUploadBytes, ready: isReady() }));
  });
  const { labels } = deps;
  app.use(
    createPredictRouter({
      predictor,
      uploads: createUploadReceiver(config.maxUploadBytes),
      testPhoto: deps.testPhoto,
      ...(labels
        ? {
            labelling: {
              labels,
              reserveMemory: deps.decodeMemory.reserve,
              sampleRate: config.labels.sampleRate,
              pendingMinutes: Math.round(config.labels.pendingMs / 60_000),
            },
          }
        : {}),
    }),
  );
  if (labels) app.use(createLabelRouter({ labels, model: () => engine.model }));
  app.use(
    '/v2',
    createOipRouter({
      predictor,
      engine,
      isReady,
      budget: {
        maxUploadBytes: config.maxUploadBytes,
        maxPixels: config.maxPixels,
        maxImages: config.oipMaxImages,
      },
    }),
  );

  app.use(notFound);
  app.use(answerErrors(answer));
  return app;
}
