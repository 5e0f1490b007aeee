import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { bundledTestPhoto } from '../helpers/images';
import { startServer } from '../../tools/shared/service-process';

// SIGTERM: readiness turns false, the listener stops accepting, requests in flight finish, and the process
// exits before its deadline.

/**
 * An upload that is still arriving when SIGTERM comes, with a readiness probe pipelined behind it on the same
 * connection: the connection is busy, so draining keeps it, and the probe is read after draining began.
 */
function slowUploadThenProbe(port: number, photo: Buffer) {
  const socket = net.connect(port, '127.0.0.1');
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (data += d));
  const ended = new Promise<string>((resolve, reject) => {
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
  const half = Math.floor(photo.length / 2);
  socket.write(
    `POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: ${photo.length}\r\n\r\n`,
  );
  socket.write(photo.subarray(0, half));
  return {
    finish() {
      socket.write(photo.subarray(half));
      socket.write('GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      return ended;
    },
  };
}

async function inFlight(url: string): Promise<number> {
  return (await engineLoad(url)).images;
}

/** Images queued or being classified, and how long they take at the model time measured so far. */
async function engineLoad(url: string): Promise<{ images: number; workMs: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  const images = metric('inference_queue_depth') + metric('inference_in_flight');
  const count = metric('inference_duration_seconds_count');
  const msPerImage = count > 0 ? (metric('inference_duration_seconds_sum') / count) * 1000 : 10;
  return { images, workMs: images * msPerImage };
}

describe('graceful shutdown', () => {
  it('drains in-flight requests, flips readiness and exits 0 before the deadline', async () => {
    const timeoutMs = 20_000;
    const server = await startServer({ env: { WORKERS: '1', SHUTDOWN_TIMEOUT_MS: String(timeoutMs) } });
    const requests = Array.from({ length: 8 }, () =>
      fetch(`${server.url}/test`).then(async (r) => ({ status: r.status, body: await r.text() })),
    );
    const upload = slowUploadThenProbe(server.port, bundledTestPhoto());
    // Wait until the requests are really inside the server (queued or running), then ask it to stop.
    const until = Date.now() + 10_000;
    while ((await inFlight(server.metricsUrl)) < 4 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 5));
    const signalled = performance.now();
    server.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 50));

    const refused = await fetch(`${server.url}/healthz`).then(
      () => false,
      () => true,
    );
    const raw = await upload.finish();
    const answers = await Promise.all(requests);
    const code = await server.exited;
    const tookMs = performance.now() - signalled;

    assert.ok(refused, 'a new connection is refused while draining');
    for (const a of answers) assert.equal(a.status, 200, a.body);
    const [firstResponse, secondResponse] = raw.split(/(?=HTTP\/1\.1 )/);
    assert.match(firstResponse!, /^HTTP\/1\.1 200/);
    assert.match(secondResponse!, /^HTTP\/1\.1 503/);
    assert.match(secondResponse!, /"ready":false/);
    assert.match(secondResponse!, /"draining":true/);
    assert.equal(code, 0);
    assert.ok(tookMs < timeoutMs, `exited after ${tookMs.toFixed(0)} ms`);
    const messages = server.logs.map((l) => String(l.msg));
    assert.ok(messages.some((m) => m.startsWith('draining')));
    assert.ok(messages.some((m) => m.startsWith('drained')));
  });

  it('exits with code 1 at the deadline when requests cannot finish in time', async () => {
    const timeoutMs = 1000;
    const server = await startServer({
      env: { WORKERS: '1', SHUTDOWN_TIMEOUT_MS: String(timeoutMs), QUEUE_MAX_WAIT_MS: '600000' },
    });
    // Far more work than fits before the deadline, whatever this machine's speed: SIGTERM waits until the queue
    // holds twice the deadline's worth of model time (model v3 classifies /test in about 10 ms here).
    const requests = Array.from({ length: 600 }, () =>
      fetch(`${server.url}/test`).then(
        (r) => r.status,
        () => 'cut',
      ),
    );
    const until = Date.now() + 10_000;
    while ((await engineLoad(server.metricsUrl)).workMs < 2 * timeoutMs && Date.now() < until)
      await new Promise((r) => setTimeout(r, 5));
    const signalled = performance.now();
    server.proc.kill('SIGTERM');
    const code = await server.exited;
    const tookMs = performance.now() - signalled;
    const outcomes = await Promise.all(requests);
    assert.equal(code, 1);
    assert.ok(outcomes.includes('cut'), 'unfinished requests were cut off');
    // The deadline is an upper bound: the process ends before it, plus the time to notice the exit.
    assert.ok(tookMs < timeoutMs + 2000, `exited after ${tookMs.toFixed(0)} ms`);
    assert.ok(server.logs.some((l) => String(l.msg).startsWith('drain deadline reached')));
  });

  it('does not let a stalled upload hold the drain: it is answered and closed, and the process exits 0 (item 7)', async () => {
    const timeoutMs = 10_000;
    // The body deadline is far away, so only the drain can free the stalled upload in time.
    const server = await startServer({
      env: { SHUTDOWN_TIMEOUT_MS: String(timeoutMs), BODY_TIMEOUT_MS: '60000' },
    });
    const photo = bundledTestPhoto();
    const socket = net.connect(server.port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(
      `POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: ${photo.length}\r\n\r\n`,
    );
    socket.write(photo.subarray(0, 1000));
    await new Promise((r) => setTimeout(r, 300));
    const signalled = performance.now();
    server.proc.kill('SIGTERM');
    const code = await server.exited;
    const tookMs = performance.now() - signalled;
    await closed;
    assert.equal(code, 0, server.logs.map((l) => String(l.msg)).join('; '));
    assert.ok(tookMs < timeoutMs / 2, `exited after ${tookMs.toFixed(0)} ms (deadline ${timeoutMs} ms)`);
    assert.match(data, /^HTTP\/1\.1 (408|503)/, data.slice(0, 200));
  });
});
