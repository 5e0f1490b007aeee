import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { bundledTestPhoto, bytes, makeImage, multipart } from '../helpers/images';
import { startServer, type RunningServer } from '../../tools/shared/service-process';

// Bad input never hurts: every case gets a status and a message a person can act on, and the next photo is
// still classified. Limits are lowered so the big cases stay small and fast.

const MAX_UPLOAD_BYTES = 1_000_000;
const MAX_PIXELS = 2_000_000;

interface Case {
  name: string;
  status: number;
  /** a word the message must contain, to show it says what to do */
  mentions: RegExp;
  request(url: string, model: string): Promise<Response>;
}

const post = (url: string, body: Buffer | string | undefined, headers: Record<string, string> = {}) =>
  fetch(`${url}/predict`, { method: 'POST', body: Buffer.isBuffer(body) ? bytes(body) : body, headers });

const sendForm = (url: string, parts: Parameters<typeof multipart>[0]) => {
  const { body, contentType } = multipart(parts);
  return post(url, body, { 'Content-Type': contentType });
};

const infer = (url: string, model: string, body: unknown, raw?: string) =>
  fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: raw ?? JSON.stringify(body),
  });

/** Incompressible pixels, so the encoded file is as large as the test needs. */
async function noisyJpeg(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 24;
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 100 })
    .toBuffer();
}

