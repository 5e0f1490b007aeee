import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { makeJpeg } from '../helpers/images';
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

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    photo = path.join(ARTIFACTS, 'upload-photo.jpg');
    fs.writeFileSync(photo, await makeJpeg(640, 480, 3));
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
});
