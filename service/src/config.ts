import fs from 'node:fs';
import os from 'node:os';
import { z } from 'zod';

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
  HOST: z.string().trim().min(1).default('0.0.0.0'),
  WORKERS: integer(1, 256).optional(),
  TFJS_BACKEND: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  IMAGE_DECODER: z.enum(['sharp', 'jimp']).default('sharp'),
  MAX_UPLOAD_BYTES: integer(1).default(10 * 1024 * 1024),
  MAX_PIXELS: integer(1).default(40_000_000),
  QUEUE_MAX_WAIT_MS: integer(1).default(2000),
  BATCH_MAX_SIZE: integer(1, 256).default(1),
  BATCH_MAX_WAIT_MS: integer(0, 10_000).default(0),
  SHUTDOWN_TIMEOUT_MS: integer(100).default(20_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MODEL_DIR: z.string().trim().min(1).optional(),
});

export interface Config {
  port: number;
  host: string;
  workers: number;
  tfjsBackend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  imageDecoder: 'sharp' | 'jimp';
  maxUploadBytes: number;
  maxPixels: number;
  queueMaxWaitMs: number;
  batchMaxSize: number;
  batchMaxWaitMs: number;
  shutdownTimeoutMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** undefined = the model the model package ships (model/shipped) */
  modelDir?: string;
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
  return {
    port: e.PORT,
    host: e.HOST,
    workers: e.WORKERS ?? usableCpus(),
    tfjsBackend: e.TFJS_BACKEND,
    imageDecoder: e.IMAGE_DECODER,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    maxPixels: e.MAX_PIXELS,
    queueMaxWaitMs: e.QUEUE_MAX_WAIT_MS,
    batchMaxSize: e.BATCH_MAX_SIZE,
    batchMaxWaitMs: e.BATCH_MAX_WAIT_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    modelDir: e.MODEL_DIR,
  };
}
