import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DecodeError } from '../../model/src/preprocess';
import {
  Engine,
  InferenceError,
  NotReadyError,
  OverloadedError,
  type EngineOptions,
} from '../../service/src/inference/engine';

// The engine's queueing logic, against a worker that takes a known time per image (fixtures/timed-worker.ts).

const workerFile = path.join(__dirname, 'fixtures', 'timed-worker.ts');

function engine(overrides: Partial<EngineOptions> = {}): Engine {
  return new Engine({
    workers: 1,
    init: { backend: 'cpu', warmupBatchSizes: [1] },
    queueMaxWaitMs: 10_000,
    batchMaxSize: 1,
    batchMaxWaitMs: 0,
    workerFile,
    ...overrides,
  });
}

const image = (first: number) => {
  const img = new Uint8Array(4 * 4 * 3);
  img[0] = first;
  return img;
};

describe('engine', () => {
  it('refuses work before the workers are ready', async () => {
    const e = engine();
    await assert.rejects(e.classify([image(1)]), NotReadyError);
    await e.start();
    await e.close();
  });

  it('answers every caller with its own image, through a pool of two workers', async () => {
    const e = engine({ workers: 2 });
    const model = await e.start();
    assert.equal(model.view.size, 4);
    const firsts = Array.from({ length: 12 }, (_, i) => i + 1);
    const results = await Promise.all(firsts.map((f) => e.classify([image(f)])));
    results.forEach(([r], i) => assert.ok(Math.abs(r!.probabilities[0]! - firsts[i]! / 1000) < 1e-6));
    assert.equal(e.stats.queued, 0);
    assert.equal(e.stats.inFlight, 0);
    await e.close();
  });

  it('rejects an image of the wrong size without queueing it', async () => {
    const e = engine();
    await e.start();
    await assert.rejects(e.classify([new Uint8Array(10)]), InferenceError);
    await e.close();
  });

  it('sheds a request whose expected wait exceeds the limit, at once, with a retry hint', async () => {
    const rejected: string[] = [];
    // 40 ms per image, one worker, 200 ms allowed: about five images can wait, the rest must be refused.
    const e = engine({ queueMaxWaitMs: 200, observer: { rejected: (reason) => rejected.push(reason) } });
    await e.start();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => e.classify([image(i + 1)])),
    );
    const refused = outcomes.filter((o) => o.status === 'rejected');
    const served = outcomes.filter((o) => o.status === 'fulfilled');
    assert.ok(served.length >= 3 && served.length <= 8, `served ${served.length} of 20`);
    assert.equal(refused.length, 20 - served.length);
    for (const o of refused) {
      const err = (o as PromiseRejectedResult).reason as OverloadedError;
      assert.ok(err instanceof OverloadedError);
      assert.ok(err.retryAfterSeconds >= 1);
    }
    assert.equal(rejected.length, refused.length);
    assert.ok(rejected.every((r) => r === 'queue_full'));
    // Once the queue has drained, a request is served again.
    const [r] = await e.classify([image(99)]);
    assert.ok(r);
    await e.close();
  });

  it('counts admitted images still being prepared as waiting, until they are queued or released', async () => {
    const e = engine({ queueMaxWaitMs: 200 });
    await e.start();
    // 40 ms per image, one idle worker: four admissions fit under 200 ms, the fifth does not.
    const held = [e.admit(), e.admit(), e.admit(), e.admit()];
    assert.throws(() => e.admit(), OverloadedError);
    held[0]!.release();
    held[0]!.release(); // idempotent: gives back one place, not two
    const fifth = e.admit();
    assert.throws(() => e.admit(), OverloadedError);
    // An admission handed to classify() is used, not checked again.
    const [r] = await e.classify([image(9)], fifth);
    assert.ok(r);
    for (const a of held) a.release();
    assert.equal(e.expectedWaitMs(1), 0);
    await e.close();
  });

  it('does not let an admission for one image carry many (issue 12, item 4)', async () => {
    const rejected: string[] = [];
    const e = engine({ queueMaxWaitMs: 200, observer: { rejected: (reason) => rejected.push(reason) } });
    await e.start();
    // 40 ms per image: twenty images expect 800 ms, beyond 200 ms, whatever the admission said.
    const one = e.admit(1);
    await assert.rejects(
      e.classify(
        Array.from({ length: 20 }, (_, i) => image(i + 1)),
        one,
      ),
      OverloadedError,
    );
    assert.deepEqual(rejected, ['queue_full']);
    assert.equal(e.stats.queued, 0, 'nothing was queued');
    assert.equal(e.expectedWaitMs(1), 0, 'the admission was given back');
    await e.close();
  });

  it('gathers queued images into micro-batches up to the maximum', async () => {
    const e = engine({ batchMaxSize: 4, batchMaxWaitMs: 50 });
    await e.start();
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => e.classify([image(i + 1)])));
    assert.deepEqual(
      results.map(([r]) => r!.batchSize),
      [4, 4, 4, 4],
    );
    // Without batching each image runs alone.
    const single = engine();
    await single.start();
    const alone = await Promise.all(Array.from({ length: 3 }, (_, i) => single.classify([image(i + 1)])));
    assert.deepEqual(
      alone.map(([r]) => r!.batchSize),
      [1, 1, 1],
    );
    await Promise.all([e.close(), single.close()]);
  });

  it('never holds back a request that arrives alone, whatever the batching wait allows', async () => {
    // A wait of 5 s that a lone image would pay in full if the engine waited for a batch to fill.
    const e = engine({ batchMaxSize: 8, batchMaxWaitMs: 5000 });
    await e.start();
    const [alone] = await e.classify([image(1)]);
    assert.equal(alone!.batchSize, 1);
    assert.ok(alone!.queueMs < 2500, `queued ${alone!.queueMs} ms`);
    await e.close();
  });

  it('waits for images admitted and still decoding to join the batch, up to the wait bound', async () => {
    const e = engine({ batchMaxSize: 4, batchMaxWaitMs: 5000 });
    await e.start();
    // The second request is admitted and "decoding" when the first image queues: they share a pass.
    const decoding = e.admit(1);
    const first = e.classify([image(1)]);
    await new Promise((r) => setTimeout(r, 50));
    const second = e.classify([image(2)], decoding);
    const [[a], [b]] = await Promise.all([first, second]);
    assert.deepEqual([a!.batchSize, b!.batchSize], [2, 2]);
    assert.ok(Math.abs(b!.probabilities[0]! - 0.002) < 1e-6, 'each caller gets its own answer');

    // One that never comes (its decode failed) holds the batch no longer than the bound.
    const bounded = engine({ batchMaxSize: 4, batchMaxWaitMs: 300 });
    await bounded.start();
    const lost = bounded.admit(1);
    const [late] = await bounded.classify([image(3)]);
    lost.release();
    assert.equal(late!.batchSize, 1);
    assert.ok(late!.queueMs >= 250, `waited ${late!.queueMs} ms for the bound of 300 ms`);
    await Promise.all([e.close(), bounded.close()]);
  });

  it('shares queued images between free workers instead of batching them on one', async () => {
    const e = engine({ workers: 2, batchMaxSize: 4, batchMaxWaitMs: 50 });
    await e.start();
    const results = await Promise.all([e.classify([image(1)]), e.classify([image(2)])]);
    assert.deepEqual(
      results.map(([r]) => r!.batchSize),
      [1, 1],
    );
    // More than the free workers can take one each: shared out, up to the maximum each.
    const many = await Promise.all(Array.from({ length: 6 }, (_, i) => e.classify([image(i + 1)])));
    assert.deepEqual(
      many.map(([r]) => r!.batchSize),
      [3, 3, 3, 3, 3, 3],
    );
    await e.close();
  });

  it('fails the requests of a crashed worker, replaces the worker, and serves again', async () => {
    const logs: string[] = [];
    const e = engine({ observer: { log: (_level, msg) => logs.push(msg) } });
    await e.start();
    await assert.rejects(e.classify([image(255)]), InferenceError);
    const until = Date.now() + 20_000;
    while (!e.ready && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const [r] = await e.classify([image(5)]);
    assert.ok(Math.abs(r!.probabilities[0]! - 0.005) < 1e-6);
    assert.ok(logs.includes('replacing inference worker'));
    await e.close();
  });

  it('passes a worker-side failure to its caller only', async () => {
    const e = engine({ workers: 1 });
    await e.start();
    const [bad, good] = await Promise.allSettled([e.classify([image(254)]), e.classify([image(3)])]);
    assert.equal(bad.status, 'rejected');
    assert.equal(good.status, 'fulfilled');
    await e.close();
  });

  it('rejects only the image a worker could not decode, with its DecodeError', async () => {
    const e = engine({ batchMaxSize: 2, batchMaxWaitMs: 50 });
    await e.start();
    const photo = (first: number) =>
      e.classifyPhoto(Uint8Array.from([first, 1, 2]), { maxPixels: 10, decoder: 'jimp' });
    const [bad, good] = await Promise.allSettled([photo(253), photo(7)]);
    assert.equal(bad.status, 'rejected');
    assert.ok((bad as PromiseRejectedResult).reason instanceof DecodeError);
    assert.equal(((bad as PromiseRejectedResult).reason as DecodeError).code, 'corrupt');
    assert.equal(good.status, 'fulfilled');
    assert.equal((good as PromiseFulfilledResult<{ batchSize: number }>).value.batchSize, 2);
    await e.close();
  });

  it('close() lets queued and running images finish', async () => {
    const e = engine();
    await e.start();
    const pending = Promise.all(Array.from({ length: 3 }, (_, i) => e.classify([image(i + 1)])));
    await e.close();
    assert.equal((await pending).length, 3);
    await assert.rejects(e.classify([image(1)]), NotReadyError);
  });
});
