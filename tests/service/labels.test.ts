import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newPredictionId } from '../../service/src/labels/prediction-id';
import { startServer, type RunningServer } from '../../tools/shared/service-process';
import { FOOD11_DISPLAY_NAMES } from '../helpers/food11';
import { bundledTestPhoto, bytes, makeJpeg } from '../helpers/images';
import {
  accuracy,
  CLASS_IDS,
  labelsOpen,
  labelWithRetry,
  postLabel,
  predictJson,
  type LabelAnswer,
} from '../helpers/labels-client';

// Labelling through the service, as a user and a program would, on the embedded store (no database to install):
// the held-out page asks first, the result page offers a fix, the JSON API opts in, /accuracy counts, bad label
// requests get clear 4xx, and the labels outlive the process.

function pageUpload(url: string, photo: Buffer, query = ''): Promise<Response> {
  const form = new FormData();
  form.append('file', new Blob([bytes(photo)], { type: 'image/jpeg' }), 'dinner.jpg');
  return fetch(`${url}/predict${query}`, { method: 'POST', body: form, headers: { Accept: 'text/html' } });
}

function formPost(url: string, fields: Record<string, string>): Promise<Response> {
  return fetch(`${url}/labels`, {
    method: 'POST',
    body: new URLSearchParams(fields),
    headers: { Accept: 'text/html' },
  });
}

const hiddenId = (html: string) => /<input type="hidden" name="id" value="([0-9a-f-]{36})">/.exec(html)?.[1];

