import fs from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import { BACKENDS } from '../../model/src/backend-names';
import { DECODER_NAMES, DEFAULT_MAX_PIXELS } from '../../model/src/preprocess';

/**
 * The service's whole configuration, read from the environment once at start-up. Every other module receives
 * this typed object and never reads process.env itself. The variables are the ones docs/interfaces.md lists.
 */

/** CPUs this process may really use: the affinity mask, further capped by a cgroup v2 CPU quota (a pod's limit). */
export function usableCpus(cgroupCpuMaxFile = '/sys/fs/cgroup/cpu.max'): number {
  const byAffinity = os.availableParallelism();
  try {
    const [quota, period] = fs.readFileSync(cgroupCpuMaxFile, 'utf8').trim().split(/\s+/);
    if (quota && quota !== 'max' && period) {
      const byQuota = Math.ceil(Number(quota) / Number(period));
      if (Number.isFinite(byQuota) && byQuota >= 1) return Math.min(byAffinity, byQuota);
    }
  } catch {
    // no cgroup v2 file (not Linux, or cgroup v1): the affinity mask is all we know
  }
  return byAffinity;
}

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** A share from 0 to 1 (0.05, 1, 0). */
const fraction = z
  .string()
  .trim()
  .regex(/^(0(\.\d+)?|1(\.0*)?|\.\d+)$/, 'must be a number from 0 to 1')
  .transform(Number);

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const envSchema = z.object({
  PORT: integer(0, 65535).default(3000).describe('where the HTTP server listens'),
  HOST: z.string().trim().min(1).default('0.0.0.0').describe('the address both listeners bind'),
  METRICS_PORT: integer(0, 65535)
    .default(9464)
    .describe(
      'the internal listener (same `HOST`): `/metrics`, and `/healthz` and `/readyz` answered by a thread of its own so probes are not delayed by load on the public port; must differ from `PORT`, which the public Service exposes',
    ),
  LIVENESS_STALL_MS: integer(500)
    .default(10_000)
    .describe('the internal `/healthz` answers 503 once the main event loop has not run for this long'),
  WORKERS: integer(1, 256)
    .optional()
    .describe(
      'inference worker threads; default: the CPUs the process may use (affinity and cgroup CPU quota are honoured)',
    ),
  TFJS_BACKEND: z
    .enum(BACKENDS)
    .default('auto')
    .describe('`auto` (tfjs-node if it loads, else wasm), `tensorflow`, `wasm`, `cpu`'),
  IMAGE_DECODER: z
    .enum(DECODER_NAMES)
    .default('sharp')
    .describe(
      "`sharp` (libvips, on libuv's thread pool) or `jimp` (pure JavaScript, much slower; it decodes in the workers)",
    ),
  SHARP_CACHE_MB: integer(0, 4096)
    .default(0)
    .describe(
      "libvips' operation cache (0 = off: every upload is a different photo, so it only holds memory); measured in bench/REPORT.md",
    ),
  SHARP_CONCURRENCY: integer(0, 256)
    .default(1)
    .describe(
      'libvips threads per image (0 = one per core); requests already decode in parallel; measured in bench/REPORT.md',
    ),
  MAX_UPLOAD_BYTES: integer(1)
    .default(10 * 1024 * 1024)
    .describe('larger uploads get 413'),
  MAX_PIXELS: integer(1).default(DEFAULT_MAX_PIXELS).describe('larger images get 422 (decompression bombs)'),
  DECODE_MEMORY_BYTES: integer(1)
    .default(96 * 1024 * 1024)
    .describe(
      'memory all photo decodes in progress may hold together, each counted from its header (a progressive JPEG 3.2 bytes a pixel with 4:2:0 chroma, 6.2 with 4:4:4; PNG, WebP and GIF 4; a baseline JPEG a fraction); a decode waits while the others hold too much; a photo that alone needs more gets 422',
    ),
  MAX_INFLIGHT_UPLOAD_BYTES: integer(1)
    .default(64 * 1024 * 1024)
    .describe(
      "request bodies being received or held, summed over all clients (each counts its `Content-Length`, a chunked one the route's limit); past it a new upload gets 503 + `Retry-After` at once. At least the largest body one request may send",
    ),
  BODY_TIMEOUT_MS: integer(100)
    .default(30_000)
    .describe(
      'a request body must have arrived this long after the request began, else 408 and the connection is closed',
    ),
  LINGER_MS: integer(0, 60_000)
    .default(5000)
    .describe(
      'after refusing a body it has not read (408, 413, 503), the server keeps reading and discarding it for at most this long before closing, so the client reads the answer instead of a connection reset',
    ),
  LINGER_MAX_BYTES: integer(0)
    .default(16 * 1024 * 1024)
    .describe('at most this many bytes of a refused body are read and discarded while lingering'),
  HEADERS_TIMEOUT_MS: integer(100)
    .default(10_000)
    .describe(
      "the request line and headers must have arrived within this (Node's `headersTimeout`; slow-header clients are cut)",
    ),
  OIP_MAX_IMAGES: integer(1, 1024)
    .default(8)
    .describe(
      "images one `/v2/\u2026/infer` request may carry (BYTES elements, FP32 `N`); FP32 values are budgeted as this many images of the model's view size. More gets 413",
    ),
  QUEUE_MAX_WAIT_MS: integer(1)
    .default(2000)
    .describe('a request that would wait longer is answered 503 + Retry-After at once'),
  BATCH_MAX_SIZE: integer(1, 256)
    .default(1)
    .describe(
      'adaptive batching: the most images one forward pass takes. A free worker takes what is queued (shared fairly between free workers), so 1 turns batching off; each size a worker runs keeps its wasm memory resident (bench/REPORT.md measures both per batch size)',
    ),
  BATCH_MAX_WAIT_MS: integer(0, 1000)
    .default(5)
    .describe(
      "adaptive batching: how long queued images may wait for a fuller batch, counted from the oldest's arrival; they wait only while more images are admitted and still decoding, so a request that arrives alone is never held",
    ),
  SHUTDOWN_TIMEOUT_MS: integer(100)
    .default(20_000)
    .describe("drain deadline after SIGTERM; the pod's grace period must exceed it"),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info').describe('pino level'),
  MODEL_DIR: z
    .string()
    .trim()
    .min(1)
    .optional()
    .describe(
      'a model folder (`metadata.json` + `network/`) that `npm run train` wrote; default: the shipped model (`model/shipped`)',
    ),
  LABELS: z
    .enum(['on', 'off'])
    .default('on')
    .describe(
      '`on`: every prediction from `POST /predict` gets an `id` a user can label (`POST /labels`) and waits in the labels store; `off`: nothing is stored, no `id`, `/labels` and `/accuracy` answer 404',
    ),
  DATABASE_URL: z
    .string()
    .trim()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional()
    .describe(
      'the labels store: a PostgreSQL server (`postgres://user:password@host:5432/db`); any number of replicas may share it. Unset: an embedded PostgreSQL (PGlite) in `LABEL_DATA_DIR`, for one process',
    ),
  LABEL_DATA_DIR: z
    .string()
    .trim()
    .min(1)
    .default('.data/labels')
    .describe(
      "the embedded store's folder when `DATABASE_URL` is unset (relative to the working directory); one process at a time",
    ),
  LABEL_SAMPLE_RATE: fraction
    .default(0.05)
    .describe(
      "the share of uploads from the page that are held out: the result page asks the user for the category before it shows the model's answer (JSON clients opt in with `?heldOut=1`)",
    ),
  LABEL_PENDING_MINUTES: integer(1, 7 * 24 * 60)
    .default(60)
    .describe(
      'how long an unlabelled prediction (its record and a 512 px copy of its photo) waits for a label; then it is deleted',
    ),
  LABEL_RETENTION_DAYS: integer(1, 100 * 365)
    .default(365)
    .describe('a labelled photo and its record are deleted this long after the label'),
  LABEL_QUEUE_MAX_MB: integer(1, 4096)
    .default(32)
    .describe(
      'photos waiting to be written to the store, summed; past it a prediction is answered without an `id` (counted in `label_pending_dropped_total{reason="queue_full"}`), so a slow or stopped database never slows a prediction',
    ),
});

