import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeMemoryBytes } from '../../model/src/preprocess';
import { DecodeMemory } from '../../service/src/inference/decode-memory';
import { PendingWriter, type DropReason, type PendingUpload } from '../../service/src/labels/pending-writer';
import { newPredictionId } from '../../service/src/labels/prediction-id';
import type { PendingPrediction } from '../../service/src/labels/store';
import { makeJpeg } from '../helpers/images';

// The queue between a prediction and the labels store: never waits, bounded by bytes, keeps its records while
// the store is down and writes them when it returns, drops (and counts) what it cannot keep.

function upload(original: Buffer, createdAt = Date.now()): PendingUpload {
  return {
    id: newPredictionId(createdAt),
    createdAt: new Date(createdAt),
    heldOut: false,
    modelName: 'm',
    modelVersion: '1',
    predicted: 'Soup',
    probabilities: { Soup: 1 },
    timings: {},
    original,
  };
}

describe('pending writer', () => {
  it('refuses (and counts) a record when full, keeps the rest while the store is down, writes them when it is back', async () => {
    const photo = await makeJpeg(1200, 900, 1);
    let storeUp = false;
    const written: PendingPrediction[] = [];
    const dropped: DropReason[] = [];
    const writer = new PendingWriter({
      maxBytes: photo.length * 3 + 10,
      pendingMs: 3_600_000,
      retryMs: { min: 20, max: 40 },
      write: async (records) => {
        if (!storeUp) throw new Error('connection refused');
        written.push(...records);
      },
      observer: { dropped: (reason) => dropped.push(reason) },
    });
    const accepted = [1, 2, 3, 4].map(() => writer.offer(upload(photo)));
    // three fit; the fourth is refused at once: its answer will carry no id
    assert.deepEqual(accepted.slice(0, 3), [true, true, true]);
    assert.equal(accepted[3], false);
    assert.deepEqual(dropped, ['queue_full']);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(writer.length, 3, 'kept while the store is down');
    assert.ok(writer.queuedBytes < photo.length * 3, 'the photos are held scaled to 512 px, not as uploaded');
    storeUp = true;
    const pending = upload(photo);
    assert.equal(writer.offer(pending), true);
    await writer.written(pending.id);
    assert.equal(writer.length, 0);
    assert.equal(written.length, 4);
    for (const r of written) {
      assert.deepEqual([...r.photo.subarray(0, 2)], [0xff, 0xd8], 'a JPEG');
      assert.ok(!('original' in r), 'the upload itself is not written');
    }
    assert.deepEqual(dropped, ['queue_full']);
  });

  it('drops a record still unwritten when its pending window ends, and tells whoever waits for it', async () => {
    const dropped: DropReason[] = [];
    let now = Date.now();
    const writer = new PendingWriter({
      maxBytes: 10 << 20,
      pendingMs: 60_000,
      now: () => now,
      retryMs: { min: 10, max: 10 },
      write: async () => {
        throw new Error('down');
      },
      observer: { dropped: (reason) => dropped.push(reason) },
    });
    const record = upload(await makeJpeg(100, 100, 2), now);
    writer.offer(record);
    const waiting = writer.written(record.id);
    // The writer's retry timers do not hold the process open (a server does); this test must.
    const keepAlive = setInterval(() => writer.nudge(), 5);
    now += 61_000;
    try {
      await assert.rejects(waiting, /not stored \(expired\)/);
    } finally {
      clearInterval(keepAlive);
    }
    assert.deepEqual(dropped, ['expired']);
    assert.equal(writer.queuedBytes, 0);
  });

  it("scales a photo only when the service's decode budget has room for it", async () => {
    // A progressive photo, as an editing app saves it: decoding it again for the store holds its coefficients.
    const photo = await sharp(await makeJpeg(1600, 1200, 5))
      .jpeg({ progressive: true })
      .toBuffer();
    // sharp saves 4:2:0 chroma unless told otherwise
    const needs = decodeMemoryBytes('jpeg', 1600 * 1200, true, '4:2:0');
    const budget = new DecodeMemory(needs + 1024);
    const asked: number[] = [];
    const written: string[] = [];
    const writer = new PendingWriter({
      maxBytes: 10 << 20,
      pendingMs: 60_000,
      reserveMemory: (bytes) => {
        asked.push(bytes);
        return budget.reserve(bytes);
      },
      write: async (records) => {
        written.push(...records.map((r) => r.id));
      },
    });
    // The model's decodes hold most of the budget: the store's copy waits for them.
    const held = await budget.reserve(needs);
    const record = upload(photo);
    writer.offer(record);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(asked, [needs], 'it asked for what decoding this photo holds');
    assert.deepEqual(written, [], 'nothing scaled while the budget is held');
    held();
    await writer.written(record.id);
    assert.deepEqual(written, [record.id]);
    assert.equal(budget.inUse, 0, 'and it gave the memory back');
  });

  it('drops a photo it cannot read, counted', async () => {
    const dropped: DropReason[] = [];
    const writer = new PendingWriter({
      maxBytes: 1 << 20,
      pendingMs: 60_000,
      write: async () => undefined,
      observer: { dropped: (reason) => dropped.push(reason) },
    });
    const bad = upload(Buffer.from('not a photo at all'));
    writer.offer(bad);
    await assert.rejects(writer.written(bad.id), /photo/);
    assert.deepEqual(dropped, ['photo']);
  });
});
