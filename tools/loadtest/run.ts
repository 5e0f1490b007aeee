import {
  createWriteStream,
  existsSync,
  mkdirSync,
  appendFileSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { stringify } from 'csv-stringify/sync';
import { request } from 'undici';
import { formatSiegeRow, SIEGE_LOG_HEADER } from '../shared/siege-log';
import { RUN_FILES } from '../shared/run-files';
import type { Profile } from './profile';
import { LATENCY_COLUMNS, StageTally, type LatencyRow, type RequestOutcome } from './stage-tally';
import { classifyRequestError, runStage } from './virtual-users';

/** The target cannot be load-tested: wrong URL, nothing listening, or not the service. Exit code 2. */
export class BadTargetError extends Error {}

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

export function parseBaseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new BadTargetError(`--url "${raw}" is not a URL; expected something like http://127.0.0.1:3000`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BadTargetError(`--url "${raw}" must start with http:// or https://`);
  }
  if (url.search || url.hash)
    throw new BadTargetError(`--url "${raw}": give the base URL without ?query or #hash`);
  return url;
}

/** scheme://host:port plus the base path, joined to the target path without doubling slashes */
function targetPath(base: URL, path: string): string {
  return `${base.pathname.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/** One request before the clock starts, so a typo fails in a second with a reason, not after 30 minutes of errors. */
async function preflight(
  base: URL,
  path: string,
  timeoutMs: number,
  headers: Record<string, string>,
): Promise<{ status: number; ms: number }> {
  const target = new URL(targetPath(base, path), base.origin).href;
  const t0 = performance.now();
  let status: number;
  try {
    const res = await request(target, { headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    status = res.statusCode;
    await res.body.dump();
  } catch (err) {
    const kind = classifyRequestError(err);
    const reason = (err as { code?: string }).code ?? (err as Error).message;
    throw new BadTargetError(
      kind === 'timeout'
        ? `GET ${target} did not answer within ${timeoutMs} ms; is the service up and ready?`
        : `cannot reach ${target} (${reason}); check --url and that the service is running and reachable from here`,
    );
  }
  if (status < 200 || status >= 300) {
    throw new BadTargetError(
      `GET ${target} answered HTTP ${status}, not 2xx; is --url the GourmetGram service (its /test classifies a bundled photo)?`,
    );
  }
  return { status, ms: performance.now() - t0 };
}

/**
 * The model the service runs, with the labels of its `model_info` metric (name, version, architecture,
 * tfjs_backend), so a run records which model it measured. Read from the Open Inference Protocol routes:
 * the metrics port is not public. Best effort.
 */
async function readModelInfo(
  base: URL,
  headers: Record<string, string>,
): Promise<Record<string, string> | null> {
  const json = async (path: string, method: 'GET' | 'POST') => {
    const res = await request(new URL(targetPath(base, path), base.origin).href, {
      method,
      headers,
      headersTimeout: 3000,
      bodyTimeout: 3000,
    });
    const body: unknown = await res.body.json().catch(() => null);
    return res.statusCode === 200 ? body : null;
  };
  try {
    const index = (await json('/v2/repository/index', 'POST')) as { name?: string }[] | null;
    const name = index?.[0]?.name;
    if (!name) return null;
    const meta = (await json(`/v2/models/${encodeURIComponent(name)}`, 'GET')) as {
      name?: string;
      versions?: string[];
      platform?: string;
      parameters?: { architecture?: string };
    } | null;
    if (!meta?.name) return null;
    const info: Record<string, string> = { name: meta.name };
    if (meta.versions?.[0]) info.version = meta.versions[0];
    if (meta.parameters?.architecture) info.architecture = meta.parameters.architecture;
    if (meta.platform?.startsWith('tfjs_')) info.tfjs_backend = meta.platform.slice('tfjs_'.length);
    return info;
  } catch {
    return null;
  }
}

const csvCast = { number: (n: number) => (Number.isFinite(n) ? String(n) : '') };

class RunFiles {
  private readonly requests: WriteStream;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    if (existsSync(join(dir, RUN_FILES.siegeLog))) {
      throw new BadTargetError(
        `${dir} already holds a load-test run; pick a new --out so runs are not mixed`,
      );
    }
    writeFileSync(join(dir, RUN_FILES.siegeLog), SIEGE_LOG_HEADER);
    writeFileSync(
      join(dir, RUN_FILES.latency),
      stringify([], { header: true, columns: [...LATENCY_COLUMNS] }),
    );
    this.requests = createWriteStream(join(dir, RUN_FILES.requests));
    this.requests.write('stage,sent_at,latency_ms,status,bytes,error\n');
  }

  request(stage: number, o: RequestOutcome): void {
    this.requests.write(
      `${stage},${new Date(o.sentAt).toISOString()},${o.latencyMs.toFixed(1)},${o.status ?? ''},${o.bytes},${o.error ?? ''}\n`,
    );
  }

  // Appended as each stage ends, so Ctrl-C or a crash keeps every finished stage.
  stage(tally: StageTally, startedAt: number, endedAt: number, interrupted: boolean): LatencyRow {
    appendFileSync(join(this.dir, RUN_FILES.siegeLog), formatSiegeRow(tally.siegeRow(startedAt, endedAt)));
    const row = tally.latencyRow(startedAt, endedAt, interrupted);
    appendFileSync(
      join(this.dir, RUN_FILES.latency),
      stringify([row], { columns: [...LATENCY_COLUMNS], cast: csvCast }),
    );
    return row;
  }

  meta(meta: object): void {
    writeFileSync(join(this.dir, RUN_FILES.meta), JSON.stringify(meta, null, 2) + '\n');
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.requests.end(resolve));
  }
}

export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestResult> {
  const base = parseBaseUrl(options.url);
  const path = targetPath(base, options.path);
  const headers: Record<string, string> = options.hostHeader ? { host: options.hostHeader } : {};
  const preflightResult = await preflight(base, options.path, options.timeoutMs, headers);
  const modelInfo = await readModelInfo(base, headers);
  const files = new RunFiles(options.outDir);
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
    await files.close();
  }
  return result;
}
