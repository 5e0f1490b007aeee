import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bundledTestPhoto, bytes, multipart } from '../helpers/images';
import { rawRequest } from '../helpers/raw-http';
import { startServer, type RunningServer } from '../../tools/shared/service-process';

// Issue 19: every refusal a browser can meet (408, 413, 415, 422, 503) is the error page for a browser, the early
// 413 and the shedding 503 included; and every refusal of a body the server has not read is answered with a
// lingering close, so a client still sending (Node's fetch with 60 MB) reads its answer instead of EPIPE or
// ECONNRESET, while a client that never stops sending is still cut off after LINGER_MAX_BYTES or LINGER_MS.

/** What Chromium sends with a form submission. */
const BROWSER_ACCEPT =
  'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8';
const MAX_UPLOAD_BYTES = 1_000_000;
const LINGER_MS = 1000;
const LINGER_MAX_BYTES = 4_000_000;

/** The error page, as views.ts writes it: a document with the message in #error. */
function assertErrorPage(
  status: number,
  res: { status: number; type: string; text: string },
  mentions: RegExp,
) {
  assert.equal(res.status, status, res.text.slice(0, 300));
  assert.match(res.type, /^text\/html/, `${status}: ${res.type}`);
  assert.match(res.text, /^<!doctype html>/);
  const message = /<p class="error" id="error">([^<]*)<\/p>/.exec(res.text)?.[1] ?? '';
  assert.match(message, mentions, res.text.slice(0, 600));
}

const read = async (r: Response) => ({
  status: r.status,
  type: r.headers.get('content-type') ?? '',
  headers: r.headers,
  text: await r.text(),
});

/** A raw HTTP answer's status, content type and body. */
function parseRaw(text: string) {
  const [head = '', ...body] = text.split('\r\n\r\n');
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]),
    type: /^content-type: (.*)$/im.exec(head)?.[1] ?? '',
    head,
    text: body.join('\r\n\r\n'),
  };
}

describe('refusals a browser can read, and lingering close', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({
      env: {
        MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
        BODY_TIMEOUT_MS: '1500',
        // two stalled 1 MB uploads spend it
        MAX_INFLIGHT_UPLOAD_BYTES: '2200000',
        LINGER_MS: String(LINGER_MS),
        LINGER_MAX_BYTES: String(LINGER_MAX_BYTES),
      },
    });
  });
  after(async () => {
    await server.stop();
  });

  const sixtyMegabytes = () => new Uint8Array(60 * 1024 * 1024);

  it("Node's fetch sending 60 MB reads the early 413, as JSON and as the error page (lingering close)", async () => {
    const json = await read(
      await fetch(`${server.url}/predict`, {
        method: 'POST',
        headers: { 'Content-Type': 'image/jpeg' },
        body: sixtyMegabytes(),
      }),
    );
    assert.equal(json.status, 413, json.text.slice(0, 300));
    assert.equal(json.headers.get('connection'), 'close');
    const body = JSON.parse(json.text) as { code: string; error: string };
    assert.equal(body.code, 'too_large');
    assert.match(body.error, /1\.0 MB/);

    const page = await read(
      await fetch(`${server.url}/predict`, {
        method: 'POST',
        headers: { 'Content-Type': 'image/jpeg', Accept: BROWSER_ACCEPT },
        body: sixtyMegabytes(),
      }),
    );
    assertErrorPage(413, page, /larger than 1\.0 MB/);
  });

  it('a form over the limit found while reading it (chunked) is the 413 page', async () => {
    const { body, contentType } = multipart([
      { name: 'file', filename: 'big.jpg', type: 'image/jpeg', data: Buffer.alloc(3_000_000, 0xff) },
    ]);
    const res = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': contentType, Accept: BROWSER_ACCEPT },
      // a stream has no length: the body goes chunked, so only multer's limit can find it too large
      body: new Blob([bytes(body)]).stream(),
      duplex: 'half',
    } as RequestInit);
    assertErrorPage(413, await read(res), /larger than 1\.0 MB/);
  });

  it('415 and 422 are the error page', async () => {
    const send = (data: Buffer | string, filename: string) => {
      const { body, contentType } = multipart([{ name: 'file', filename, type: 'image/jpeg', data }]);
      return fetch(`${server.url}/predict`, {
        method: 'POST',
        headers: { 'Content-Type': contentType, Accept: BROWSER_ACCEPT },
        body: bytes(body),
      }).then(read);
    };
    assertErrorPage(
      415,
      await send('this is text, whatever its name says', 'a.jpg'),
      /JPEG, PNG, WebP or GIF/,
    );
    const photo = bundledTestPhoto();
    assertErrorPage(422, await send(photo.subarray(0, photo.length / 2), 'cut.jpg'), /truncated or damaged/);
  });

  it('the 408 and the upload-budget 503 are the error page for a browser', async () => {
    const head = (extra: string) =>
      `POST /predict HTTP/1.1\r\nHost: t\r\nAccept: ${BROWSER_ACCEPT}\r\nContent-Type: image/jpeg\r\n${extra}\r\n`;
    const stalled = [0, 1].map(() => {
      const ex = rawRequest(server.port, head('Content-Length: 1000000\r\n'), 8000);
      ex.socket.write(Buffer.alloc(100_000, 0xff));
      return ex;
    });
    await new Promise((r) => setTimeout(r, 200));
    const third = rawRequest(server.port, head('Content-Length: 1000000\r\n'), 8000);
    third.socket.write(Buffer.alloc(100_000, 0xff));
    const refused = parseRaw((await third.closed).text);
    assertErrorPage(503, refused, /uploads/);
    assert.match(refused.head, /retry-after: \d+/i);
    for (const ex of stalled)
      assertErrorPage(408, parseRaw((await ex.closed).text), /did not arrive within 1\.5 seconds/);
  });

  it('a client that never stops sending is cut off after LINGER_MAX_BYTES, having read its 413', async () => {
    const ex = rawRequest(
      server.port,
      'POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000000000\r\n\r\n',
      { waitMs: 20_000, allowHalfOpen: true },
    );
    let sent = 0;
    const chunk = Buffer.alloc(256 * 1024);
    const pump = () => {
      while (!ex.socket.destroyed && ex.socket.write(chunk)) sent += chunk.length;
      if (!ex.socket.destroyed) sent += chunk.length;
    };
    ex.socket.on('drain', pump);
    pump();
    const end = await ex.closed;
    assert.ok(end.closedByServer, `the server still read after ${end.ms.toFixed(0)} ms`);
    assert.match(end.text, /^HTTP\/1\.1 413/);
    // The byte limit ended it, not the deadline: the server read at least LINGER_MAX_BYTES (the client sent them),
    // then closed long before LINGER_MS while the client was still sending as fast as it could. (How many more
    // bytes the client got rid of depends on the kernel's socket buffers and the link's speed, not on the server.)
    assert.ok(sent >= LINGER_MAX_BYTES, `only ${sent} bytes were sent before the server closed`);
    assert.ok(end.ms < LINGER_MS, `closed after ${end.ms.toFixed(0)} ms: the deadline, not the byte limit`);
  });

  it('a client that keeps sending slowly is cut off after LINGER_MS, having read its 413', async () => {
    const ex = rawRequest(
      server.port,
      'POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: 10000000\r\n\r\n',
      { waitMs: 20_000, allowHalfOpen: true },
    );
    const drip = setInterval(() => ex.socket.writable && ex.socket.write('x'), 100);
    const end = await ex.closed;
    clearInterval(drip);
    assert.ok(end.closedByServer, `still open after ${end.ms.toFixed(0)} ms`);
    assert.match(end.text, /^HTTP\/1\.1 413/);
    assert.ok(end.ms < LINGER_MS + 5000, `closed after ${end.ms.toFixed(0)} ms (LINGER_MS ${LINGER_MS})`);
  });

  it('an error for a request without a body keeps the connection alive (only an unread body closes it)', async () => {
    const missing = await fetch(`${server.url}/nowhere`, { headers: { Accept: BROWSER_ACCEPT } });
    assertErrorPage(404, await read(missing), /Nothing at GET \/nowhere/);
    assert.equal(missing.headers.get('connection'), 'keep-alive');
  });

  it('probes answered throughout, and a photo is still classified', async () => {
    assert.equal((await fetch(`${server.metricsUrl}/healthz`)).status, 200);
    const ok = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': 'image/jpeg' },
      body: bytes(bundledTestPhoto()),
    });
    assert.equal(ok.status, 200, await ok.text());
  });
});

