import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT, startServer, type RunningServer } from '../../tools/shared/service-process';
import { FOOD11_DISPLAY_NAMES } from '../helpers/food11';
import { makeJpeg } from '../helpers/images';
import { labelsOpen } from '../helpers/labels-client';

// Labelling in a real browser (Debian's Chromium through playwright-core, as browser.test.ts): a held-out upload
// asks for the category before it shows the model's answer, one click shows both, /accuracy counts it; with the
// sample rate at 0 the result page's "fix it" form stores a correction. Without JavaScript, as the forms are plain.

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const skip = fs.existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is absent: install Debian's Chromium (apt-get install -y chromium) to run the browser test`;

describe('labelling in Chromium', { skip, timeout: 300_000 }, () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gg-browser-labels-'));
  let heldOutServer: RunningServer;
  let browser: Browser;
  let photo: string;

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    photo = path.join(ARTIFACTS, 'label-photo.jpg');
    fs.writeFileSync(photo, await makeJpeg(640, 480, 5));
    heldOutServer = await startServer({
      env: { LABELS: 'on', LABEL_DATA_DIR: dataDir, LABEL_SAMPLE_RATE: '1' },
    });
    await labelsOpen(heldOutServer.url);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  after(async () => {
    await browser?.close();
    await heldOutServer?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function upload(page: Page, url: string): Promise<void> {
    await page.goto(`${url}/`);
    await page.setInputFiles('#file', photo);
    await Promise.all([page.waitForURL(/\/predict$/), page.click('button[type=submit]')]);
  }

  for (const javaScriptEnabled of [true, false]) {
    it(`a held-out upload asks first, then shows both answers (JavaScript ${javaScriptEnabled ? 'on' : 'off'})`, async () => {
      const context = await browser.newContext({ javaScriptEnabled, viewport: { width: 900, height: 1200 } });
      const page = await context.newPage();
      try {
        const before = Number(
          await (
            await fetch(`${heldOutServer.url}/accuracy`)
          )
            .json()
            .then((r: { labelsTotal: number }) => r.labelsTotal),
        );
        await upload(page, heldOutServer.url);
        assert.match((await page.textContent('h1')) ?? '', /What is on the plate\?/);
        assert.equal(await page.locator('#label').count(), 0, "the model's answer is not on the page yet");
        assert.equal(await page.locator('#label-form button').count(), FOOD11_DISPLAY_NAMES.length);
        const shown = await page
          .locator('#photo')
          .evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth);
        assert.ok(shown, 'the photo is shown');
        if (javaScriptEnabled)
          await page.screenshot({ path: path.join(ARTIFACTS, 'browser-held-out.png'), fullPage: true });
        await Promise.all([
          page.waitForURL(/\/labels$/),
          page.click('#label-form button:has-text("Dessert")'),
        ]);
        assert.equal((await page.textContent('#your-label'))?.trim(), 'Dessert');
        const modelSaid = (await page.textContent('#label'))?.trim() ?? '';
        assert.ok(FOOD11_DISPLAY_NAMES.includes(modelSaid), modelSaid);
        if (javaScriptEnabled)
          await page.screenshot({ path: path.join(ARTIFACTS, 'browser-labelled.png'), fullPage: true });
        await page.goto(`${heldOutServer.url}/accuracy`);
        assert.equal(Number(await page.textContent('#labels-total')), before + 1);
      } finally {
        await context.close();
      }
    });
  }

  it('an ordinary result page stores a correction through "wrong category? fix it"', async () => {
    const server = await startServer({
      env: { LABELS: 'on', LABEL_DATA_DIR: path.join(dataDir, 'corrections'), LABEL_SAMPLE_RATE: '0' },
    });
    const page = await browser.newPage({ viewport: { width: 900, height: 1200 } });
    try {
      await labelsOpen(server.url);
      await upload(page, server.url);
      assert.ok(FOOD11_DISPLAY_NAMES.includes((await page.textContent('#label'))?.trim() ?? ''));
      await page.click('#fix summary');
      await page.selectOption('#label-form select', 'Seafood');
      await Promise.all([page.waitForURL(/\/labels$/), page.click('#label-form button')]);
      assert.equal((await page.textContent('#your-label'))?.trim(), 'Seafood');
      const report = (await (await fetch(`${server.url}/accuracy`)).json()) as {
        heldOutTotal: number;
        correctionsTotal: number;
      };
      assert.deepEqual([report.heldOutTotal, report.correctionsTotal], [0, 1]);
    } finally {
      await page.close();
      await server.stop();
    }
  });
});
