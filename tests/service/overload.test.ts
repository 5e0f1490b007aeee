import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { startServer, type RunningServer } from '../helpers/server';

// Overload is explicit: with every worker busy and the queue's expected wait over the limit, requests are
// answered 503 + Retry-After at once, and the probes keep answering quickly because inference is off the
// event loop. Latencies are compared with each other, never with fixed numbers.

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

describe('overload', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({ env: { WORKERS: '1', QUEUE_MAX_WAIT_MS: '300' } });
  });
  after(async () => {
    await server.stop();
  });

  it('sheds with 503 + Retry-After while probes answer fast', async () => {
    const timed = async (path: string) => {
      const started = performance.now();
      const res = await fetch(`${server.url}${path}`);
      await res.arrayBuffer();
      return {
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        ms: performance.now() - started,
      };
    };

    // Waves of concurrent predictions keep the worker saturated while probes run alongside.
    const predictions: Promise<Awaited<ReturnType<typeof timed>>>[] = [];
    const probes: Awaited<ReturnType<typeof timed>>[] = [];
    for (let wave = 0; wave < 4; wave++) {
      for (let i = 0; i < 15; i++) predictions.push(timed('/test'));
      await new Promise((r) => setTimeout(r, 100));
      for (let i = 0; i < 5; i++) {
        probes.push(await timed(['/healthz', '/readyz', '/'][i % 3]!));
      }
    }
    const results = await Promise.all(predictions);

    const served = results.filter((r) => r.status === 200);
    const shed = results.filter((r) => r.status === 503);
    assert.equal(served.length + shed.length, results.length, 'only 200s and 503s');
    assert.ok(served.length > 0, 'some predictions served');
    assert.ok(shed.length > 0, 'some predictions shed');
    for (const r of shed) assert.ok(Number(r.retryAfter) >= 1, `Retry-After ${r.retryAfter}`);

    assert.ok(
      probes.every((p) => p.status === 200),
      'probes and the upload page stay 200 under overload',
    );
    // A probe or page waits for no inference: it answers well within the time one served prediction takes.
    const probeMs = median(probes.map((p) => p.ms));
    const servedMs = median(served.map((p) => p.ms));
    assert.ok(
      probeMs * 3 < servedMs,
      `probe median ${probeMs.toFixed(1)} ms vs prediction median ${servedMs.toFixed(1)} ms`,
    );
    // Refusing is cheap too: a 503 does not wait in the queue.
    const shedMs = median(shed.map((p) => p.ms));
    assert.ok(
      shedMs < servedMs,
      `503 median ${shedMs.toFixed(1)} ms vs prediction median ${servedMs.toFixed(1)} ms`,
    );

    const metrics = await (await fetch(`${server.metricsUrl}/metrics`)).text();
    const rejected = Number(
      /inference_rejections_total\{reason="queue_full"\} (\d+)/.exec(metrics)?.[1] ?? 0,
    );
    assert.equal(rejected, shed.length);
  });

  it('serves normally once the burst is over', async () => {
    const res = await fetch(`${server.url}/test`);
    assert.equal(res.status, 200);
  });
});