describe('the 503s of shedding and draining are the error page for a browser', () => {
  it('shedding: the error page with Retry-After', async () => {
    // Any expected wait is over 1 ms once the model's time per image is known: every request after the first is
    // shed before its body is read.
    const server = await startServer({ env: { QUEUE_MAX_WAIT_MS: '1' } });
    try {
      const answers = await Promise.all(
        Array.from({ length: 6 }, () =>
          fetch(`${server.url}/predict`, {
            method: 'POST',
            headers: { 'Content-Type': 'image/jpeg', Accept: BROWSER_ACCEPT },
            body: bytes(bundledTestPhoto()),
          }).then(read),
        ),
      );
      const shed = answers.filter((a) => a.status === 503);
      assert.ok(shed.length > 0, `statuses ${answers.map((a) => a.status).join(', ')}`);
      for (const a of shed) {
        assertErrorPage(503, a, /busy/);
        assert.match(a.headers.get('retry-after') ?? '', /^\d+$/);
      }
    } finally {
      await server.stop();
    }
  });

  it('draining: a request on a kept-alive connection after SIGTERM gets the error page', async () => {
    const server = await startServer();
    try {
      // The upload in progress keeps its connection through the drain; the browser's next request on it is refused.
      const photo = bundledTestPhoto();
      const ex = rawRequest(
        server.port,
        `POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: ${photo.length}\r\n\r\n`,
        10_000,
      );
      ex.socket.write(photo.subarray(0, 1000));
      await new Promise((r) => setTimeout(r, 200));
      server.proc.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 100));
      ex.socket.write(photo.subarray(1000));
      ex.socket.write(`GET /test HTTP/1.1\r\nHost: t\r\nAccept: ${BROWSER_ACCEPT}\r\n\r\n`);
      const [first, second] = (await ex.closed).text.split(/(?=HTTP\/1\.1 \d{3})/);
      assert.match(first ?? '', /^HTTP\/1\.1 200/);
      assertErrorPage(503, parseRaw(second ?? ''), /shutting down/);
    } finally {
      await server.stop();
    }
  });
});
