/**
 * npm run loadtest -- --url <base url> [--profile course|quick|<file.json>] [--out <dir>]
 *
 * Replays the course's siege sequence against <url>/test and writes a run directory (see tools/shared/run-files.ts).
 * Exit codes: 0 done, 2 bad URL or arguments, 130 interrupted (what was measured is kept).
 */
import { join } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { loadProfile, profileSeconds, type Profile } from './profile';
import { runLoadTest } from './run-load-test';
import { BadTargetError } from './target';

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

const defaultOut = () => join('runs', `loadtest-${new Date().toISOString().replace(/[:.]/g, '-')}`);

interface Options {
  url: string;
  profile: string;
  out?: string;
  path: string;
  timeout: number;
  keepAlive: boolean;
  hostHeader?: string;
  progress: boolean;
}

function parseArguments(): Options {
  return new Command('loadtest')
    .description("Replays the course's siege load sequence against the GourmetGram service")
    .requiredOption('--url <base url>', 'service base URL, e.g. http://34.1.2.3 or http://127.0.0.1:3000')
    .option('--profile <name|file>', 'course (30 min), quick (2 min), or a JSON profile file', 'course')
    .option('--out <dir>', 'run directory to create (default runs/loadtest-<time>)')
    .option('--path <path>', 'endpoint to load', '/test')
    .option('--timeout <seconds>', 'per-request timeout (siege default 30)', positiveNumber, 30)
    .option('--keep-alive', 'reuse connections (siege default: a new connection per request)', false)
    .option(
      '--host-header <host>',
      "Host header for every request: a kserve url's host name, when --url is the cluster ingress's address",
    )
    .option('--no-progress', 'no progress bar')
    .parse()
    .opts<Options>();
}

/** The progress bar on stderr, fed by the run's callbacks; a no-op without --progress. */
function progressBar(profile: Profile, enabled: boolean) {
  const totalSeconds = profileSeconds(profile);
  const bar = new SingleBar(
    {
      format:
        'stage {stage}/{stages} c{users} d{delay}s |{bar}| {elapsed}/{total}s  ok {ok}  failed {failed}  last p50 {p50} ms',
      hideCursor: true,
      stream: process.stderr,
    },
    Presets.shades_classic,
  );
  let ok = 0;
  let failed = 0;
  let ticker: NodeJS.Timeout | undefined;
  let currentStage = 0;
  let lastP50 = '-';
  const payload = () => ({
    stage: currentStage + 1,
    stages: profile.stages.length,
    users: profile.stages[currentStage]?.users,
    delay: profile.stages[currentStage]?.delaySeconds,
    ok,
    failed,
    p50: lastP50,
  });
  // Started with the first stage, not before: a URL that fails its preflight prints its reason, not a bar.
  const start = () => {
    if (!enabled) return;
    const startedAt = Date.now();
    bar.start(totalSeconds, 0, { ...payload(), elapsed: 0 });
    ticker = setInterval(() => {
      const elapsed = Math.round((Date.now() - startedAt) / 1000);
      bar.update(Math.min(elapsed, totalSeconds), { ...payload(), elapsed });
    }, 1000);
  };
  return {
    onStageStart: (index: number) => {
      currentStage = index;
      if (index === 0) start();
    },
    onOutcome: (outcome: { error: unknown }) => (outcome.error === null ? ok++ : failed++),
    onStageEnd: (row: { p50_ms: number }) =>
      (lastP50 = Number.isFinite(row.p50_ms) ? String(row.p50_ms) : '-'),
    stop: () => {
      if (ticker) clearInterval(ticker);
      bar.stop();
    },
  };
}

/** Ctrl-C once ends the run and keeps what was measured; twice quits at once. */
function interruptOnSigint(): AbortSignal {
  const interrupt = new AbortController();
  process.once('SIGINT', () => {
    console.error('\nloadtest: interrupted; writing what was measured (Ctrl-C again to quit at once)');
    interrupt.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  return interrupt.signal;
}

async function main(): Promise<number> {
  const opts = parseArguments();
  let profile: Profile;
  try {
    profile = loadProfile(opts.profile);
  } catch (err) {
    console.error(`loadtest: ${(err as Error).message}`);
    return 2;
  }
  const interrupt = interruptOnSigint();
  const { stop, ...progress } = progressBar(profile, opts.progress);
  try {
    const result = await runLoadTest({
      url: opts.url,
      path: opts.path,
      profile,
      outDir: opts.out ?? defaultOut(),
      timeoutMs: opts.timeout * 1000,
      keepAlive: opts.keepAlive,
      hostHeader: opts.hostHeader,
      interrupt,
      ...progress,
    });
    stop();
    console.error(
      `loadtest: ${result.stagesRun}/${profile.stages.length} stages, ${result.requests} requests, ${result.ok} ok → ${result.outDir}`,
    );
    return result.interrupted ? 130 : 0;
  } catch (err) {
    stop();
    if (err instanceof BadTargetError) {
      console.error(`loadtest: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error('loadtest failed:', err);
    process.exit(1);
  },
);