/** Every variable the service reads, with its default (when it has one) and meaning: docs/interfaces.md's table. */
export function environmentVariables(): { name: string; default?: string; meaning: string }[] {
  const defaults = envSchema.parse({}) as Record<string, unknown>;
  return Object.entries(envSchema.shape).map(([name, schema]) => ({
    name,
    ...(defaults[name] !== undefined ? { default: String(defaults[name]) } : {}),
    meaning: schema.description ?? '',
  }));
}

/** The service's configuration: each variable's meaning is in envSchema's descriptions above. */
export type Config = ReturnType<typeof fromVariables>;

/** What a multipart form may add around its one photo (boundaries, part headers, a few small fields). */
export const FORM_OVERHEAD_BYTES = 64 * 1024;

/** The largest body POST /predict reads: one photo and its form. */
export function predictBodyLimit(maxUploadBytes: number): number {
  return maxUploadBytes + FORM_OVERHEAD_BYTES;
}

/** The largest Open Inference Protocol body: base64 of one upload's worth of photos (4 characters per 3 bytes). */
export function oipBodyLimit(maxUploadBytes: number): number {
  return Math.ceil(maxUploadBytes / 3) * 4 + FORM_OVERHEAD_BYTES;
}

const SECRET_VARIABLES = new Set(['DATABASE_URL']);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads and validates the configuration; a bad value throws ConfigError naming every offending variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable (FOO=) means "not set", as in most shells' and Kubernetes' habits.
  const present = Object.fromEntries(
    Object.keys(envSchema.shape)
      .map((key) => [key, env[key]] as const)
      .filter(([, value]) => value !== undefined && value.trim() !== ''),
  );
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      // A database URL holds its password: the message names the variable, never its value.
      const shown = SECRET_VARIABLES.has(name) ? '…' : JSON.stringify(present[name] ?? '');
      return `${name}=${shown}: ${issue.message}`;
    });
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }
  const vars = parsed.data;
  const problems: string[] = [];
  if (vars.METRICS_PORT === vars.PORT && vars.PORT !== 0) {
    problems.push(
      `METRICS_PORT=${vars.METRICS_PORT}: must differ from PORT, which the public Service exposes`,
    );
  }
  const largestBody = Math.max(predictBodyLimit(vars.MAX_UPLOAD_BYTES), oipBodyLimit(vars.MAX_UPLOAD_BYTES));
  if (vars.MAX_INFLIGHT_UPLOAD_BYTES < largestBody) {
    problems.push(
      `MAX_INFLIGHT_UPLOAD_BYTES=${vars.MAX_INFLIGHT_UPLOAD_BYTES}: must be at least ${largestBody}, the largest body one request may send with MAX_UPLOAD_BYTES=${vars.MAX_UPLOAD_BYTES}`,
    );
  }
  if (problems.length > 0) throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  return fromVariables(vars);
}

