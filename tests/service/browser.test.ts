import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { photoLikeJpeg } from '../../bench/decoders';
import { bundledTestPhoto, makeJpeg } from '../helpers/images';
import { REPO_ROOT, startServer, type RunningServer } from '../../tools/shared/service-process';
import { FOOD11_DISPLAY_NAMES } from '../helpers/food11';

// The upload page in a real browser: Debian's Chromium (never a downloaded build) driven by playwright-core,
// against the service on 127.0.0.1 with the shipped model on wasm. Screenshots go to test-artifacts/.

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const skip = fs.existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is absent: install Debian's Chromium (apt-get install -y chromium) to run the browser test`;

describe('the upload page in Chromium', { skip, timeout: 300_000 }, () => {
  let server: RunningServer;
  let browser: Browser;
  let photo: string;
  let phonePhoto: string;

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    photo = path.join(ARTIFACTS, 'upload-photo.jpg');
    fs.writeFileSync(photo, await makeJpeg(640, 480, 3));
    // A 12 MP phone photo as phones store it: 4000×3000 pixels turned upright by EXIF orientation 6 (a portrait).
    phonePhoto = path.join(ARTIFACTS, 'phone-photo-12mp.jpg');
    const pixels = await photoLikeJpeg(bundledTestPhoto(), 4000, 3000);
    fs.writeFileSync(
      phonePhoto,
      await sharp(pixels).withMetadata({ orientation: 6 }).jpeg({ quality: 90 }).toBuffer(),
    );
    // One after the other, so that a server that fails to start leaves no browser behind to hang the run.
    server = await startServer();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Chooses the photo, submits the form and returns once the result page has loaded. */
  async function classify(page: Page): Promise<void> {
    await page.goto(`${server.url}/`);
    await page.setInputFiles('#file', photo);
    await Promise.all([page.waitForURL(/\/predict$/), page.click('button[type=submit]')]);
  }

  async function assertResult(page: Page): Promise<void> {
    const label = (await page.textContent('#label'))?.trim() ?? '';
    assert.ok(FOOD11_DISPLAY_NAMES.includes(label), `the result names a Food-11 class, got "${label}"`);
    assert.match((await page.textContent('#confidence')) ?? '', /^\d{1,3}\.\d %$/);
    assert.equal(await page.locator('#top tr').count(), 3, 'the top 3');
    assert.match((await page.textContent('#timings')) ?? '', /decode[\s\S]*inference[\s\S]*total/);
    // The photo as the model saw it is shown, and it really decoded in the browser.
    const shown = await page
      .locator('#photo')
      .evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth);
    assert.ok(shown, 'the result page shows the photo');
  }

  it('with JavaScript: previews the chosen photo, submits it and shows class, confidence, top 3 and timings', async () => {
    const page = await browser.newPage({ viewport: { width: 900, height: 1100 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => msg.type() === 'error' && errors.push(msg.text()));
    try {
      await page.goto(`${server.url}/`);
      await page.setInputFiles('#file', photo);
      // upload.js shows a preview of the chosen file before anything is sent.
      await page.locator('#preview').waitFor({ state: 'visible' });
      await page.screenshot({ path: path.join(ARTIFACTS, 'browser-upload-preview.png'), fullPage: true });
      await Promise.all([page.waitForURL(/\/predict$/), page.click('button[type=submit]')]);
      await assertResult(page);
      await page.screenshot({ path: path.join(ARTIFACTS, 'browser-result.png'), fullPage: true });
      assert.deepEqual(errors, [], 'no script errors on the page');
    } finally {
      await page.close();
    }
  });

  it('without JavaScript: the plain form posts the photo and the server answers with the result page', async () => {
    const context = await browser.newContext({
      javaScriptEnabled: false,
      viewport: { width: 900, height: 1100 },
    });
    const page = await context.newPage();
    try {
      await classify(page);
      await assertResult(page);
      await page.screenshot({ path: path.join(ARTIFACTS, 'browser-result-nojs.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('a file that is not a photo gets an error page a person can act on, and the next photo still works', async () => {
    const page = await browser.newPage();
    const notAPhoto = path.join(ARTIFACTS, 'not-a-photo.jpg');
    fs.writeFileSync(notAPhoto, 'this is text, whatever its name says');
    try {
      await page.goto(`${server.url}/`);
      await page.setInputFiles('#file', notAPhoto);
      const [response] = await Promise.all([
        page.waitForResponse(/\/predict$/),
        page.click('button[type=submit]'),
      ]);
      assert.equal(response.status(), 415);
      assert.match((await page.textContent('#error')) ?? '', /JPEG, PNG, WebP or GIF/);
      await page.screenshot({ path: path.join(ARTIFACTS, 'browser-error.png'), fullPage: true });
      await classify(page);
      await assertResult(page);
    } finally {
      await page.close();
    }
  });
  /**
   * A TCP relay in front of the server that counts what the browser sends through it (Chromium does not report
   * the size of a request body that holds a file).
   */
  async function countingRelay(): Promise<{ url: string; sent: { bytes: number }; close(): void }> {
    const sent = { bytes: 0 };
    const relay = net.createServer((client) => {
      const upstream = net.connect(server.port, '127.0.0.1');
      client.on('data', (chunk: Buffer) => (sent.bytes += chunk.length));
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const { port } = relay.address() as net.AddressInfo;
    return { url: `http://127.0.0.1:${port}`, sent, close: () => relay.close() };
  }

  /** Sends the 12 MP photo through the page; what the browser sent from the click on and how long the result took. */
  async function sendPhonePhoto(page: Page, withScript: boolean) {
    const relay = await countingRelay();
    try {
      await page.goto(`${relay.url}/`);
      const chosen = performance.now();
      await page.setInputFiles('#file', phonePhoto);
      if (withScript) await page.locator('#status', { hasText: 'Sending a' }).waitFor();
      // scaling in the browser happens when the photo is chosen, while the person reaches for the button
      const prepareMs = performance.now() - chosen;
      relay.sent.bytes = 0;
      const started = performance.now();
      await Promise.all([page.waitForURL(/\/predict$/), page.click('button[type=submit]')]);
      await page.locator('#label').waitFor();
      const resultMs = performance.now() - started;
      const caption = (await page.textContent('figcaption')) ?? '';
      const [width, height] = (/\((\d+) × (\d+) px\)/.exec(caption) ?? []).slice(1).map(Number);
      return { bytes: relay.sent.bytes, prepareMs, resultMs, width: width!, height: height! };
    } finally {
      relay.close();
    }
  }

  it('a 12 MP photo: the page sends an upright copy of at most 1280 px, far smaller than the original the no-JS form sends', async (t) => {
    const page = await browser.newPage();
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const scaled = await sendPhonePhoto(page, true);
      await assertResult(page);
      const original = await sendPhonePhoto(await context.newPage(), false);
      const originalBytes = fs.statSync(phonePhoto).size;
      const line =
        `12 MP photo (${Math.round(originalBytes / 1024)} kB): with JavaScript ${Math.round(scaled.bytes / 1024)} kB sent, ` +
        `result ${scaled.resultMs.toFixed(0)} ms after the click (scaled in ${scaled.prepareMs.toFixed(0)} ms when chosen); without, ${Math.round(original.bytes / 1024)} kB sent, ` +
        `result ${original.resultMs.toFixed(0)} ms after the click`;
      t.diagnostic(line);
      fs.writeFileSync(path.join(ARTIFACTS, 'browser-upload-sizes.txt'), `${line}\n`);
      // EXIF orientation honoured both ways: the server sees a portrait.
      assert.deepEqual(
        [original.width, original.height],
        [3000, 4000],
        'the original, as the server turned it',
      );
      assert.deepEqual([scaled.width, scaled.height], [960, 1280], 'the copy, turned upright in the browser');
      assert.ok(original.bytes > originalBytes, 'the no-JS form sent the original whole');
      assert.ok(
        scaled.bytes * 4 < original.bytes,
        `the copy (${scaled.bytes} B) is a fraction of the original`,
      );
    } finally {
      await page.close();
      await context.close();
    }
  });

  it('refuses at once, before sending, a file the server would refuse', async () => {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => r.method() === 'POST' && requests.push(r.url()));
    try {
      await page.goto(`${server.url}/`);
      await page.setInputFiles('#file', {
        name: 'notes.txt',
        mimeType: 'text/plain',
        buffer: Buffer.from('hello'),
      });
      await page.locator('#status.refused', { hasText: 'not a JPEG, PNG, WebP or GIF' }).waitFor();
      assert.ok(await page.locator('button[type=submit]').isDisabled(), 'the button is off');
      // Too large, and not something the browser can scale down: refused with the server's limit in the message.
      const big = Buffer.alloc(11 * 1024 * 1024, 0x20);
      await page.setInputFiles('#file', { name: 'huge.jpg', mimeType: 'image/jpeg', buffer: big });
      await page.locator('#status.refused', { hasText: 'more than the 10.0 MB' }).waitFor();
      assert.deepEqual(requests, [], 'nothing was sent');
    } finally {
      await page.close();
    }
  });
});
