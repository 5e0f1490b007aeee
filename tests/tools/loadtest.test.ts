import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'csv-parse/sync';
import { BUILTIN_PROFILES, loadProfile, profileSeconds, type Profile } from '../../tools/loadtest/profile';
import { runLoadTest } from '../../tools/loadtest/run-load-test';
import { LATENCY_COLUMNS } from '../../tools/loadtest/stage-tally';
import { parseSiegeLog, SIEGE_LOG_HEADER } from '../../tools/shared/siege-log';

const ROOT = join(__dirname, '..', '..');
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

describe('load profiles', () => {
  it("course is the course's 30 one-minute stages in its order", () => {
    const course = BUILTIN_PROFILES.course();
    assert.equal(course.stages.length, 30);
    assert.equal(profileSeconds(course), 30 * 60);
    const shape = course.stages.map((s) => `c${s.users}d${s.delaySeconds}`);
    const expected = [
      ...Array(5).fill('c20d100'),
      ...Array(2).fill('c20d50'),
      ...Array(2).fill('c20d10'),
      'c20d3',
      ...Array(5).fill('c20d1'),
      ...Array(5).fill('c30d1'),
      'c20d3',
      ...Array(2).fill('c20d60'),
      ...Array(7).fill('c20d80'),
    ];
    assert.deepEqual(shape, expected);
  });

  it('quick keeps the shape (users, think time relative to stage length) in two minutes', () => {
    const course = BUILTIN_PROFILES.course();
    const quick = BUILTIN_PROFILES.quick();
    assert.equal(profileSeconds(quick), 120);
    quick.stages.forEach((quickStage, i) => {
      const courseStage = course.stages[i]!;
      assert.equal(quickStage.users, courseStage.users);
      const thinkShare = (stage: typeof quickStage) => stage.delaySeconds / stage.durationSeconds;
      assert.ok(Math.abs(thinkShare(quickStage) - thinkShare(courseStage)) < 1e-3);
    });
  });

  it('reads a JSON profile with repeats, and says what is wrong with a bad one', () => {
    const dir = tmp('gg-profile-');
    const valid = join(dir, 'p.json');
    writeFileSync(
      valid,
      JSON.stringify({ stages: [{ users: 2, delaySeconds: 0, durationSeconds: 1, repeat: 3 }] }),
    );
    assert.equal(loadProfile(valid).stages.length, 3);
    const invalid = join(dir, 'bad.json');
    writeFileSync(invalid, JSON.stringify({ stages: [{ users: 0, durationSeconds: 1 }] }));
    assert.throws(() => loadProfile(invalid), /bad\.json is invalid[\s\S]*users[\s\S]*delaySeconds/);
    assert.throws(() => loadProfile('nope'), /neither course nor quick nor a readable JSON file/);
  });
});

/**
 * A target whose every answer is decided by a counter, so the test knows exactly how many of each kind of failure
 * the load test must report: every 5th request is shed (503), every 7th a 500, every 11th never answered
 * (timeout), every 13th has its connection destroyed; the rest are 200 after 5-15 ms.
 */
class ScriptedTarget {
  server: Server;
  served = { ok: 0, shed: 0, error500: 0, hung: 0, reset: 0 };
  private n = 0;
  private readonly sockets = new Set<Socket>();
  private readonly hung: ServerResponse[] = [];
  origin = '';

