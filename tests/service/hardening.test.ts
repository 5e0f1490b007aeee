import assert from 'node:assert/strict';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { bundledTestPhoto, bytes, makeImage } from '../helpers/images';
import { rawRequest } from '../helpers/raw-http';
import { startServer, type RunningServer } from '../../tools/shared/service-process';

// What an attacker or a careless client can send, each case a defect found against the service (issue 12):
// every one is answered with the right status at once, the probes keep answering, and no single request
// moves the process's memory far. Times are generous bounds (a shared, busy machine), never targets.

/** Peak and current resident memory of a process, from Linux's /proc (undefined elsewhere). */
function memory(pid: number): { peakMb: number; rssMb: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1]);
    return { peakMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 };
  } catch {
    return undefined;
  }
}

/** Liveness as a kubelet sees it: answered within a second, or not at all. */
async function healthzWithinOneSecond(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

const infer = (url: string, model: string, body: string, timeoutMs = 10_000) =>
  fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  }).then(async (r) => ({ status: r.status, text: await r.text(), headers: r.headers }));

async function modelName(url: string): Promise<string> {
  return ((await (await fetch(`${url}/test`)).json()) as { model: { name: string } }).model.name;
}

describe('hardening: inputs and bodies', () => {
  let server: RunningServer;
  let model: string;
  before(async () => {
    server = await startServer({
      env: {
        // the default MAX_UPLOAD_BYTES (10 MiB): the size the defects were found at
        BODY_TIMEOUT_MS: '1500',
        MAX_INFLIGHT_UPLOAD_BYTES: '24000000',
      },
    });
    model = await modelName(server.url);
  });
  after(async () => {
    await server.stop();
  });

  it('checks base64 in linear time: a long run of whitespace before a bad character is refused at once (item 1)', async () => {
    // The old pattern backtracked quadratically on exactly this shape: 120 kB blocked the event loop 25 s.
    const element = ' '.repeat(200_000) + '!';
    const body = JSON.stringify({
      inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [element] }],
    });
    const started = performance.now();
    const pending = infer(server.url, model, body, 5000);
    await new Promise((r) => setTimeout(r, 30));
    const alive = await healthzWithinOneSecond(server.url);
    const res = await pending;
    const ms = performance.now() - started;
    assert.ok(alive, '/healthz answered within 1 s while the request was checked');
    assert.equal(res.status, 400, res.text.slice(0, 300));
    assert.match(res.text, /base64/);
    assert.ok(ms < 2000, `answered after ${ms.toFixed(0)} ms`);
  });

  it('refuses an FP32 tensor far larger than the model can use before parsing it, and memory stays put (item 2)', async () => {
    // [1, 1825, 1825, 3] of zeros as flat JSON: just under 20 MB, 10 million numbers.
    const n = 1825 * 1825 * 3;
    const body = `{"inputs":[{"name":"input","shape":[1,1825,1825,3],"datatype":"FP32","data":[${'0,'.repeat(n - 1)}0]}]}`;
    const before = memory(server.proc.pid!);
    const started = performance.now();
    const pending = infer(server.url, model, body, 10_000);
    await new Promise((r) => setTimeout(r, 30));
    const alive = await healthzWithinOneSecond(server.url);
    const res = await pending;
    const ms = performance.now() - started;
    const afterwards = memory(server.proc.pid!);
    assert.ok(alive, '/healthz answered within 1 s meanwhile');
    assert.equal(res.status, 413, res.text.slice(0, 300));
    assert.match(res.text, /larger than|at most/i);
    assert.ok(ms < 3000, `answered after ${ms.toFixed(0)} ms`);
    if (before && afterwards) {
      const rise = afterwards.peakMb - before.peakMb;
      assert.ok(
        rise < 150,
        `peak RSS rose ${rise.toFixed(0)} MB (${before.peakMb.toFixed(0)} → ${afterwards.peakMb.toFixed(0)})`,
      );
    }
  });

  it('refuses an FP32 tensor within the body limit but over the element budget before parsing it (item 2)', async () => {
    // 1000 x 1000: one megapixel, 3 million values in 6 MB, far more than a 160 or 224 px model takes.
    const n = 1000 * 1000 * 3;
    const body = `{"inputs":[{"name":"input","shape":[1,1000,1000,3],"datatype":"FP32","data":[${'1,'.repeat(n - 1)}1]}]}`;
    const res = await infer(server.url, model, body);
    assert.equal(res.status, 413, res.text.slice(0, 300));
    assert.match(res.text, /values|elements/);
    assert.ok(await healthzWithinOneSecond(server.url));
  });

  it('answers a declared body over the limit with 413 before reading it (item 3)', async () => {
    for (const type of ['multipart/form-data; boundary=x', 'image/jpeg']) {
      const ex = rawRequest(
        server.port,
        `POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: ${type}\r\nContent-Length: 1000000000000\r\n\r\n`,
        5000,
      );
      ex.socket.write(Buffer.alloc(64 * 1024));
      const first = await Promise.race([ex.firstAnswer, ex.closed]);
      assert.match(first.text, /^HTTP\/1\.1 413/, `${type}: ${first.text.slice(0, 200)}`);
      assert.ok(first.ms < 1000, `${type}: 413 after ${first.ms.toFixed(0)} ms`);
      const end = await ex.closed;
      assert.ok(end.closedByServer, `${type}: the server closed the connection instead of reading 1 TB`);
    }
  });

  it('gives every body a read deadline: a chunked body at one byte a second gets 408 and is closed (item 3)', async () => {
    const ex = rawRequest(
      server.port,
      'POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n',
      8000,
    );
    const drip = setInterval(() => ex.socket.writable && ex.socket.write('1\r\nx\r\n'), 1000);
    const end = await ex.closed;
    clearInterval(drip);
    assert.ok(end.closedByServer, `still open after ${end.ms.toFixed(0)} ms`);
    assert.match(end.text, /^HTTP\/1\.1 408/, end.text.slice(0, 200));
    assert.match(end.text, /seconds/);
    assert.ok(end.ms < 5000, `closed after ${end.ms.toFixed(0)} ms (deadline 1.5 s)`);
  });

  it('bounds the upload bytes in flight across clients: the next one is refused at once, the stalled ones time out (item 3)', async () => {
    const head =
      'POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: 10000000\r\n\r\n';
    const stalled = [0, 1].map(() => {
      const ex = rawRequest(server.port, head, 8000);
      ex.socket.write(Buffer.alloc(200_000, 0xff));
      return ex;
    });
    await new Promise((r) => setTimeout(r, 200));
    const third = rawRequest(server.port, head, 8000);
    third.socket.write(Buffer.alloc(200_000, 0xff));
    const refused = await Promise.race([third.firstAnswer, third.closed]);
    assert.match(refused.text, /^HTTP\/1\.1 503/, refused.text.slice(0, 300));
    assert.match(refused.text, /uploads/i);
    assert.match(refused.text, /retry-after: \d+/i);
    assert.ok(refused.ms < 1000, `503 after ${refused.ms.toFixed(0)} ms`);
    for (const ex of stalled) {
      const end = await ex.closed;
      assert.match(end.text, /^HTTP\/1\.1 408/, end.text.slice(0, 200));
      assert.ok(end.closedByServer && end.ms < 5000, `closed after ${end.ms.toFixed(0)} ms`);
    }
    third.socket.destroy();
    // Their budget is back: a whole photo goes through.
    const ok = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': 'image/jpeg' },
      body: bytes(bundledTestPhoto()),
    });
    assert.equal(ok.status, 200, await ok.text());
  });

  it('answers bad percent-encoding in a route with 400 and logs no error (item 6)', async () => {
    for (const path of ['/v2/models/%ZZ', '/v2/models/%ZZ/ready', '/v2/models/x/versions/%E0%A4%A']) {
      const res = await fetch(`${server.url}${path}`);
      const text = await res.text();
      assert.equal(res.status, 400, `${path}: ${text}`);
      assert.match(text, /encod/i, path);
      assert.doesNotMatch(text, /\bat .+:\d+:\d+/, 'no stack trace');
    }
    const infer = await fetch(`${server.url}/v2/models/%ZZ/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"inputs":[]}',
    });
    assert.equal(infer.status, 400);
    await new Promise((r) => setTimeout(r, 100));
    const errors = server.logs.filter(
      (l) => Number(l.level) >= 50 && String((l.req as { url?: string } | undefined)?.url).includes('%'),
    );
    assert.deepEqual(errors, [], 'no error-level log lines');
  });

  it('serves /metrics on its own port, not on the public one (item 10)', async () => {
    const publicMetrics = await fetch(`${server.url}/metrics`);
    assert.equal(publicMetrics.status, 404);
    const metrics = await fetch(`${server.metricsUrl}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /model_info\{/);
    assert.equal(
      (await fetch(`${server.metricsUrl}/test`)).status,
      404,
      'the metrics port serves nothing else',
    );
  });

  it('stayed up throughout', async () => {
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    assert.equal(server.proc.exitCode, null);
  });
});

