import type { Profile } from './profile';
import { RunDirWriter } from './run-dir-writer';
import { StageTally, type LatencyRow, type RequestOutcome } from './stage-tally';
import { hostHeaders, parseBaseUrl, preflight, readLiveAccuracy, readModelInfo, targetPath } from './target';
import { runStage } from './virtual-users';

export interface LoadTestOptions {
  /** base URL of the service, e.g. http://34.1.2.3 or http://127.0.0.1:3000 */
  url: string;
  path: string;
  profile: Profile;
  outDir: string;
  timeoutMs: number;
  keepAlive: boolean;
  /**
   * Sent as Host on every request: a KServe (Knative) url names a virtual host, which the cluster's ingress
   * routes by this header when --url is the ingress address and the name has no DNS record.
   */
  hostHeader?: string;
  interrupt?: AbortSignal;
  onStageStart?: (index: number) => void;
  onOutcome?: (outcome: RequestOutcome, tally: StageTally) => void;
  onStageEnd?: (row: LatencyRow) => void;
}

export interface LoadTestResult {
  outDir: string;
  stagesRun: number;
  interrupted: boolean;
  requests: number;
  ok: number;
}

/**
 * One load test from start to end: check the target, then run the profile's stages one after another, each
 * stage's rows written as it ends.
 */
export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestResult> {
  const base = parseBaseUrl(options.url);
  const path = targetPath(base, options.path);
  const headers = hostHeaders(options.hostHeader);
  const preflightResult = await preflight(base, options.path, options.timeoutMs, headers);
  const modelInfo = await readModelInfo(base, headers);
  const files = new RunDirWriter(options.outDir);
  const meta = {
    tool: 'gourmetgram loadtest',
    url: base.href,
    path,
    profile: options.profile,
    timeoutMs: options.timeoutMs,
    keepAlive: options.keepAlive,
    hostHeader: options.hostHeader ?? null,
    startedAt: new Date().toISOString(),
    endedAt: null as string | null,
    interrupted: false,
    preflight: preflightResult,
    modelInfo,
  };
  files.meta(meta);

  const result: LoadTestResult = {
    outDir: options.outDir,
    stagesRun: 0,
    interrupted: false,
    requests: 0,
    ok: 0,
  };
  try {
    for (const [index, stage] of options.profile.stages.entries()) {
      if (options.interrupt?.aborted) break;
      options.onStageStart?.(index);
      const tally = new StageTally(index, stage);
      const timing = await runStage({
        origin: base.origin,
        path,
        stage,
        timeoutMs: options.timeoutMs,
        keepAlive: options.keepAlive,
        headers,
        interrupt: options.interrupt,
        onOutcome: (outcome) => {
          tally.add(outcome);
          files.request(index + 1, outcome);
          options.onOutcome?.(outcome, tally);
        },
      });
      const row = files.stage(tally, timing.startedAt, timing.endedAt, timing.interrupted);
      result.stagesRun++;
      result.requests += row.requests;
      result.ok += row.ok;
      options.onStageEnd?.(row);
      if (timing.interrupted) break;
    }
  } finally {
    result.interrupted = options.interrupt?.aborted ?? false;
    files.meta({ ...meta, endedAt: new Date().toISOString(), interrupted: result.interrupted });
    const live = await readLiveAccuracy(base, headers);
    if (live) files.liveAccuracy(live);
    await files.close();
  }
  return result;
}
