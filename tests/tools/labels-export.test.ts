import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadDataset } from '../../model/train/dataset';
import { REPO_ROOT, startServer } from '../../tools/shared/service-process';
import { bundledTestPhoto, makeJpeg } from '../helpers/images';
import { accuracy, CLASS_IDS, labelsOpen, labelWithRetry, predictJson } from '../helpers/labels-client';

// The data flywheel end to end on the embedded store: users label photos through the service, `npm run labels
// -- export` writes them as <dir>/<Class>/<id>.jpg, training's dataset reader takes that layout as it is, and
// `npm run evaluate` on the held-out export gives /accuracy's number.

function runTsx(script: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, script), ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('npm run labels -- export, then evaluate', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gg-flywheel-'));
  const dataDir = path.join(tmp, 'store');
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('exports labelled photos in the training layout and evaluate reproduces /accuracy', async () => {
    const server = await startServer({ env: { LABELS: 'on', LABEL_DATA_DIR: dataDir } });
    let live;
    const heldOutIds: string[] = [];
    try {
      await labelsOpen(server.url);
      const photos = [
        bundledTestPhoto(),
        ...(await Promise.all([1, 2, 3, 4, 5, 6].map((s) => makeJpeg(320, 240, s)))),
      ];
      for (const [i, photo] of photos.entries()) {
        // half the users agree with the model (learnt from an ordinary prediction of the same photo, which
        // nobody labels), half name another class: an accuracy strictly between 0 and 1 to reproduce
        const modelSays = (await predictJson(server.url, photo, false)).label!;
        const other = CLASS_IDS.find((c) => c.replace('-', ' ') !== modelSays.replace('/', ' '))!;
        const held = await predictJson(server.url, photo, true);
        await labelWithRetry(server.url, held.id!, i % 2 === 0 ? modelSays : other);
        heldOutIds.push(held.id!);
      }
      // two corrections, which a held-out export leaves out
      for (const seed of [7, 8]) {
        const plain = await predictJson(server.url, await makeJpeg(300, 300, seed));
        await labelWithRetry(server.url, plain.id!, 'Soup');
      }
      live = (await accuracy(server.url)).models[0]!.heldOut;
    } finally {
      assert.equal(await server.stop(), 0);
    }

    const heldOutDir = path.join(tmp, 'heldout');
    const exported = runTsx('tools/labels/main.ts', [
      'export',
      '--out',
      heldOutDir,
      '--kind',
      'heldout',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(exported.status, 0, exported.out);
    assert.match(exported.out, /7 labelled photos \(heldout\)/);
    const files = fs
      .readdirSync(heldOutDir)
      .flatMap((c) => fs.readdirSync(path.join(heldOutDir, c)).map((f) => `${c}/${f}`));
    assert.equal(files.length, heldOutIds.length);
    for (const id of heldOutIds)
      assert.ok(
        files.some((f) => f.endsWith(`/${id}.jpg`)),
        id,
      );
    const dataset = loadDataset([heldOutDir], { validationPercent: 15 });
    assert.deepEqual(
      dataset.labels.map((l) => l.id),
      [...CLASS_IDS],
      "class folders named by the labels' ids keep Food-11's classes and order",
    );
    assert.equal(dataset.samples.length, heldOutIds.length);

    const all = runTsx('tools/labels/main.ts', [
      'export',
      '--out',
      path.join(tmp, 'all'),
      '--data-dir',
      dataDir,
    ]);
    assert.match(all.out, /9 labelled photos \(all\)/);

    const reportDir = path.join(tmp, 'evaluation');
    const evaluated = runTsx('model/cli/evaluate.ts', ['--data', heldOutDir, '--report-dir', reportDir]);
    assert.equal(evaluated.status, 0, evaluated.out);
    const report = JSON.parse(fs.readFileSync(path.join(reportDir, 'evaluation.json'), 'utf8')) as {
      looks: Record<string, Record<string, { accuracy: number }>>;
    };
    const offline = Object.values(report.looks['as-is']!)[0]!.accuracy;
    assert.ok(live.accuracy! > 0 && live.accuracy! < 1, `a telling accuracy: ${live.accuracy}`);
    // The export holds the photos as kept (512 px JPEG), so the model sees what the service saw, re-encoded.
    assert.equal(offline, live.accuracy, `evaluate ${offline} vs /accuracy ${live.accuracy}`);
  });
});
