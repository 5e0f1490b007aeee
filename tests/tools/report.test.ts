import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'csv-parse/sync';
import sharp from 'sharp';
import { readLiveAccuracy, readModelAccuracy } from '../../tools/report/accuracy';
import { writeReport } from '../../tools/report/main';
import { readRun } from '../../tools/report/read-run';
import { summariseRun } from '../../tools/report/summary';

const ROOT = join(__dirname, '..', '..');
const FIXTURES = join(__dirname, '..', 'fixtures', 'tools');
const RUNS = join(FIXTURES, 'run-dirs');
const MODEL_CARD = join(FIXTURES, 'metadata.json');

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual} ≠ ${expected}`);

describe('report arithmetic on the fixture runs (answers worked by hand in fixtures/tools/run-dirs/README.md)', () => {
  it('k8s: the course figures, percentiles, error rate, resources inside the load window, accuracy', () => {
    const run = readRun(join(RUNS, 'k8s'));
    const s = summariseRun(run, readModelAccuracy(MODEL_CARD, run.modelInfo));
    assert.equal(s.run, 'k8s');
    assert.equal(s.stages, 3);
    close(s.duration_s, 150, 'duration');
    assert.equal(s.okay, 68);
    close(s.trans_rate, 68 / 150, 'transaction rate');
    close(s.resp_time_s, 48 / 68, 'response time');
    assert.equal(s.p50_ms, 340);
    assert.equal(s.p99_ms, 680);
    close(s.error_rate, 2 / 70, 'error rate');
    assert.equal(s.samples, 4);
    close(s.mean_replicas, 1, 'replicas');
    close(s.cpu_req_core, 0.5, 'cpu requested');
    close(s.cpu_use_core, 0.4, 'cpu used');
    close(s.mem_req_KB, 524288, 'memory requested');
    close(s.mem_use_KB, 315000, 'memory used');
    // The run served version 2; the card describes version 3: no figure rather than another model's.
    assert.ok(Number.isNaN(s.accuracy));
  });

  it('hpa: replicas vary, one sample without usage is left out of the usage means, the model card by default', () => {
    const run = readRun(join(RUNS, 'hpa'));
    assert.equal(run.modelInfo, null);
    const s = summariseRun(run, readModelAccuracy(MODEL_CARD, run.modelInfo));
    close(s.trans_rate, 87 / 150, 'transaction rate');
    close(s.resp_time_s, 55.8 / 87, 'response time');
    assert.equal(s.p50_ms, 440);
    assert.equal(s.p99_ms, 870);
    close(s.error_rate, 1 / 88, 'error rate');
    close(s.mean_replicas, 2.25, 'replicas');
    close(s.mean_ready, 2, 'ready replicas');
    close(s.cpu_req_core, 1.125, 'cpu requested');
    close(s.cpu_use_core, 1.9 / 3, 'cpu used');
    close(s.mem_req_KB, 1179648, 'memory requested');
    close(s.mem_use_KB, 600000, 'memory used');
    assert.equal(s.accuracy, 0.685);
    assert.equal(s.accuracy_source, '3 test:food11');
  });

  it("k8s: the live accuracy of the version that ran, from the service's /accuracy saved with the run", () => {
    const run = readRun(join(RUNS, 'k8s'));
    const live = readLiveAccuracy(join(RUNS, 'k8s', 'accuracy.json'), run.modelInfo);
    const s = summariseRun(run, null, live);
    // version 2 ran: its 41 of 50 held-out labels, not version 3's 8 of 10
    close(s.live_accuracy, 0.82, 'live accuracy');
    assert.equal(s.live_accuracy_n, 50);
    close(s.live_accuracy_low, 0.6920394632569922, 'Wilson low');
    // without run.json's version: the version with the most labels; none saved: n/a
    assert.equal(readLiveAccuracy(join(RUNS, 'k8s', 'accuracy.json'), null)?.version, '2');
    assert.equal(readLiveAccuracy(join(RUNS, 'hpa', 'accuracy.json'), null), null);
    assert.equal(readLiveAccuracy(join(RUNS, 'k8s', 'accuracy.json'), { version: '9' }), null);
    assert.equal(readLiveAccuracy(join(RUNS, 'README.md'), null), null);
  });

  it('a missing or unreadable model card gives n/a accuracy, not a crash', () => {
    assert.equal(readModelAccuracy(join(FIXTURES, 'no-such-metadata.json'), null), null);
    assert.equal(readModelAccuracy(join(RUNS, 'README.md'), null), null);
  });
});

describe('report output', () => {
  it('writes the side-by-side table, the CSV and two valid PNG charts', async () => {
    const out = mkdtempSync(join(tmpdir(), 'gg-report-'));
    const files = await writeReport({
      runDirs: [join(RUNS, 'k8s'), join(RUNS, 'hpa')],
      outDir: out,
      modelCard: MODEL_CARD,
    });
    const md = readFileSync(join(out, 'comparison.md'), 'utf8');
    assert.match(md, /\| \| k8s \| hpa \|/);
    assert.match(md, /\| trans rate \(\/s\) \| 0\.45 \| 0\.58 \|/);
    assert.match(md, /\| resp time \(s\) \| 0\.706 \| 0\.641 \|/);
    assert.match(md, /\| replicas \(mean\) \| 1\.00 \| 2\.25 \|/);
    assert.match(md, /\| accuracy \| n\/a \| 68\.5 % \|/);
    assert.match(md, /\| live accuracy \(held-out\) \| 82\.0 % \| n\/a \|/);
    assert.match(md, /\| live accuracy 95 % CI \| 69\.2 % – 90\.2 %, n = 50 \| n\/a \|/);
    assert.match(md, /\| model served \| gourmetgram-food11 2 \(mobilenet_v2_0\.35, wasm\) \| n\/a \|/);
    assert.doesNotMatch(md, /did not use the same load profile/);

    const csv = parse(readFileSync(files.csv, 'utf8'), { columns: true }) as Record<string, string>[];
    assert.deepEqual(
      csv.map((r) => [r.run, r.okay, r.p99_ms]),
      [
        ['k8s', '68', '680'],
        ['hpa', '87', '870'],
      ],
    );

    assert.deepEqual(
      files.charts.map((f) => f.slice(out.length + 1)),
      ['resources.png', 'latency.png'],
    );
    for (const chart of files.charts) {
      const bytes = readFileSync(chart);
      assert.deepEqual(
        [...bytes.subarray(0, 8)],
        [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
        'PNG signature',
      );
      const meta = await sharp(bytes).metadata();
      assert.equal(meta.format, 'png');
      assert.ok(
        (meta.width ?? 0) > 800 && (meta.height ?? 0) > 400,
        `${chart}: ${meta.width}×${meta.height}`,
      );
      // a chart, not a blank page: many distinct colours (lines, shading, text)
      const { data } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
      const colours = new Set<number>();
      for (let i = 0; i < data.length; i += 3 * 7)
        colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
      assert.ok(colours.size > 50, `${chart} has only ${colours.size} colours`);
    }
  });

  it('without monitor data: resource figures n/a, no resources chart, the rest still reported', async () => {
    const runs = mkdtempSync(join(tmpdir(), 'gg-report-runs-'));
    cpSync(join(RUNS, 'k8s'), join(runs, 'lb'), { recursive: true });
    rmSync(join(runs, 'lb', 'resources.csv'));
    const out = join(runs, 'report');
    const log: string[] = [];
    const files = await writeReport({
      runDirs: [join(runs, 'lb')],
      outDir: out,
      modelCard: join(runs, 'missing.json'),
      log: (m) => log.push(m),
    });
    assert.match(files.markdown, /\| CPU used \(cores\) \| n\/a \|/);
    assert.match(files.markdown, /\| accuracy \| n\/a \|/);
    assert.match(files.markdown, /\| trans rate \(\/s\) \| 0\.45 \|/);
    assert.ok(!existsSync(join(out, 'resources.png')));
    assert.ok(existsSync(join(out, 'latency.png')));
    assert.ok(log.some((m) => /no resources\.csv/.test(m)));
  });

  it('says so when the runs were made with different load profiles', async () => {
    const runs = mkdtempSync(join(tmpdir(), 'gg-report-runs-'));
    cpSync(join(RUNS, 'hpa'), join(runs, 'hpa-30'), { recursive: true });
    const latency = join(runs, 'hpa-30', 'latency.csv');
    writeFileSync(latency, readFileSync(latency, 'utf8').replace(/Z,30,1,60,/, 'Z,40,1,60,'));
    const files = await writeReport({
      runDirs: [join(RUNS, 'k8s'), join(runs, 'hpa-30')],
      outDir: join(runs, 'report'),
      modelCard: MODEL_CARD,
    });
    assert.match(files.markdown, /did not use the same load profile/);
  });

  it('the CLI names what is missing when a directory is not a run', async () => {
    await assert.rejects(
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'tools/report/main.ts', FIXTURES], {
        cwd: ROOT,
      }),
      (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 2);
        assert.match(
          err.stderr ?? '',
          /has no siege\.log: point the report at directories written by npm run loadtest/,
        );
        return true;
      },
    );
  });
});
