import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { bundledTestPhoto, bytes, makeImage } from '../helpers/images';
import { startServer, type RunningServer } from '../../tools/shared/service-process';
import { FOOD11_DISPLAY_NAMES } from '../helpers/food11';
import { defaultModelDir, readMetadata } from '../../model/src/index';

// The service over HTTP with the real (shipped) model on the wasm backend.

interface PredictionBody {
  label: string;
  confidence: number;
  top: { label: string; confidence: number }[];
  timings: { decodeMs: number; inferenceMs: number; totalMs: number };
  model: { name: string; version: string };
}

function assertPrediction(body: PredictionBody): void {
  assert.ok(FOOD11_DISPLAY_NAMES.includes(body.label), `label ${body.label}`);
  assert.ok(body.confidence > 0 && body.confidence <= 1);
  assert.equal(body.top.length, 3);
  assert.equal(body.top[0]!.label, body.label);
  assert.equal(body.top[0]!.confidence, body.confidence);
  for (let i = 1; i < 3; i++) assert.ok(body.top[i - 1]!.confidence >= body.top[i]!.confidence);
  assert.equal(new Set(body.top.map((t) => t.label)).size, 3);
  for (const key of ['decodeMs', 'inferenceMs', 'totalMs'] as const) assert.ok(body.timings[key] >= 0);
  assert.ok(body.timings.totalMs >= body.timings.inferenceMs);
  assert.ok(body.model.name.length > 0 && body.model.version.length > 0);
}

function form(photo: Buffer, field = 'file', type = 'image/jpeg'): FormData {
  const f = new FormData();
  f.append(field, new Blob([bytes(photo)], { type }), 'photo');
  return f;
}