describe('bad input', () => {
  let server: RunningServer;
  let model: string;
  let jpeg: Buffer;
  let png: Buffer;
  let big: Buffer;
  let manyPixels: Buffer;
  before(async () => {
    server = await startServer({
      env: { MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES), MAX_PIXELS: String(MAX_PIXELS) },
    });
    model = ((await (await fetch(`${server.url}/test`)).json()) as { model: { name: string } }).model.name;
    jpeg = await makeImage('jpeg', 320, 240);
    png = await makeImage('png', 320, 240);
    big = await noisyJpeg(1000, 800);
    assert.ok(big.length > MAX_UPLOAD_BYTES, `the big photo is ${big.length} bytes`);
    // Few bytes (one flat colour), many pixels: a small decompression bomb.
    manyPixels = await sharp({ create: { width: 2000, height: 1500, channels: 3, background: '#884422' } })
      .png()
      .toBuffer();
    assert.ok(manyPixels.length < MAX_UPLOAD_BYTES);
  });
  after(async () => {
    await server.stop();
  });

  const cases: Case[] = [
    { name: 'no body at all', status: 400, mentions: /photo/, request: (u) => post(u, undefined) },
    {
      name: 'a form without a file',
      status: 400,
      mentions: /'file'/,
      request: (u) => sendForm(u, [{ name: 'comment', data: 'hello' }]),
    },
    {
      name: 'the photo in the wrong field',
      status: 400,
      mentions: /'file'/,
      request: (u) => sendForm(u, [{ name: 'photo', filename: 'a.jpg', type: 'image/jpeg', data: jpeg }]),
    },
    {
      name: 'two photos',
      status: 400,
      mentions: /one photo/,
      request: (u) =>
        sendForm(u, [
          { name: 'file', filename: 'a.jpg', type: 'image/jpeg', data: jpeg },
          { name: 'file', filename: 'b.jpg', type: 'image/jpeg', data: jpeg },
        ]),
    },
    {
      name: 'an empty file',
      status: 400,
      mentions: /empty/,
      request: (u) =>
        sendForm(u, [{ name: 'file', filename: 'a.jpg', type: 'image/jpeg', data: Buffer.alloc(0) }]),
    },
    {
      name: 'an empty raw body',
      status: 400,
      mentions: /empty/,
      request: (u) => post(u, Buffer.alloc(0), { 'Content-Type': 'image/jpeg' }),
    },
    {
      name: 'a form cut off before its end',
      status: 400,
      mentions: /form/,
      request: (u) => {
        const { body, contentType } = multipart([
          { name: 'file', filename: 'a.jpg', type: 'image/jpeg', data: jpeg },
        ]);
        return post(u, body.subarray(0, body.length - 40), { 'Content-Type': contentType });
      },
    },
    {
      name: 'a photo over the size limit (form)',
      status: 413,
      mentions: /MB/,
      request: (u) => sendForm(u, [{ name: 'file', filename: 'a.jpg', type: 'image/jpeg', data: big }]),
    },
    {
      name: 'a photo over the size limit (raw)',
      status: 413,
      mentions: /MB/,
      request: (u) => post(u, big, { 'Content-Type': 'image/jpeg' }),
    },
    {
      name: 'a text file',
      status: 415,
      mentions: /JPEG, PNG, WebP or GIF/,
      request: (u) =>
        sendForm(u, [
          { name: 'file', filename: 'a.txt', type: 'text/plain', data: 'this is not a photo\n'.repeat(20) },
        ]),
    },
    {
      name: 'a text file claiming to be a JPEG',
      status: 415,
      mentions: /JPEG, PNG, WebP or GIF/,
      request: (u) => post(u, 'plain text, honest', { 'Content-Type': 'image/jpeg' }),
    },
    {
      name: 'a BMP image',
      status: 415,
      mentions: /BMP/,
      request: (u) =>
        sendForm(u, [
          { name: 'file', filename: 'a.bmp', data: Buffer.concat([Buffer.from('BM'), Buffer.alloc(200)]) },
        ]),
    },
    {
      name: 'an iPhone HEIC photo',
      status: 415,
      mentions: /HEIC/,
      request: (u) =>
        sendForm(u, [
          {
            name: 'file',
            filename: 'a.heic',
            data: Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheic'), Buffer.alloc(200)]),
          },
        ]),
    },
    {
      name: 'a PDF',
      status: 415,
      mentions: /PDF/,
      request: (u) =>
        sendForm(u, [{ name: 'file', filename: 'a.pdf', data: '%PDF-1.7\n' + 'x'.repeat(100) }]),
    },
    {
      name: 'an SVG drawing',
      status: 415,
      mentions: /SVG/,
      request: (u) =>
        sendForm(u, [
          { name: 'file', filename: 'a.svg', data: '<svg xmlns="http://www.w3.org/2000/svg"></svg>' },
        ]),
    },
    {
      name: 'a JSON body to /predict',
      status: 415,
      mentions: /multipart\/form-data/,
      request: (u) => post(u, '{"image":"x"}', { 'Content-Type': 'application/json' }),
    },
    {
      name: 'a truncated JPEG',
      status: 422,
      mentions: /./,
      request: (u) =>
        post(u, jpeg.subarray(0, Math.floor(jpeg.length / 3)), { 'Content-Type': 'image/jpeg' }),
    },
    {
      name: 'a PNG with garbage after its signature',
      status: 422,
      mentions: /./,
      request: (u) =>
        sendForm(u, [
          {
            name: 'file',
            filename: 'a.png',
            data: Buffer.concat([png.subarray(0, 8), Buffer.alloc(500, 7)]),
          },
        ]),
    },
    {
      name: 'a JPEG signature and nothing else',
      status: 422,
      mentions: /./,
      request: (u) =>
        post(u, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0, 0, 0]), { 'Content-Type': 'image/jpeg' }),
    },
    {
      name: 'too many pixels (a decompression bomb)',
      status: 422,
      mentions: /MP|pixel/i,
      request: (u) => sendForm(u, [{ name: 'file', filename: 'a.png', data: manyPixels }]),
    },
    {
      name: 'OIP: a body that is not JSON',
      status: 400,
      mentions: /JSON/,
      request: (u, m) => infer(u, m, undefined, '{"inputs": ['),
    },
    {
      name: 'OIP: no inputs',
      status: 400,
      mentions: /inputs/,
      request: (u, m) => infer(u, m, { inputs: [] }),
    },
    {
      name: 'OIP: an unsupported datatype',
      status: 400,
      mentions: /BYTES/,
      request: (u, m) => infer(u, m, { inputs: [{ name: 'x', shape: [1], datatype: 'INT32', data: [1] }] }),
    },
    {
      name: 'OIP: BYTES that are not base64',
      status: 400,
      mentions: /base64/,
      request: (u, m) =>
        infer(u, m, { inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: ['***'] }] }),
    },
    {
      name: 'OIP: BYTES holding text, not an image',
      status: 400,
      mentions: /JPEG/,
      request: (u, m) =>
        infer(u, m, {
          inputs: [
            { name: 'image', shape: [1], datatype: 'BYTES', data: [Buffer.from('hello').toString('base64')] },
          ],
        }),
    },
    {
      name: 'OIP: FP32 values fewer than the shape says',
      status: 400,
      mentions: /values/,
      request: (u, m) =>
        infer(u, m, { inputs: [{ name: 'input', shape: [1, 4, 4, 3], datatype: 'FP32', data: [1, 2] }] }),
    },
    {
      name: 'OIP: FP32 with four channels',
      status: 400,
      mentions: /\[N, H, W, 3\]/,
      request: (u, m) =>
        infer(u, m, {
          inputs: [{ name: 'input', shape: [1, 2, 2, 4], datatype: 'FP32', data: Array(16).fill(1) }],
        }),
    },
    {
      name: 'OIP: FP32 with a value that is not a number',
      status: 400,
      mentions: /number/,
      request: (u, m) =>
        infer(u, m, {
          inputs: [
            { name: 'input', shape: [1, 2, 2, 3], datatype: 'FP32', data: [...Array(11).fill(1), 'x'] },
          ],
        }),
    },
    {
      name: 'OIP: an unknown output',
      status: 400,
      mentions: /probabilities/,
      request: (u, m) =>
        infer(u, m, {
          inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [jpeg.toString('base64')] }],
          outputs: [{ name: 'logits' }],
        }),
    },
    {
      name: 'OIP: an unknown model',
      status: 404,
      mentions: /serves/,
      request: (u) => infer(u, 'no-such-model', { inputs: [] }),
    },
  ];

  it('has at least 20 cases', () => assert.ok(cases.length >= 20));

  for (const c of cases) {
    it(`${c.name} → ${c.status}, then a photo is still classified`, async () => {
      const res = await c.request(server.url, model);
      const text = await res.text();
      assert.equal(res.status, c.status, text);
      const body = JSON.parse(text) as { error: string };
      assert.equal(typeof body.error, 'string');
      assert.match(body.error, c.mentions);
      assert.doesNotMatch(text, /\bat .+:\d+:\d+/, 'no stack trace');

      const ok = await post(server.url, bundledTestPhoto(), { 'Content-Type': 'image/jpeg' });
      assert.equal(ok.status, 200);
      assert.ok(((await ok.json()) as { label: string }).label);
    });
  }

  it('answers a browser with an HTML error page', async () => {
    const res = await post(server.url, 'not a photo', { 'Content-Type': 'image/png', Accept: 'text/html' });
    assert.equal(res.status, 415);
    assert.match(await res.text(), /<p class="error" id="error">[^<]*JPEG, PNG, WebP or GIF/);
  });

  it('escapes what the client sent when it appears in the HTML error page', async () => {
    const { body, contentType } = multipart([
      { name: '<script>alert(1)</script>', filename: 'a.jpg', type: 'image/jpeg', data: jpeg },
    ]);
    const res = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': contentType, Accept: 'text/html' },
      body: bytes(body),
    });
    assert.equal(res.status, 400);
    const html = await res.text();
    assert.ok(!html.includes('<script>alert(1)</script>'));
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  });

  it('kept the server healthy throughout', async () => {
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    assert.equal(server.proc.exitCode, null);
  });
});
