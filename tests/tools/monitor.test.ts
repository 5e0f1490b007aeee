import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'csv-parse/sync';
import { ClusterUnreachableError, ResourceSampler } from '../../tools/monitor/cluster';
import { quantity, RESOURCE_COLUMNS } from '../../tools/monitor/sample';
import { startFakeKubeApi, type FakeKubeApi } from './fake-kube-api';

const SELECTOR = 'app.kubernetes.io/name=gourmetgram,app.kubernetes.io/instance=hpa';
const ROOT = join(__dirname, '..', '..');

describe('Kubernetes quantities', () => {
  it('reads CPU in cores and memory in bytes, every suffix form the API uses', () => {
    assert.equal(quantity('250m'), 0.25);
    assert.equal(quantity('2'), 2);
    assert.ok(Math.abs(quantity('123456789n') - 0.123456789) < 1e-12);
    assert.equal(quantity('1500u'), 0.0015);
    assert.equal(quantity('512Mi'), 512 * 1024 * 1024);
    assert.equal(quantity('1.5Gi'), 1.5 * 1024 ** 3);
    assert.equal(quantity('129M'), 129e6);
    assert.equal(quantity('1e3'), 1000);
    assert.equal(quantity(undefined), 0);
    assert.throws(() => quantity('lots'), /not a Kubernetes quantity/);
  });
});

describe('monitor against a fake API server serving the fixtures', () => {
  let api: FakeKubeApi;
  before(async () => {
    api = await startFakeKubeApi();
  });
  after(() => api.close());

  it('sums requests, limits and usage of live pods and tells ready from unready', async () => {
    api.metrics = 'ok';
    api.requests.length = 0;
    const warnings: string[] = [];
    const sampler = new ResourceSampler(
      { kubeconfig: api.kubeconfig, namespace: 'gourmetgram', selector: SELECTOR },
      (m) => warnings.push(m),
    );
    const sample = await sampler.sample(new Date('2026-11-20T10:06:00Z'));
    // hand-checked in tests/fixtures/tools/k8s/README.md
    assert.deepEqual(sample, {
      time: '2026-11-20T10:06:00.000Z',
      n_replica: 3,
      cpu_req_core: 1.5,
      mem_req_KB: 1572864,
      cpu_lim_core: 3,
      mem_lim_KB: 3145728,
      cpu_use_core: 0.37,
      mem_use_KB: 384800,
      n_ready: 2,
      n_unready: 1,
      metrics: 'ok',
    });
    assert.deepEqual(warnings, []);
    // the selector and namespace reach the API server: no summing of every pod in `default`
    assert.deepEqual(api.requests.map((r) => [r.path, r.labelSelector]).sort(), [
      ['/api/v1/namespaces/gourmetgram/pods', SELECTOR],
      ['/apis/metrics.k8s.io/v1beta1/namespaces/gourmetgram/pods', SELECTOR],
    ]);
    assert.ok(api.requests.every((r) => r.authorization === 'Bearer fixture-token'));
  });

  it('without metrics-server: says so once, leaves usage empty, keeps replicas, requests and limits', async () => {
    api.metrics = 'missing';
    const warnings: string[] = [];
    const sampler = new ResourceSampler(
      { kubeconfig: api.kubeconfig, namespace: 'gourmetgram', selector: SELECTOR },
      (m) => warnings.push(m),
    );
    const first = await sampler.sample();
    const second = await sampler.sample();
    for (const s of [first, second]) {
      assert.equal(s.metrics, 'missing');
      assert.equal(s.cpu_use_core, null);
      assert.equal(s.mem_use_KB, null);
      assert.equal(s.n_replica, 3);
      assert.equal(s.cpu_req_core, 1.5);
      assert.equal(s.mem_lim_KB, 3145728);
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /metrics-server is missing/);
    assert.match(warnings[0] as string, /HTTP 404/);
  });

  it('a pod list the API refuses is an error naming the namespace and the reason', async () => {
    api.podsStatus = 403;
    try {
      const sampler = new ResourceSampler(
        { kubeconfig: api.kubeconfig, namespace: 'gourmetgram', selector: SELECTOR },
        () => undefined,
      );
      await assert.rejects(sampler.sample(), (err: unknown) => {
        assert.ok(err instanceof ClusterUnreachableError);
        assert.match(err.message, /namespace "gourmetgram".*HTTP 403.*forbidden/);
        return true;
      });
    } finally {
      api.podsStatus = 200;
    }
  });

  it('the CLI writes the course columns plus ready/unready to a CSV, row by row, until --duration', async () => {
    api.metrics = 'missing';
    const out = join(mkdtempSync(join(tmpdir(), 'gg-monitor-')), 'hpa', 'resources.csv'); // run dir not made yet
    const { stderr } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'tools/monitor/main.ts',
        '--kubeconfig',
        api.kubeconfig,
        '--instance',
        'hpa',
        '--interval',
        '0.3',
        '--duration',
        '0.7',
        '--out',
        out,
      ],
      { cwd: ROOT },
    );
    assert.match(stderr, /metrics-server is missing/);
    const text = readFileSync(out, 'utf8');
    assert.equal(text.split('\n')[0], RESOURCE_COLUMNS.join(','));
    const rows = parse(text, { columns: true }) as Record<string, string>[];
    assert.ok(
      rows.length >= 2 && rows.length <= 3,
      `expected 2-3 samples in 0.7 s at 0.3 s, got ${rows.length}`,
    );
    for (const row of rows) {
      assert.equal(row.n_replica, '3');
      assert.equal(row.n_ready, '2');
      assert.equal(row.n_unready, '1');
      assert.equal(row.cpu_req_core, '1.5');
      assert.equal(row.cpu_use_core, '');
      assert.equal(row.metrics, 'missing');
      assert.ok(!Number.isNaN(Date.parse(row.time as string)));
    }
  });

  it('the CLI exits 2 and says how to get a kubeconfig when there is none', async () => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: mkdtempSync(join(tmpdir(), 'gg-home-')) };
    await assert.rejects(
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'tools/monitor/main.ts', '--duration', '1'], {
        cwd: ROOT,
        env,
      }),
      (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 2);
        assert.match(
          err.stderr ?? '',
          /no Kubernetes cluster configured: pass --kubeconfig or set KUBECONFIG/,
        );
        return true;
      },
    );
  });

  it('the CLI exits 2 with a message when the cluster refuses the pod list', async () => {
    api.podsStatus = 403;
    try {
      await assert.rejects(
        promisify(execFile)(
          process.execPath,
          ['--import', 'tsx', 'tools/monitor/main.ts', '--kubeconfig', api.kubeconfig, '--duration', '1'],
          { cwd: ROOT },
        ),
        (err: { code?: number; stderr?: string }) => {
          assert.equal(err.code, 2);
          assert.match(err.stderr ?? '', /cannot list pods in namespace "gourmetgram".*HTTP 403/);
          return true;
        },
      );
    } finally {
      api.podsStatus = 200;
    }
  });
});