describe('labels through the service (embedded store)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gg-labels-'));
  const env = { LABELS: 'on', LABEL_DATA_DIR: dataDir, LABEL_SAMPLE_RATE: '1' };
  let server: RunningServer;
  /** what this test labelled: id → [held out?, the user's class, the model's class] */
  const labelled = new Map<string, { heldOut: boolean; label: string; predicted: string }>();
  const remember = (a: LabelAnswer) =>
    labelled.set(a.id, {
      heldOut: a.kind === 'heldout',
      label: a.labelId,
      predicted: CLASS_IDS[FOOD11_DISPLAY_NAMES.indexOf(a.prediction.label)]!,
    });

  before(async () => {
    server = await startServer({ env });
    await labelsOpen(server.url);
  });
  after(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('a held-out page asks for the category before it shows the answer, then shows both', async () => {
    const res = await pageUpload(server.url, bundledTestPhoto());
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /What is on the plate\?/);
    assert.match(html, /<form method="post" action="\/labels"/);
    for (const id of CLASS_IDS) assert.ok(html.includes(`name="label" value="${id}"`), id);
    // nothing of the model's answer yet
    assert.doesNotMatch(html, /id="label"|id="confidence"|id="top"/);
    const id = hiddenId(html);
    assert.ok(id);
    const answer = await formPost(server.url, { id, label: 'Dessert' });
    assert.equal(answer.status, 200);
    const page = await answer.text();
    assert.match(page, /<strong id="your-label">Dessert<\/strong>/);
    const modelSaid = /<strong id="label">([^<]+)<\/strong>/.exec(page)?.[1];
    assert.ok(modelSaid && FOOD11_DISPLAY_NAMES.includes(modelSaid.replace('&#x2F;', '/')), modelSaid);
    labelled.set(id, {
      heldOut: true,
      label: 'Dessert',
      predicted: CLASS_IDS[FOOD11_DISPLAY_NAMES.indexOf(modelSaid.replace('&#x2F;', '/'))]!,
    });
  });

  it('an ordinary result page offers "wrong category? fix it", stored as a correction', async () => {
    const res = await pageUpload(server.url, await makeJpeg(300, 200, 7), '?heldOut=0');
    const html = await res.text();
    assert.match(html, /<h1 id="label">/);
    assert.match(html, /Wrong category\? Fix it/);
    const id = hiddenId(html);
    assert.ok(id);
    const { answer } = await labelWithRetry(server.url, id, 'Rice');
    assert.equal(answer.kind, 'correction');
    remember(answer);
  });

  it('JSON: every prediction has an id; a held-out one withholds the answer until it is labelled', async () => {
    const plain = await predictJson(server.url, await makeJpeg(320, 240, 3));
    assert.ok(plain.id && plain.label, 'an ordinary JSON answer has its label and an id');
    assert.equal(plain.heldOut, undefined);
    const held = await predictJson(server.url, await makeJpeg(320, 240, 4), true);
    assert.ok(held.id);
    assert.equal(held.heldOut, true);
    assert.equal(held.label, undefined);
    const { answer } = await labelWithRetry(server.url, held.id, 'dairy product'); // a display name, loosely
    assert.equal(answer.labelId, 'Dairy-product');
    assert.equal(answer.kind, 'heldout');
    assert.equal(answer.replaced, false);
    assert.equal(answer.prediction.top.length, 3);
    // a second label replaces the first and is not counted twice
    const again = await labelWithRetry(server.url, held.id, 'Egg');
    assert.equal(again.answer.replaced, true);
    remember(again.answer);
    // /test's bundled photo is nobody's upload: no id
    const test = (await (await fetch(`${server.url}/test`)).json()) as { id?: string };
    assert.equal(test.id, undefined);
  });

  it('answers bad label requests with a clear 4xx', async () => {
    const { id } = await predictJson(server.url, await makeJpeg(200, 200, 9));
    const cases: { body: string | URLSearchParams; type?: string; status: number; code: RegExp }[] = [
      { body: '{"id": ', type: 'application/json', status: 400, code: /bad_json/ },
      { body: '{}', type: 'application/json', status: 400, code: /bad_label_request/ },
      {
        body: JSON.stringify({ id, label: 3 }),
        type: 'application/json',
        status: 400,
        code: /bad_label_request/,
      },
      {
        body: JSON.stringify({ id: 'nope', label: 'Soup' }),
        type: 'application/json',
        status: 400,
        code: /bad_id/,
      },
      {
        body: JSON.stringify({ id, label: 'Pizza' }),
        type: 'application/json',
        status: 400,
        code: /bad_label/,
      },
      { body: `id=${id}&label=Soup`, type: 'text/plain', status: 400, code: /bad_label_request/ },
      {
        body: JSON.stringify({ id, label: 'Soup', pad: 'x'.repeat(8000) }),
        type: 'application/json',
        status: 413,
        code: /too_large/,
      },
      // an id nobody made: an old one is unknown (404)
      {
        body: JSON.stringify({ id: newPredictionId(Date.now() - 3_600_000), label: 'Soup' }),
        type: 'application/json',
        status: 404,
        code: /unknown_prediction/,
      },
    ];
    for (const c of cases) {
      const res = await fetch(`${server.url}/labels`, {
        method: 'POST',
        headers: c.type ? { 'Content-Type': c.type } : {},
        body: c.body,
      });
      const text = await res.text();
      assert.equal(res.status, c.status, `${String(c.body).slice(0, 40)} → ${text}`);
      assert.match(text, c.code);
    }
    const pizza = await postLabel(server.url, id!, 'Pizza');
    assert.match(
      ((await pizza.json()) as { error: string }).error,
      /Bread, Dairy-product, .*Vegetable-Fruit/,
    );
    // an id made just now that no replica has stored: maybe still on its way, so "retry" rather than 404
    const fresh = await postLabel(server.url, newPredictionId(), 'Soup');
    assert.equal(fresh.status, 503);
    assert.equal(fresh.headers.get('retry-after'), '1');
    const bad = await fetch(`${server.url}/predict?heldOut=maybe`, {
      method: 'POST',
      headers: { 'Content-Type': 'image/jpeg' },
      body: bytes(await makeJpeg(100, 100, 1)),
    });
    assert.equal(bad.status, 400);
    // a prediction still works after all of them
    assert.ok((await predictJson(server.url, await makeJpeg(100, 100, 2))).id);
  });

  it('/accuracy counts every label once, held-out apart from corrections, with a Wilson interval', async () => {
    const report = await accuracy(server.url);
    const heldOut = [...labelled.values()].filter((l) => l.heldOut);
    const corrections = [...labelled.values()].filter((l) => !l.heldOut);
    assert.equal(report.labelsTotal, labelled.size);
    assert.equal(report.heldOutTotal, heldOut.length);
    assert.equal(report.correctionsTotal, corrections.length);
    const model = report.models[0]!;
    const correct = heldOut.filter((l) => l.label === l.predicted).length;
    assert.equal(model.heldOut.n, heldOut.length);
    assert.equal(model.heldOut.correct, correct);
    assert.ok(model.heldOut.ci95 && model.heldOut.ci95.low <= model.heldOut.accuracy!);
    assert.ok(model.heldOut.ci95.high >= model.heldOut.accuracy! && model.heldOut.ci95.high <= 1);
    assert.equal(
      model.heldOut.confusion.matrix.flat().reduce((a, b) => a + b, 0),
      heldOut.length,
    );
    const page = await (await fetch(`${server.url}/accuracy`, { headers: { Accept: 'text/html' } })).text();
    assert.match(page, new RegExp(`<strong id="labels-total">${labelled.size}</strong>`));
    assert.match(page, /confusion-0/);
  });

  it('counts labels in Prometheus per kind, model version, class and result', async () => {
    const text = await (await fetch(`${server.metricsUrl}/metrics`)).text();
    const count = (kind: string) =>
      [...text.matchAll(new RegExp(`^labels_total\\{kind="${kind}",[^}]*\\} (\\d+)$`, 'gm'))].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    const heldOut = [...labelled.values()].filter((l) => l.heldOut).length;
    assert.equal(count('heldout'), heldOut);
    assert.equal(count('correction'), labelled.size - heldOut);
    assert.match(text, /^label_store_up 1$/m);
    assert.match(text, /^label_pending_written_total \d+$/m);
  });

  it('keeps the labels across a restart of the process', async () => {
    const before = await accuracy(server.url);
    assert.equal(await server.stop(), 0);
    server = await startServer({ env });
    await labelsOpen(server.url);
    const after = await accuracy(server.url);
    assert.equal(after.labelsTotal, before.labelsTotal);
    assert.deepEqual(after.models, before.models);
  });
});

