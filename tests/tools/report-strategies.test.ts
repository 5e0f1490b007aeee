// The report over every strategy at once: a kserve run that scaled from zero (fixture, worked by hand in
// fixtures/tools/run-dirs/README.md) and a docker run beside the k8s and hpa ones, in one table.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readModelAccuracy } from '../../tools/report/accuracy';
import { writeReport } from '../../tools/report/main';
import { readRun } from '../../tools/report/read-run';
import { summariseRun } from '../../tools/report/summary';

const FIXTURES = join(__dirname, '..', 'fixtures', 'tools');
const RUNS = join(FIXTURES, 'run-dirs');
const MODEL_CARD = join(FIXTURES, 'metadata.json');
const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual} ≠ ${expected}`);

describe('report across the strategies', () => {
  it('kserve: samples with no pod count as zero replicas and zero use, not as missing data', () => {
    const run = readRun(join(RUNS, 'kserve'));
    const s = summariseRun(run, readModelAccuracy(MODEL_CARD, run.modelInfo));
    assert.equal(s.samples, 4, 'the sample before the load is left out');
    close(s.mean_replicas, 1, 'replicas');
    close(s.mean_ready, 0.75, 'ready replicas');
    close(s.cpu_req_core, 0.525, 'cpu requested');
    close(s.mem_req_KB, 565248, 'memory requested');
    close(s.cpu_use_core, 0.45, 'cpu used');
    close(s.mem_use_KB, 322500, 'memory used');
    // The run served version 3, the card's: its test figure.
    assert.equal(s.accuracy, 0.685);
  });

  it('puts k8s, hpa, docker and kserve side by side in one table', async () => {
    const runs = mkdtempSync(join(tmpdir(), 'gg-report-runs-'));
    // A docker run: the k8s load, and the container's row as `monitor --docker` writes it.
    cpSync(join(RUNS, 'k8s'), join(runs, 'docker'), { recursive: true });
    writeFileSync(
      join(runs, 'docker', 'resources.csv'),
      'time,n_replica,cpu_req_core,mem_req_KB,cpu_lim_core,mem_lim_KB,cpu_use_core,mem_use_KB,n_ready,n_unready,metrics\n' +
        '2026-11-20T10:00:00.000Z,1,0.5,393216,1,524288,0.3,280000,1,0,ok\n' +
        '2026-11-20T10:02:00.000Z,1,0.5,393216,1,524288,0.9,300000,1,0,ok\n',
    );
    const out = join(runs, 'report');
    await writeReport({
      runDirs: [join(RUNS, 'k8s'), join(RUNS, 'hpa'), join(runs, 'docker'), join(RUNS, 'kserve')],
      outDir: out,
      modelCard: MODEL_CARD,
    });
    const md = readFileSync(join(out, 'comparison.md'), 'utf8');
    assert.match(md, /\| \| k8s \| hpa \| docker \| kserve \|/);
    assert.match(md, /\| replicas \(mean\) \| 1\.00 \| 2\.25 \| 1\.00 \| 1\.00 \|/);
    assert.match(md, /\| trans rate \(\/s\) \| 0\.45 \| 0\.58 \| 0\.45 \| 0\.58 \|/);
    assert.match(md, /\| CPU used \(cores\) \| 0\.40 \| 0\.63 \| 0\.60 \| 0\.45 \|/);
    assert.match(md, /\| mem req \(MiB\) \| 512 \| 1152 \| 384 \| 552 \|/);
    assert.doesNotMatch(md, /no monitor sample/);
  });
});