  constructor() {
    this.server = createServer((req, res) => {
      if (req.url !== '/test') {
        res.writeHead(404).end();
        return;
      }
      const n = ++this.n;
      if (n === 1) {
        this.served.ok++; // the load test's preflight request
        res.end('{"label":"Bread"}');
      } else if (n % 13 === 0) {
        this.served.reset++;
        req.socket.destroy();
      } else if (n % 11 === 0) {
        this.served.hung++;
        this.hung.push(res);
      } else if (n % 7 === 0) {
        this.served.error500++;
        res.writeHead(500).end('{"error":"boom"}');
      } else if (n % 5 === 0) {
        this.served.shed++;
        res.writeHead(503, { 'retry-after': '1' }).end('{"error":"busy"}');
      } else {
        setTimeout(
          () => {
            this.served.ok++;
            res.end('{"label":"Bread","probability":0.9}');
          },
          5 + (n % 3) * 5,
        );
      }
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  /** a fresh script: the next request is a run's preflight */
  reset(): void {
    this.n = 0;
    this.served = { ok: 0, shed: 0, error500: 0, hung: 0, reset: 0 };
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const twoStages: Profile = {
  name: 'test',
  stages: [
    { users: 4, delaySeconds: 0.05, durationSeconds: 0.8 },
    { users: 6, delaySeconds: 0, durationSeconds: 0.6 },
  ],
};

describe('load test against a scripted local target', () => {
  let target: ScriptedTarget;
  before(async () => {
    target = new ScriptedTarget();
    await target.start();
  });
  after(() => target.close());

  it('writes one siege-log row and one latency row per stage, counting every failure by its kind', async () => {
    target.reset();
    const outDir = join(tmp('gg-load-'), 'run');
    const result = await runLoadTest({
      url: target.origin,
      path: '/test',
      profile: twoStages,
      outDir,
      timeoutMs: 250,
      keepAlive: false,
    });
    assert.equal(result.interrupted, false);
    assert.equal(result.stagesRun, 2);

    const siegeText = readFileSync(join(outDir, 'siege.log'), 'utf8');
    assert.ok(siegeText.startsWith(SIEGE_LOG_HEADER), 'siege header, byte for byte');
    const siege = parseSiegeLog(siegeText, 'siege.log');
    assert.equal(siege.length, 2);
    for (const line of siegeText.trim().split('\n').slice(1)) {
      assert.equal(line.split(',').length, 10);
      assert.match(line, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,/);
    }

    const latencyText = readFileSync(join(outDir, 'latency.csv'), 'utf8');
    assert.equal(latencyText.split('\n')[0], LATENCY_COLUMNS.join(','));
    const rows = parse(latencyText, { columns: true, cast: true }) as Record<string, number | string>[];
    assert.equal(rows.length, 2);
    const sum = (k: string) => rows.reduce((a, r) => a + Number(r[k]), 0);

    // what the client reports equals what the server did (the preflight is the server's first ok)
    const s = target.served;
    assert.equal(sum('ok'), s.ok - 1);
    assert.equal(sum('shed_503'), s.shed);
    assert.equal(sum('non_2xx'), s.error500);
    assert.equal(sum('timeout'), s.hung);
    assert.equal(sum('connection'), s.reset);
    assert.equal(sum('requests'), s.ok - 1 + s.shed + s.error500 + s.hung + s.reset);
    assert.ok(s.shed > 0 && s.error500 > 0 && s.hung > 0 && s.reset > 0, JSON.stringify(s));

    rows.forEach((row, i) => {
      const log = siege[i]!;
      const stage = twoStages.stages[i]!;
      assert.equal(row.stage, i + 1);
      assert.equal(row.users, stage.users);
      assert.equal(row.status, 'complete');
      // siege's view of the same stage: hits are the <500 answers, failures everything else
      assert.equal(log.okay, row.ok);
      assert.equal(log.trans, row.ok);
      assert.equal(log.failed, Number(row.requests) - Number(row.ok));
      assert.ok(Number(row.p50_ms) <= Number(row.p90_ms) && Number(row.p90_ms) <= Number(row.p99_ms));
      assert.ok(Number(row.p99_ms) <= Number(row.max_ms));
      // requests still in flight at the planned end finish inside the stage, bounded by the timeout
      assert.ok(Number(row.elapsed_s) >= stage.durationSeconds);
      assert.ok(Number(row.elapsed_s) < stage.durationSeconds + 1);
    });

    const requests = parse(readFileSync(join(outDir, 'requests.csv'), 'utf8'), { columns: true });
    assert.equal(requests.length, sum('requests'));
    const meta = JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8'));
    assert.equal(meta.interrupted, false);
    assert.equal(meta.preflight.status, 200);
    assert.ok(meta.endedAt);
  });

  it('an interrupt (Ctrl-C) keeps the stages measured so far and marks the cut one', async () => {
    target.reset();
    const outDir = join(tmp('gg-load-'), 'run');
    const interrupt = new AbortController();
    const result = await runLoadTest({
      url: target.origin,
      path: '/test',
      profile: {
        name: 'long',
        stages: [twoStages.stages[0]!, { ...twoStages.stages[1]!, durationSeconds: 30 }],
      },
      outDir,
      timeoutMs: 250,
      keepAlive: true,
      interrupt: interrupt.signal,
      onStageStart: (index) => {
        if (index === 1) setTimeout(() => interrupt.abort(), 300);
      },
    });
    assert.equal(result.interrupted, true);
    const rows = parse(readFileSync(join(outDir, 'latency.csv'), 'utf8'), { columns: true }) as Record<
      string,
      string
    >[];
    assert.deepEqual(
      rows.map((r) => r.status),
      ['complete', 'interrupted'],
    );
    assert.ok(Number(rows[1]!.elapsed_s) < 5, 'stopped at once, not at the 30 s planned end');
    assert.equal(parseSiegeLog(readFileSync(join(outDir, 'siege.log'), 'utf8'), 'siege.log').length, 2);
    assert.equal(JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8')).interrupted, true);
  });

  it('many users over many stages add no listeners to the caller’s interrupt signal (no leak warning)', async () => {
    target.reset();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const interrupt = new AbortController();
    try {
      const stage = { users: 25, delaySeconds: 0.01, durationSeconds: 0.2 };
      await runLoadTest({
        url: target.origin,
        path: '/test',
        profile: { name: 'many', stages: Array(12).fill(stage) },
        outDir: join(tmp('gg-load-'), 'run'),
        timeoutMs: 250,
        keepAlive: true,
        interrupt: interrupt.signal,
      });
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on a later tick
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(
      warnings.filter((w) => w === 'MaxListenersExceededWarning'),
      [],
    );
  });

  it('the CLI on Ctrl-C (SIGINT) writes the cut stage and exits 130', async () => {
    target.reset();
    const dir = tmp('gg-load-');
    const profileFile = join(dir, 'profile.json');
    writeFileSync(
      profileFile,
      JSON.stringify({
        stages: [
          { users: 3, delaySeconds: 0.05, durationSeconds: 0.5 },
          { users: 3, delaySeconds: 0.05, durationSeconds: 60 },
        ],
      }),
    );
    const outDir = join(dir, 'run');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'tools/loadtest/main.ts',
        '--url',
        target.origin,
        '--profile',
        profileFile,
        '--out',
        outDir,
        '--timeout',
        '0.25',
        '--no-progress',
      ],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const latency = join(outDir, 'latency.csv');
    // wait until the first stage's row is on disk, then press Ctrl-C during the second
    for (let i = 0; i < 200; i++) {
      if (existsSync(latency) && readFileSync(latency, 'utf8').trim().split('\n').length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    const rows = parse(readFileSync(latency, 'utf8'), { columns: true }) as Record<string, string>[];
    assert.deepEqual(
      rows.map((r) => r.status),
      ['complete', 'interrupted'],
    );
    assert.match(stderr, /interrupted; writing what was measured/);
  });

  it('the CLI exits 2 with a clear message when nothing listens at --url', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(
      promisify(execFile)(
        process.execPath,
        [
          '--import',
          'tsx',
          'tools/loadtest/main.ts',
          '--url',
          `http://127.0.0.1:${port}`,
          '--profile',
          'quick',
          '--out',
          join(tmp('gg-load-'), 'run'),
          '--no-progress',
        ],
        { cwd: ROOT },
      ),
      (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr ?? '', /cannot reach http:\/\/127\.0\.0\.1:\d+\/test \(ECONNREFUSED\)/);
        return true;
      },
    );
  });

  it('the CLI exits 2 when --url answers but is not the service', async () => {
    await assert.rejects(
      promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'tools/loadtest/main.ts', '--url', `${target.origin}/elsewhere`, '--no-progress'],
        { cwd: ROOT },
      ),
      (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr ?? '', /answered HTTP 404, not 2xx/);
        return true;
      },
    );
  });
});
