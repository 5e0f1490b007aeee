// The monitor on a Docker host (strategy docker): the real undici client against a stand-in Docker Engine
// API on a unix socket in a temporary folder, serving the hand-written answers of tests/fixtures/tools/docker.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'csv-parse/sync';
import { DockerSampler, DockerUnreachableError, cpuCores } from '../../tools/monitor/docker';
import { RESOURCE_COLUMNS } from '../../tools/monitor/sample';

const ROOT = join(__dirname, '..', '..');
const FIXTURES = join(__dirname, '..', 'fixtures', 'tools', 'docker');
const fixture = (name: string): unknown => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));
const SELECTOR =
  'app.kubernetes.io/name=gourmetgram,app.kubernetes.io/component=classifier,app.kubernetes.io/instance=docker';

const [HEALTHY, STARTING] = (fixture('containers.json') as { Id: string }[]).map((c) => c.Id);

describe('monitor against a fake Docker Engine API', () => {
  let server: Server;
  let socket: string;
  const filters: unknown[] = [];
  let statsFail = false;

  before(async () => {
    socket = join(mkdtempSync(join(tmpdir(), 'gg-docker-')), 'docker.sock');
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://docker');
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === '/containers/json') {
        filters.push(JSON.parse(url.searchParams.get('filters') ?? 'null'));
        return send(200, fixture('containers.json'));
      }
      const m = /^\/containers\/([0-9a-f]+)\/(json|stats)$/.exec(url.pathname);
      const which = m?.[1] === HEALTHY ? 'healthy' : m?.[1] === STARTING ? 'starting' : undefined;
      if (m && which) {
        if (m[2] === 'json') return send(200, fixture(`inspect-${which}.json`));
        if (url.searchParams.get('stream') !== 'false')
          return send(400, { message: 'test wants stream=false' });
        if (statsFail) return send(500, { message: 'cgroup read failed' });
        return send(200, fixture(`stats-${which}.json`));
      }
      send(404, { message: `page not found: ${url.pathname}` });
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sums reservations, limits and usage of the running containers, healthy ones as ready', async () => {
    const sampler = new DockerSampler({ host: `unix://${socket}`, selector: SELECTOR }, () => {});
    const sample = await sampler.sample(new Date('2026-12-01T10:00:00Z'));
    assert.deepEqual(sample, {
      time: '2026-12-01T10:00:00.000Z',
      n_replica: 2,
      cpu_req_core: 1,
      mem_req_KB: 786432,
      cpu_lim_core: 2,
      mem_lim_KB: 1048576,
      cpu_use_core: 0.75,
      mem_use_KB: 399360,
      n_ready: 1,
      n_unready: 1,
      metrics: 'ok',
    });
    assert.deepEqual(filters.at(-1), { label: SELECTOR.split(',') });
  });

  it('leaves usage empty and says why when the engine cannot read stats', async () => {
    statsFail = true;
    try {
      const warnings: string[] = [];
      const sampler = new DockerSampler({ host: `unix://${socket}`, selector: SELECTOR }, (m) =>
        warnings.push(m),
      );
      const sample = await sampler.sample();
      assert.equal(sample.metrics, 'error');
      assert.equal(sample.cpu_use_core, null);
      assert.equal(sample.cpu_lim_core, 2, 'limits are still reported');
      assert.match(warnings[0] ?? '', /HTTP 500.*cgroup read failed/);
    } finally {
      statsFail = false;
    }
  });

  it('refuses an ssh:// host with the command that forwards its socket', () => {
    assert.throws(
      () => new DockerSampler({ host: 'ssh://node-0', selector: SELECTOR }, () => {}),
      (err: unknown) => err instanceof DockerUnreachableError && /ssh -nNT -L/.test(err.message),
    );
  });

  it('refuses any other host with the forms it takes', () => {
    assert.throws(
      () => new DockerSampler({ host: 'node-0:2375', selector: SELECTOR }, () => {}),
      (err: unknown) =>
        err instanceof DockerUnreachableError &&
        /--docker "node-0:2375" is not a Docker host.*tcp:\/\//.test(err.message),
    );
  });

  it('has no CPU figure without an earlier reading', () => {
    assert.equal(cpuCores({ cpu_stats: { cpu_usage: { total_usage: 5 }, online_cpus: 2 } }), null);
  });

  it('the CLI writes the same CSV columns for the container, then exits 2 on a host that is not there', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'gg-monitor-')), 'docker', 'resources.csv');
    await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'tools/monitor/main.ts',
        '--docker',
        `unix://${socket}`,
        '--instance',
        'docker',
        '--interval',
        '0.3',
        '--duration',
        '0.5',
        '--out',
        out,
      ],
      { cwd: ROOT },
    );
    const text = readFileSync(out, 'utf8');
    assert.equal(text.split('\n')[0], RESOURCE_COLUMNS.join(','));
    const rows = parse(text, { columns: true }) as Record<string, string>[];
    assert.ok(rows.length >= 1);
    assert.equal(rows[0]!.n_replica, '2');
    assert.equal(rows[0]!.cpu_use_core, '0.75');

    await assert.rejects(
      promisify(execFile)(
        process.execPath,
        [
          '--import',
          'tsx',
          'tools/monitor/main.ts',
          '--docker',
          `unix://${socket}.absent`,
          '--duration',
          '1',
        ],
        { cwd: ROOT },
      ),
      (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr ?? '', /cannot list containers on unix:\/\/.*ENOENT/);
        return true;
      },
    );
  });
});