/** The validated variables under the names the code uses. */
function fromVariables(vars: z.infer<typeof envSchema>) {
  return {
    port: vars.PORT,
    metricsPort: vars.METRICS_PORT,
    livenessStallMs: vars.LIVENESS_STALL_MS,
    host: vars.HOST,
    workers: vars.WORKERS ?? usableCpus(),
    tfjsBackend: vars.TFJS_BACKEND,
    imageDecoder: vars.IMAGE_DECODER,
    maxUploadBytes: vars.MAX_UPLOAD_BYTES,
    maxPixels: vars.MAX_PIXELS,
    decodeMemoryBytes: vars.DECODE_MEMORY_BYTES,
    maxInflightUploadBytes: vars.MAX_INFLIGHT_UPLOAD_BYTES,
    bodyTimeoutMs: vars.BODY_TIMEOUT_MS,
    headersTimeoutMs: vars.HEADERS_TIMEOUT_MS,
    linger: { maxMs: vars.LINGER_MS, maxBytes: vars.LINGER_MAX_BYTES },
    oipMaxImages: vars.OIP_MAX_IMAGES,
    sharpCacheMb: vars.SHARP_CACHE_MB,
    sharpConcurrency: vars.SHARP_CONCURRENCY,
    queueMaxWaitMs: vars.QUEUE_MAX_WAIT_MS,
    batchMaxSize: vars.BATCH_MAX_SIZE,
    batchMaxWaitMs: vars.BATCH_MAX_WAIT_MS,
    shutdownTimeoutMs: vars.SHUTDOWN_TIMEOUT_MS,
    logLevel: vars.LOG_LEVEL,
    modelDir: vars.MODEL_DIR,
    labels: {
      enabled: vars.LABELS === 'on',
      databaseUrl: vars.DATABASE_URL,
      dataDir: vars.LABEL_DATA_DIR,
      sampleRate: vars.LABEL_SAMPLE_RATE,
      pendingMs: vars.LABEL_PENDING_MINUTES * 60_000,
      retentionMs: vars.LABEL_RETENTION_DAYS * 24 * 3_600_000,
      queueMaxBytes: vars.LABEL_QUEUE_MAX_MB * 1024 * 1024,
    },
  };
}
