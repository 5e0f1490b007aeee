import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { runLoadTest } from '../../tools/loadtest/run-load-test';
import { LATENCY_COLUMNS } from '../../tools/loadtest/stage-tally';
import { parseSiegeLog, SIEGE_LOG_HEADER } from '../../tools/shared/siege-log';
import { startServer, type RunningServer } from '../../tools/shared/service-process';
import { bundledTestPhoto } from '../helpers/images';
import { labelsOpen, labelWithRetry, predictJson, type AccuracyAnswer } from '../helpers/labels-client';

interface RouteCounts {
  byStatus: Map<string, number>;
  sumSeconds: number;
}

/** What the service's own histogram counted for GET /test, by status code. */
async function scrapeTestRoute(url: string): Promise<RouteCounts> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const byStatus = new Map<string, number>();
  let sumSeconds = 0;
  for (const line of text.split('\n')) {
    const m = /^http_request_duration_seconds_(count|sum)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || !/route="\/test"/.test(m[2]!) || !/method="GET"/.test(m[2]!)) continue;
    if (m[1] === 'sum') {
      sumSeconds += Number(m[3]);
      continue;
    }
    const status = /status_code="(\d+)"/.exec(m[2]!)?.[1] ?? '?';
    byStatus.set(status, (byStatus.get(status) ?? 0) + Number(m[3]));
  }
  return { byStatus, sumSeconds };
}

describe('load test against the real service on 127.0.0.1 (wasm, one worker, the shipped model)', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({ env: { WORKERS: '1' } });
  });
  after(() => server.stop());

  it('writes the specified rows and columns, and its counts match what the server counted in /metrics', async () => {
    const before = await scrapeTestRoute(server.metricsUrl);
    const outDir = join(mkdtempSync(join(tmpdir(), 'gg-load-service-')), 'run');
    const profile = {
      name: 'seconds',
      stages: [
        { users: 2, delaySeconds: 0.3, durationSeconds: 2 },
        { users: 3, delaySeconds: 0, durationSeconds: 2 },
      ],
    };
    const result = await runLoadTest({
      url: server.url,
      path: '/test',
      profile,
      outDir,
      timeoutMs: 30_000,
      keepAlive: false,
    });
    const after = await scrapeTestRoute(server.metricsUrl);
    assert.equal(result.stagesRun, 2);
    // labels off (the test servers' default): /accuracy is 404, so the run has no live accuracy to save
    assert.equal(existsSync(join(outDir, 'accuracy.json')), false);

    const siegeText = readFileSync(join(outDir, 'siege.log'), 'utf8');
    assert.ok(siegeText.startsWith(SIEGE_LOG_HEADER));
    const siege = parseSiegeLog(siegeText, 'siege.log');
    assert.equal(siege.length, 2);
    const latencyText = readFileSync(join(outDir, 'latency.csv'), 'utf8');
    assert.equal(latencyText.split('\n')[0], LATENCY_COLUMNS.join(','));
    const rows = parse(latencyText, { columns: true, cast: true }) as Record<string, number | string>[];
    assert.equal(rows.length, 2);
    const sum = (k: string) => rows.reduce((a, r) => a + Number(r[k]), 0);

    // Every request reached the server and was answered (no timeouts or connection errors on loopback) …
    assert.equal(sum('timeout'), 0);
    assert.equal(sum('connection'), 0);
    assert.equal(sum('non_2xx'), 0);
    assert.ok(sum('ok') > 5, `only ${sum('ok')} successful requests`);
    // … so the server's histogram grew by exactly our requests plus the preflight, status by status.
    const delta = (status: string) => (after.byStatus.get(status) ?? 0) - (before.byStatus.get(status) ?? 0);
    assert.equal(delta('200'), sum('ok') + 1);
    assert.equal(delta('503'), sum('shed_503'));
    const serverTotal = [...after.byStatus.keys()].reduce((a, s) => a + delta(s), 0);
    assert.equal(serverTotal, sum('requests') + 1);
    // siege's columns agree with the percentile CSV
    siege.forEach((entry, i) => {
      assert.equal(entry.okay, rows[i]!.ok);
      assert.equal(entry.failed, Number(rows[i]!.requests) - Number(rows[i]!.ok));
    });
    // the client's clock includes the server's: Σ client latency ≥ Σ server duration (5 % for clock granularity)
    const requests = parse(readFileSync(join(outDir, 'requests.csv'), 'utf8'), { columns: true }) as Record<
      string,
      string
    >[];
    assert.equal(requests.length, sum('requests'));
    const clientSeconds = requests.reduce((a, r) => a + Number(r.latency_ms), 0) / 1000;
    const serverSeconds = after.sumSeconds - before.sumSeconds;
    assert.ok(clientSeconds >= serverSeconds * 0.95, `client ${clientSeconds} s < server ${serverSeconds} s`);

    const meta = JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8'));
    assert.equal(meta.modelInfo?.tfjs_backend, 'wasm', 'run.json records the model the service reported');
  });
});

describe('load test against a service that takes labels', () => {
  it("saves the service's live accuracy with the run, for the report", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gg-load-labels-'));
    const server = await startServer({ env: { LABELS: 'on', LABEL_DATA_DIR: dataDir } });
    try {
      await labelsOpen(server.url);
      const held = await predictJson(server.url, bundledTestPhoto(), true);
      await labelWithRetry(server.url, held.id!, 'Soup');
      const outDir = join(dataDir, 'run');
      await runLoadTest({
        url: server.url,
        path: '/test',
        profile: { name: 'second', stages: [{ users: 1, delaySeconds: 0.2, durationSeconds: 1 }] },
        outDir,
        timeoutMs: 30_000,
        keepAlive: false,
      });
      const saved = JSON.parse(readFileSync(join(outDir, 'accuracy.json'), 'utf8')) as AccuracyAnswer;
      assert.equal(saved.labelsTotal, 1);
      assert.equal(saved.models[0]!.heldOut.n, 1);
    } finally {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
