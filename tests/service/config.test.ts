import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, usableCpus } from '../../service/src/config';
import { REPO_ROOT, SERVICE_COMMAND } from '../../tools/shared/service-process';

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    assert.equal(c.port, 3000);
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.tfjsBackend, 'auto');
    assert.equal(c.imageDecoder, 'sharp');
    assert.equal(c.maxUploadBytes, 10 * 1024 * 1024);
    assert.equal(c.maxPixels, 64_200_000);
    assert.equal(c.queueMaxWaitMs, 2000);
    assert.equal(c.batchMaxSize, 1);
    assert.equal(c.batchMaxWaitMs, 5);
    assert.equal(c.shutdownTimeoutMs, 20_000);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.workers, usableCpus());
    assert.equal(c.modelDir, undefined);
  });

  it('reads every variable', () => {
    const c = loadConfig({
      PORT: '8080',
      HOST: '127.0.0.1',
      WORKERS: '3',
      TFJS_BACKEND: 'wasm',
      IMAGE_DECODER: 'jimp',
      MAX_UPLOAD_BYTES: '1000',
      MAX_PIXELS: '2000',
      QUEUE_MAX_WAIT_MS: '300',
      BATCH_MAX_SIZE: '8',
      BATCH_MAX_WAIT_MS: '5',
      SHUTDOWN_TIMEOUT_MS: '4000',
      LOG_LEVEL: 'warn',
      MODEL_DIR: '/models/x',
    });
    assert.deepEqual(
      [c.port, c.host, c.workers, c.tfjsBackend, c.imageDecoder, c.maxUploadBytes, c.maxPixels],
      [8080, '127.0.0.1', 3, 'wasm', 'jimp', 1000, 2000],
    );
    assert.deepEqual(
      [c.queueMaxWaitMs, c.batchMaxSize, c.batchMaxWaitMs, c.shutdownTimeoutMs, c.logLevel],
      [300, 8, 5, 4000, 'warn'],
    );
    assert.equal(c.modelDir, '/models/x');
  });

  it('has the documented input budgets, and reads them (issue 12)', () => {
    const d = loadConfig({});
    assert.deepEqual(
      [d.metricsPort, d.maxInflightUploadBytes, d.bodyTimeoutMs, d.headersTimeoutMs, d.oipMaxImages],
      [9464, 64 * 1024 * 1024, 30_000, 10_000, 8],
    );
    assert.deepEqual([d.livenessStallMs, d.sharpCacheMb, d.sharpConcurrency], [10_000, 0, 1]);
    const c = loadConfig({
      METRICS_PORT: '9100',
      MAX_INFLIGHT_UPLOAD_BYTES: '50000000',
      BODY_TIMEOUT_MS: '5000',
      HEADERS_TIMEOUT_MS: '2000',
      OIP_MAX_IMAGES: '4',
    });
    assert.deepEqual(
      [c.metricsPort, c.maxInflightUploadBytes, c.bodyTimeoutMs, c.headersTimeoutMs, c.oipMaxImages],
      [9100, 50_000_000, 5000, 2000, 4],
    );
  });

  it('treats an empty variable as unset', () => {
    assert.equal(loadConfig({ PORT: '', WORKERS: ' ' }).port, 3000);
  });

  const bad: [Record<string, string>, string][] = [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ WORKERS: '0' }, 'WORKERS'],
    [{ WORKERS: '1.5' }, 'WORKERS'],
    [{ TFJS_BACKEND: 'webgl' }, 'TFJS_BACKEND'],
    [{ IMAGE_DECODER: 'imagemagick' }, 'IMAGE_DECODER'],
    [{ MAX_UPLOAD_BYTES: '-1' }, 'MAX_UPLOAD_BYTES'],
    [{ MAX_PIXELS: '10MP' }, 'MAX_PIXELS'],
    [{ QUEUE_MAX_WAIT_MS: '0' }, 'QUEUE_MAX_WAIT_MS'],
    [{ BATCH_MAX_SIZE: '0' }, 'BATCH_MAX_SIZE'],
    [{ SHUTDOWN_TIMEOUT_MS: 'soon' }, 'SHUTDOWN_TIMEOUT_MS'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
    [{ METRICS_PORT: '3000' }, 'METRICS_PORT'],
    [{ MAX_INFLIGHT_UPLOAD_BYTES: '1000000' }, 'MAX_INFLIGHT_UPLOAD_BYTES'],
    [{ BODY_TIMEOUT_MS: '0' }, 'BODY_TIMEOUT_MS'],
    [{ HEADERS_TIMEOUT_MS: 'never' }, 'HEADERS_TIMEOUT_MS'],
    [{ OIP_MAX_IMAGES: '0' }, 'OIP_MAX_IMAGES'],
    [{ LIVENESS_STALL_MS: '10' }, 'LIVENESS_STALL_MS'],
    [{ SHARP_CONCURRENCY: 'many' }, 'SHARP_CONCURRENCY'],
    [{ LABELS: 'yes' }, 'LABELS'],
    [{ DATABASE_URL: 'mysql://db/labels' }, 'DATABASE_URL'],
    [{ LABEL_SAMPLE_RATE: '1.5' }, 'LABEL_SAMPLE_RATE'],
    [{ LABEL_SAMPLE_RATE: '5%' }, 'LABEL_SAMPLE_RATE'],
    [{ LABEL_PENDING_MINUTES: '0' }, 'LABEL_PENDING_MINUTES'],
    [{ LABEL_RETENTION_DAYS: 'forever' }, 'LABEL_RETENTION_DAYS'],
    [{ LABEL_QUEUE_MAX_MB: '0' }, 'LABEL_QUEUE_MAX_MB'],
  ];
  for (const [env, name] of bad) {
    it(`names ${name} when ${JSON.stringify(env)}`, () => {
      assert.throws(
        () => loadConfig(env),
        (err: Error) => err instanceof ConfigError && err.message.includes(`${name}=`),
      );
    });
  }

  it('has the documented labels settings, and reads them (issue 20)', () => {
    assert.deepEqual(loadConfig({}).labels, {
      enabled: true,
      databaseUrl: undefined,
      dataDir: '.data/labels',
      sampleRate: 0.05,
      pendingMs: 60 * 60_000,
      retentionMs: 365 * 24 * 3_600_000,
      queueMaxBytes: 32 * 1024 * 1024,
    });
    const c = loadConfig({
      LABELS: 'off',
      DATABASE_URL: 'postgresql://gg:secret@db:5432/labels',
      LABEL_DATA_DIR: '/data/labels',
      LABEL_SAMPLE_RATE: '1',
      LABEL_PENDING_MINUTES: '5',
      LABEL_RETENTION_DAYS: '30',
      LABEL_QUEUE_MAX_MB: '8',
    }).labels;
    assert.deepEqual(
      [c.enabled, c.databaseUrl, c.dataDir, c.sampleRate, c.pendingMs, c.retentionMs, c.queueMaxBytes],
      [false, 'postgresql://gg:secret@db:5432/labels', '/data/labels', 1, 300_000, 30 * 86_400_000, 8 << 20],
    );
    assert.equal(loadConfig({ LABEL_SAMPLE_RATE: '0' }).labels.sampleRate, 0);
    assert.equal(loadConfig({ LABEL_SAMPLE_RATE: '.25' }).labels.sampleRate, 0.25);
  });

  it('never prints the database URL, which holds a password', () => {
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'mysql://gg:hunter2@db/labels' }),
      (err: Error) => err.message.includes('DATABASE_URL=') && !err.message.includes('hunter2'),
    );
  });

  it('names every bad variable at once', () => {
    assert.throws(() => loadConfig({ PORT: 'x', WORKERS: 'y' }), /PORT=.*WORKERS=/);
  });

  it('stops the process with exit code 2 and the variable named on stderr', () => {
    const [cmd, ...args] = SERVICE_COMMAND;
    const run = spawnSync(cmd!, args, {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HOME: os.tmpdir(), QUEUE_MAX_WAIT_MS: 'forever' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /QUEUE_MAX_WAIT_MS="forever"/);
    assert.doesNotMatch(run.stderr, /at .*\.ts:\d+/, 'no stack trace');
  });

  it('counts the CPUs a cgroup quota allows', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cpu-max-'));
    const file = path.join(dir, 'cpu.max');
    fs.writeFileSync(file, '100000 100000\n');
    assert.equal(usableCpus(file), 1);
    fs.writeFileSync(file, 'max 100000\n');
    assert.equal(usableCpus(file), os.availableParallelism());
    assert.equal(usableCpus(path.join(dir, 'missing')), os.availableParallelism());
    fs.rmSync(dir, { recursive: true });
  });
});