describe('a fresh embedded store, from the first moment /readyz says ready', () => {
  it("answers /accuracy and labels without a 503, and leaves the store creation's memory to its own process", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gg-labels-fresh-'));
    const server = await startServer({ env: { LABELS: 'on', LABEL_DATA_DIR: dataDir }, waitReady: false });
    try {
      const seen = new Set<string>();
      const until = Date.now() + 120_000;
      for (;;) {
        // the internal listener starts a moment after the public one
        const res = await fetch(`${server.metricsUrl}/readyz`).catch(() => undefined);
        const status = res && ((await res.json()) as { ready: boolean; labelsStore: string });
        if (res && status) {
          seen.add(status.labelsStore);
          if (res.status === 200) {
            assert.equal(status.labelsStore, 'open');
            break;
          }
        }
        assert.ok(Date.now() < until, 'not ready within 2 minutes');
        await new Promise((r) => setTimeout(r, 20));
      }
      // At once, as a user who opens the page the moment the pod is ready: no 503, no retry.
      assert.equal((await fetch(`${server.url}/accuracy`)).status, 200);
      const { id } = await predictJson(server.url, bundledTestPhoto());
      const labelled = await postLabel(server.url, id!, 'Soup');
      assert.equal(labelled.status, 200, await labelled.clone().text());
      assert.ok(seen.has('opening'), `readiness said ${[...seen].join(', ')}`);
      // Creating the folder (PGlite's initdb) ran in a process of its own: in this one it peaked near 1 GB (~600 MB
      // of wasm memory that never shrinks), against about 300 MB for the service with its store open.
      const peakMiB =
        Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${server.proc.pid}/status`, 'utf8'))![1]) / 1024;
      assert.ok(peakMiB < 600, `peak RSS ${peakMiB.toFixed(0)} MiB`);
    } finally {
      await server.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('labels off', () => {
  it('gives predictions no id and answers /labels and /accuracy 404', async () => {
    const server = await startServer({ env: { LABELS: 'off' } });
    try {
      const answer = await predictJson(server.url, bundledTestPhoto());
      assert.equal(answer.id, undefined);
      assert.equal((await postLabel(server.url, newPredictionId(), 'Soup')).status, 404);
      assert.equal((await fetch(`${server.url}/accuracy`)).status, 404);
    } finally {
      await server.stop();
    }
  });
});