describe('service over HTTP', () => {
  let server: RunningServer;
  let modelName: string;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('answers liveness and readiness, with a request id and security headers', async () => {
    const live = await fetch(`${server.url}/healthz`, { headers: { 'X-Request-Id': 'probe-123' } });
    assert.equal(live.status, 200);
    assert.equal(live.headers.get('x-request-id'), 'probe-123');
    assert.equal(live.headers.get('x-content-type-options'), 'nosniff');
    assert.match(live.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(live.headers.get('x-powered-by'), null);
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), {
      ready: true,
      modelLoaded: true,
      draining: false,
      labelsStore: 'off',
    });
    // Without a usable id from the client, the server makes one.
    const other = await fetch(`${server.url}/healthz`);
    assert.match(other.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('logs which TF.js backend, which network and which view run', async () => {
    const ready = server.logs.find((l) => String(l.msg).startsWith('ready:'));
    assert.ok(ready, 'a ready log line');
    assert.equal(ready.tfjsBackend, 'wasm');
    assert.match(String(ready.architecture), /^mobilenet_v2_/);
    assert.equal(ready.engine, 'fused');
    assert.deepEqual(ready.view, (await readMetadata(defaultModelDir())).view);
  });

  it('serves the upload page, which works without JavaScript', async () => {
    const res = await fetch(`${server.url}/`, { headers: { Accept: 'text/html' } });
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /<form[^>]+method="post"[^>]+action="\/predict"[^>]+enctype="multipart\/form-data"/);
    assert.match(html, /<input[^>]+type="file"[^>]+name="file"/);
    for (const name of FOOD11_DISPLAY_NAMES) assert.ok(html.includes(name), name);
    for (const asset of ['/static/upload.js', '/static/style.css']) {
      assert.ok(html.includes(asset));
      const a = await fetch(`${server.url}${asset}`);
      assert.equal(a.status, 200, asset);
    }
  });

  it('classifies a multipart upload as JSON', async () => {
    const res = await fetch(`${server.url}/predict`, { method: 'POST', body: form(bundledTestPhoto()) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as PredictionBody;
    assertPrediction(body);
    modelName = body.model.name;
  });

  it('classifies a raw image body, the same photo the same way as /test', async () => {
    const raw = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': 'image/jpeg' },
      body: bytes(bundledTestPhoto()),
    });
    assert.equal(raw.status, 200);
    const a = (await raw.json()) as PredictionBody;
    const test = await fetch(`${server.url}/test`);
    assert.equal(test.status, 200);
    const b = (await test.json()) as PredictionBody;
    assertPrediction(b);
    assert.deepEqual(a.top, b.top);
  });

  for (const format of ['png', 'webp', 'gif'] as const) {
    it(`accepts ${format.toUpperCase()}`, async () => {
      const photo = await makeImage(format, 300, 200, 3);
      const res = await fetch(`${server.url}/predict`, {
        method: 'POST',
        body: form(photo, 'file', `image/${format}`),
      });
      assert.equal(res.status, 200);
      assertPrediction((await res.json()) as PredictionBody);
    });
  }

  it('answers a browser with the result page: photo, class, confidence, top 3, timings', async () => {
    const res = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { Accept: 'text/html,application/xhtml+xml' },
      body: form(bundledTestPhoto()),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    const json = (await (await fetch(`${server.url}/test`)).json()) as PredictionBody;
    assert.ok(html.includes(`<h1 id="label">${json.label.replace('/', '/')}</h1>`));
    assert.match(html, /<img id="photo" src="data:image\/jpeg;base64,/);
    assert.equal((html.match(/<meter /g) ?? []).length, 3);
    for (const timing of ['decode', 'inference', 'total']) assert.ok(html.includes(`<td>${timing}</td>`));
  });

  it('speaks the Open Inference Protocol v2', async () => {
    const j = async (path: string, init?: RequestInit) => {
      const res = await fetch(`${server.url}${path}`, init);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    assert.deepEqual(await j('/v2/health/live'), { status: 200, body: { live: true } });
    assert.deepEqual(await j('/v2/health/ready'), { status: 200, body: { ready: true } });
    assert.deepEqual(await j(`/v2/models/${modelName}/ready`), {
      status: 200,
      body: { name: modelName, ready: true },
    });
    const meta = await j(`/v2/models/${modelName}`);
    assert.equal(meta.status, 200);
    const inputs = meta.body.inputs as { name: string; datatype: string; shape: number[] }[];
    const fp32 = inputs.find((i) => i.datatype === 'FP32')!;
    const size = fp32.shape[1]!;
    assert.deepEqual(fp32.shape, [-1, size, size, 3]);
    assert.equal((await j('/v2/models/nope')).status, 404);
    const version = (meta.body.versions as string[])[0]!;
    assert.equal((await j(`/v2/models/${modelName}/versions/${version}/ready`)).status, 200);
    assert.equal((await j(`/v2/models/${modelName}/versions/not-${version}`)).status, 404);

    const photo = bundledTestPhoto();
    const other = await makeImage('png', 200, 200, 9);
    const infer = (body: unknown) =>
      j(`/v2/models/${modelName}/infer`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    const bytes = await infer({
      id: 'r1',
      inputs: [
        {
          name: 'image',
          shape: [2],
          datatype: 'BYTES',
          data: [photo.toString('base64'), other.toString('base64')],
        },
      ],
    });
    assert.equal(bytes.status, 200, JSON.stringify(bytes.body));
    assert.equal(bytes.body.model_name, modelName);
    assert.equal(bytes.body.id, 'r1');
    const outputs = bytes.body.outputs as { name: string; shape: number[]; data: (number | string)[] }[];
    const probs = outputs.find((o) => o.name === 'probabilities')!;
    assert.deepEqual(probs.shape, [2, 11]);
    for (const k of [0, 1]) {
      const sum = (probs.data.slice(k * 11, k * 11 + 11) as number[]).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-3, `sum ${sum}`);
    }
    const labels = outputs.find((o) => o.name === 'label')!;
    const viaPredict = (await (await fetch(`${server.url}/test`)).json()) as PredictionBody;
    assert.equal(labels.data[0], viaPredict.label);

    // FP32 at the model's size, and at another size (resized by the server), both of the same photo.
    const pixels = async (side: number) =>
      Array.from(await sharp(photo).resize(side, side, { fit: 'cover' }).removeAlpha().raw().toBuffer());
    for (const side of [size, 64]) {
      const res = await infer({
        inputs: [{ name: 'input', shape: [1, side, side, 3], datatype: 'FP32', data: await pixels(side) }],
        outputs: [{ name: 'probabilities' }],
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const out = res.body.outputs as { name: string; shape: number[]; data: number[] }[];
      assert.equal(out.length, 1);
      assert.deepEqual(out[0]!.shape, [1, 11]);
      assert.ok(Math.abs(out[0]!.data.reduce((a, b) => a + b, 0) - 1) < 1e-3);
    }
  });

  it('gives a photo the same probabilities through /predict and /v2, and counts both as predictions', async () => {
    const predictionsTotal = async () => {
      const text = await (await fetch(`${server.metricsUrl}/metrics`)).text();
      return [...text.matchAll(/^predictions_total\{label="[^"]+"\} (\d+)$/gm)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    };
    const photo = bundledTestPhoto();
    const before = await predictionsTotal();
    const viaPredict = (await (
      await fetch(`${server.url}/predict`, {
        method: 'POST',
        headers: { 'Content-Type': 'image/jpeg' },
        body: bytes(photo),
      })
    ).json()) as PredictionBody;
    const res = await fetch(`${server.url}/v2/models/${modelName}/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        inputs: [
          { name: 'image', shape: [3], datatype: 'BYTES', data: Array(3).fill(photo.toString('base64')) },
        ],
        outputs: [{ name: 'probabilities' }],
      }),
    });
    assert.equal(res.status, 200);
    const [probs] = (
      (await res.json()) as { outputs: { parameters: { labels: string[] }; data: number[] }[] }
    ).outputs;
    for (const { label, confidence } of viaPredict.top) {
      const index = probs!.parameters.labels.indexOf(label);
      for (const k of [0, 1, 2])
        assert.equal(Math.round(probs!.data[k * 11 + index]! * 1e4) / 1e4, confidence);
    }
    assert.equal((await predictionsTotal()) - before, 1 + 3);
  });

  it('exposes the documented metrics', async () => {
    const res = await fetch(`${server.metricsUrl}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    for (const name of [
      'http_request_duration_seconds_bucket',
      'inference_duration_seconds_count',
      'inference_queue_depth',
      'inference_in_flight',
      'predictions_total',
      'model_info',
      'inference_worker_tensors',
      'process_resident_memory_bytes',
    ]) {
      assert.ok(text.includes(name), name);
    }
    assert.match(
      text,
      /http_request_duration_seconds_count\{method="POST",route="\/predict",status_code="200"\} \d+/,
    );
    assert.match(
      text,
      /model_info\{name="[^"]+",version="[^"]+",architecture="[^"]+",tfjs_backend="wasm"\} 1/,
    );
    const count = Number(/inference_duration_seconds_count (\d+)/.exec(text)?.[1]);
    assert.ok(count >= 8, `inference count ${count}`);
  });

  it('answers an unknown path with 404 in JSON, and in HTML for a browser', async () => {
    const json = await fetch(`${server.url}/nope`);
    assert.equal(json.status, 404);
    assert.equal(((await json.json()) as { code: string }).code, 'not_found');
    const html = await fetch(`${server.url}/nope`, { headers: { Accept: 'text/html' } });
    assert.equal(html.status, 404);
    assert.match(await html.text(), /<p class="error" id="error">/);
  });
});

describe('service with the pure-JS decoder (IMAGE_DECODER=jimp)', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({ env: { IMAGE_DECODER: 'jimp' } });
  });
  after(async () => {
    await server.stop();
  });

  it('classifies a photo, and refuses a corrupt one with 422', async () => {
    const res = await fetch(`${server.url}/predict`, { method: 'POST', body: form(bundledTestPhoto()) });
    assert.equal(res.status, 200);
    assertPrediction((await res.json()) as PredictionBody);
    const bad = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': 'image/jpeg' },
      body: bytes(bundledTestPhoto().subarray(0, 2000)),
    });
    assert.equal(bad.status, 422);
  });

  it('decodes off the event loop: probes answer while a big photo is decoded', async () => {
    const big = await makeImage('jpeg', 3000, 2000, 5);
    const started = performance.now();
    const prediction = fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': 'image/jpeg' },
      body: bytes(big),
    }).then(async (r) => ({ status: r.status, ms: performance.now() - started }));
    await new Promise((r) => setTimeout(r, 50));
    const probeMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
      probeMs.push(performance.now() - t);
    }
    const done = await prediction;
    assert.equal(done.status, 200);
    const worstProbe = Math.max(...probeMs);
    assert.ok(
      worstProbe * 3 < done.ms,
      `slowest probe ${worstProbe.toFixed(1)} ms, prediction ${done.ms.toFixed(1)} ms`,
    );
  });
});

describe('service with micro-batching (BATCH_MAX_SIZE=4)', () => {
  it('answers concurrent requests from shared batches as it answers them alone', async () => {
    const server = await startServer({ env: { BATCH_MAX_SIZE: '4', BATCH_MAX_WAIT_MS: '20' } });
    try {
      const alone = (await (await fetch(`${server.url}/test`)).json()) as PredictionBody;
      const together = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const res = await fetch(`${server.url}/test`);
          assert.equal(res.status, 200);
          return (await res.json()) as PredictionBody;
        }),
      );
      for (const p of together) {
        assert.equal(p.label, alone.label);
        assert.ok(Math.abs(p.confidence - alone.confidence) < 1e-3);
      }
      const metrics = await (await fetch(`${server.metricsUrl}/metrics`)).text();
      assert.ok(Number(/inference_duration_seconds_count (\d+)/.exec(metrics)?.[1]) >= 9);
    } finally {
      await server.stop();
    }
  });
});
