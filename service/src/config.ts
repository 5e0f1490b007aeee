import fs from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import { DEFAULT_MAX_PIXELS } from '../../model/src/preprocess';

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

const envSchema = z.object({
  PORT: integer(0, 65535).default(3000),
  METRICS_PORT: integer(0, 65535).default(9464),
  LIVENESS_STALL_MS: integer(500).default(10_000),
  HOST: z.string().trim().min(1).default('0.0.0.0'),
  WORKERS: integer(1, 256).optional(),
  TFJS_BACKEND: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  IMAGE_DECODER: z.enum(['sharp', 'jimp']).default('sharp'),
  MAX_UPLOAD_BYTES: integer(1).default(10 * 1024 * 1024),
  MAX_PIXELS: integer(1).default(DEFAULT_MAX_PIXELS),
  MAX_INFLIGHT_UPLOAD_BYTES: integer(1).default(64 * 1024 * 1024),
  BODY_TIMEOUT_MS: integer(100).default(30_000),
  HEADERS_TIMEOUT_MS: integer(100).default(10_000),
  OIP_MAX_IMAGES: integer(1, 1024).default(8),
  SHARP_CACHE_MB: integer(0, 4096).default(0),
  SHARP_CONCURRENCY: integer(0, 256).default(1),
  QUEUE_MAX_WAIT_MS: integer(1).default(2000),
  BATCH_MAX_SIZE: integer(1, 256).default(1),
  BATCH_MAX_WAIT_MS: integer(0, 10_000).default(0),
  SHUTDOWN_TIMEOUT_MS: integer(100).default(20_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MODEL_DIR: z.string().trim().min(1).optional(),
});

export interface Config {
  port: number;
  /** /metrics only, on its own port so the public Service never exposes it */
  metricsPort: number;
  /** the internal /healthz fails once the main event loop has been stuck this long */
  livenessStallMs: number;
  host: string;
  workers: number;
  tfjsBackend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  imageDecoder: 'sharp' | 'jimp';
  maxUploadBytes: number;
  maxPixels: number;
  /** upload bytes being received or held, summed over every request in progress */
  maxInflightUploadBytes: number;
  /** a request body must have arrived this long after the request began */
  bodyTimeoutMs: number;
  headersTimeoutMs: number;
  /** images one Open Inference Protocol request may carry (FP32: that many of the model's input size) */
  oipMaxImages: number;
  /** libvips' operation cache; every upload is a different photo, so it holds memory and saves nothing */
  sharpCacheMb: number;
  /** libvips threads per image (0 = its default, one per core) */
  sharpConcurrency: number;
  queueMaxWaitMs: number;
  batchMaxSize: number;
  batchMaxWaitMs: number;
  shutdownTimeoutMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** undefined = the model the model package ships (model/shipped) */
  modelDir?: string;
}

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
      return `${name}=${JSON.stringify(present[name] ?? '')}: ${issue.message}`;
    });
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (e.METRICS_PORT === e.PORT && e.PORT !== 0) {
    problems.push(`METRICS_PORT=${e.METRICS_PORT}: must differ from PORT, which the public Service exposes`);
  }
  const largestBody = Math.max(predictBodyLimit(e.MAX_UPLOAD_BYTES), oipBodyLimit(e.MAX_UPLOAD_BYTES));
  if (e.MAX_INFLIGHT_UPLOAD_BYTES < largestBody) {
    problems.push(
      `MAX_INFLIGHT_UPLOAD_BYTES=${e.MAX_INFLIGHT_UPLOAD_BYTES}: must be at least ${largestBody}, the largest body one request may send with MAX_UPLOAD_BYTES=${e.MAX_UPLOAD_BYTES}`,
    );
  }
  if (problems.length > 0) throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  return {
    port: e.PORT,
    metricsPort: e.METRICS_PORT,
    livenessStallMs: e.LIVENESS_STALL_MS,
    host: e.HOST,
    workers: e.WORKERS ?? usableCpus(),
    tfjsBackend: e.TFJS_BACKEND,
    imageDecoder: e.IMAGE_DECODER,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    maxPixels: e.MAX_PIXELS,
    maxInflightUploadBytes: e.MAX_INFLIGHT_UPLOAD_BYTES,
    bodyTimeoutMs: e.BODY_TIMEOUT_MS,
    headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
    oipMaxImages: e.OIP_MAX_IMAGES,
    sharpCacheMb: e.SHARP_CACHE_MB,
    sharpConcurrency: e.SHARP_CONCURRENCY,
    queueMaxWaitMs: e.QUEUE_MAX_WAIT_MS,
    batchMaxSize: e.BATCH_MAX_SIZE,
    batchMaxWaitMs: e.BATCH_MAX_WAIT_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    modelDir: e.MODEL_DIR,
  };
}
