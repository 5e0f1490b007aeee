import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bundledTestPhoto, bytes, makeImage } from '../helpers/images';
import { IMAGE_MALLOC_ENV, startServer, type RunningServer } from '../../tools/shared/service-process';

// Nothing leaks per request: the worker's live tensor count is exactly the same after many requests (good and
// bad), and the process's resident memory levels off instead of growing with the request count.

async function gauge(server: RunningServer, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${server.metricsUrl}/metrics`)).text();
  const m = pattern.exec(text);
  assert.ok(m, `metric ${pattern}`);
  return Number(m[1]);
}

const tensors = (s: RunningServer) => gauge(s, /inference_worker_tensors\{worker="0"\} (\d+)/);
const rss = (s: RunningServer) => gauge(s, /process_resident_memory_bytes (\d+)/);

describe('leaks', () => {
  let server: RunningServer;
  before(async () => {
    // glibc gives each libvips thread its own malloc arena, and freed memory there is returned late: RSS then
    // creeps for hundreds of requests with no leak at all. Two arenas (what the image sets, as sharp advises)
    // make the curve flatten within the warm-up, so what remains is a real leak.
    server = await startServer({ env: { WORKERS: '1', ...IMAGE_MALLOC_ENV } });
  });
  after(async () => {
    await server.stop();
  });

  it('keeps the tensor count and RSS steady over many requests', async () => {
    const photos = [
      bundledTestPhoto(),
      await makeImage('png', 640, 480, 2),
      await makeImage('webp', 1200, 900, 3),
    ];
    const round = async (n: number) => {
      for (let i = 0; i < n; i += 4) {
        await Promise.all(
          [0, 1, 2, 3].map(async (k) => {
            const photo = photos[(i + k) % photos.length]!;
            const res =
              k === 3
                ? // a bad upload now and then: error paths must not leak either
                  await fetch(`${server.url}/predict`, {
                    method: 'POST',
                    headers: { 'Content-Type': 'image/jpeg' },
                    body: bytes(photo.subarray(0, 100)),
                  })
                : await fetch(`${server.url}/predict`, {
                    method: 'POST',
                    headers: { 'Content-Type': 'image/jpeg' },
                    body: bytes(photo),
                  });
            await res.arrayBuffer();
            assert.equal(res.status, k === 3 ? 422 : 200);
          }),
        );
      }
    };

    await round(120); // warm: allocators, libvips' operation cache, JIT
    const tensors0 = await tensors(server);
    const rss0 = await rss(server);
    await round(120);
    const rss1 = await rss(server);
    await round(120);
    const rss2 = await rss(server);
    const tensors2 = await tensors(server);

    assert.ok(tensors0 > 0, 'the worker reports its tensors');
    assert.equal(tensors2, tensors0, 'no tensor is left behind by a request');
    const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
    // A leak of 150 kB per request would add 18 MB over one window of 120 requests.
    assert.ok(
      rss2 - rss1 < 16 * 1024 * 1024,
      `RSS after warm-up ${mb(rss0)} → ${mb(rss1)} → ${mb(rss2)} MB, 120 requests apart`,
    );
  });
});