describe('hardening: admission counts what a request really carries', () => {
  let server: RunningServer;
  let model: string;
  let tiny: string;
  const rejections = async () => {
    const text = await (await fetch(`${server.metricsUrl}/metrics`)).text();
    return Number(/inference_rejections_total\{reason="queue_full"\} (\d+)/.exec(text)?.[1] ?? 0);
  };
  before(async () => {
    server = await startServer({ env: { QUEUE_MAX_WAIT_MS: '300', OIP_MAX_IMAGES: '64' } });
    model = await modelName(server.url);
    tiny = (await makeImage('jpeg', 32, 32, 4)).toString('base64');
  });
  after(async () => {
    await server.stop();
  });

  it('counts every image of a BYTES tensor shaped [1, K], so it cannot crowd others out (item 4)', async () => {
    const k = 60;
    const body = JSON.stringify({
      inputs: [{ name: 'image', shape: [1, k], datatype: 'BYTES', data: Array(k).fill(tiny) }],
    });
    const big = infer(server.url, model, body, 20_000);
    await new Promise((r) => setTimeout(r, 100));
    const other = await fetch(`${server.url}/test`);
    const res = await big;
    // 60 images cannot start within 300 ms on one worker: refused at once, and the queue stays free for others.
    assert.equal(res.status, 503, res.text.slice(0, 300));
    assert.equal(other.status, 200, 'a one-photo request from another client is served');
  });

  it('refuses more images than one request may carry with 413, before admission (items 4, 5)', async () => {
    const body = JSON.stringify({
      inputs: [{ name: 'image', shape: [1, 65], datatype: 'BYTES', data: Array(65).fill(tiny) }],
    });
    const before = await rejections();
    const res = await infer(server.url, model, body);
    assert.equal(res.status, 413, res.text.slice(0, 300));
    assert.match(res.text, /at most 64/);
    assert.equal(await rejections(), before, 'not counted as overload');
  });

  it('answers a request that can never succeed with 400, not 503, and does not count it as overload (item 5)', async () => {
    const before = await rejections();
    for (const input of [
      { name: 'input', shape: [100000], datatype: 'FP32', data: [1] },
      { name: 'input', shape: [100000, 160, 160, 3], datatype: 'FP32', data: [1] },
      { name: 'image', shape: [100000], datatype: 'BYTES', data: [tiny] },
    ]) {
      const res = await infer(server.url, model, JSON.stringify({ inputs: [input] }));
      assert.ok(
        res.status === 400 || res.status === 413,
        `${JSON.stringify(input.shape)}: ${res.status} ${res.text}`,
      );
      assert.equal(res.headers.get('retry-after'), null);
    }
    assert.equal(await rejections(), before, 'inference_rejections_total{reason="queue_full"} unchanged');
  });
});
