/**
 * Load generation for one stage: N virtual users, each waiting a random 0..d s before every request (siege's -c/-d).
 *
 * Why undici and not autocannon: autocannon drives each connection as fast as it answers, or at a fixed
 * integer rate per connection (`connectionRate`), and its request hooks are synchronous, so it cannot wait a random,
 * often multi-second, think time per user (d=100 s means one request per user every ~50 s, far below 1 req/s).
 * Running an autocannon instance per request to fake it would spend more on setup than on load. The course's
 * load is a closed loop of think time → request → answer, which is exactly `await sleep(); await pool.request()`
 * per user over undici's Pool (Node's own maintained HTTP client), with the pool bounded to one connection per
 * user so concurrency can never exceed the stage's user count.
 */
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, errors as undiciErrors } from 'undici';
import type { Stage } from './profile';
import { errorKindOfStatus, type ErrorKind, type RequestOutcome } from './stage-tally';

export interface StageOptions {
  /** scheme://host:port — the only place load goes */
  origin: string;
  /** request path, e.g. /test */
  path: string;
  stage: Stage;
  /** per request: no headers, or a body stalled, this long → timeout */
  timeoutMs: number;
  /**
   * siege's default is `connection = close` (a new TCP connection per request), which also lets a Kubernetes
   * Service spread requests over new pods as they become ready; keep-alive pins each user to one pod.
   */
  keepAlive: boolean;
  /** extra request headers (a Host for an ingress that routes by name) */
  headers?: Record<string, string>;
  /** Ctrl-C: abort requests in flight and stop at once */
  interrupt?: AbortSignal;
  onOutcome: (outcome: RequestOutcome) => void;
  random?: () => number;
}

export interface StageTiming {
  startedAt: number;
  endedAt: number;
  interrupted: boolean;
}

function isAbort(err: unknown): boolean {
  return (
    err instanceof undiciErrors.RequestAbortedError ||
    (err as { name?: string } | null)?.name === 'AbortError'
  );
}

export function classifyRequestError(err: unknown): ErrorKind {
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return 'timeout';
  }
  return 'connection';
}

/**
 * Runs one stage. At its planned end no new request starts; requests in flight are allowed to finish (bounded by
 * the timeout) and count in this stage, so the tally matches what the server logged. Elapsed time therefore ends
 * when the last answer arrives.
 */
export async function runStage(options: StageOptions): Promise<StageTiming> {
  const { stage, interrupt } = options;
  const random = options.random ?? Math.random;
  const pool = new Pool(options.origin, {
    connections: stage.users,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connectTimeout: options.timeoutMs,
  });
  // Two per-stage signals: thinking stops at the planned end or on Ctrl-C, requests in flight only on Ctrl-C.
  // Each user listens on both; they are the stage's own, so the caller's signal gets one listener per stage,
  // removed when the stage ends, however many users and stages there are.
  const thinking = new AbortController();
  const requests = new AbortController();
  setMaxListeners(stage.users + 10, thinking.signal, requests.signal);
  const onInterrupt = () => {
    thinking.abort();
    requests.abort();
  };
  if (interrupt?.aborted) onInterrupt();
  interrupt?.addEventListener('abort', onInterrupt, { once: true });
  const startedAt = Date.now();
  const deadline = setTimeout(() => thinking.abort(), stage.durationSeconds * 1000);

  const oneRequest = async (): Promise<void> => {
    const sentAt = Date.now();
    const t0 = performance.now();
    try {
      const response = await pool.request({
        path: options.path,
        method: 'GET',
        headers: options.headers,
        reset: !options.keepAlive,
        signal: requests.signal,
      });
      let bytes = 0;
      for await (const chunk of response.body) bytes += (chunk as Buffer).length;
      const latencyMs = performance.now() - t0;
      const status = response.statusCode;
      options.onOutcome({ sentAt, latencyMs, status, bytes, error: errorKindOfStatus(status) });
    } catch (err) {
      if (requests.signal.aborted && isAbort(err)) return; // cut off by Ctrl-C: neither a success nor a failure
      options.onOutcome({
        sentAt,
        latencyMs: performance.now() - t0,
        status: null,
        bytes: 0,
        error: classifyRequestError(err),
      });
    }
  };

  const virtualUser = async (): Promise<void> => {
    while (!thinking.signal.aborted) {
      try {
        await sleep(random() * stage.delaySeconds * 1000, undefined, { signal: thinking.signal });
      } catch {
        return; // the stage ended while this user was thinking
      }
      await oneRequest();
    }
  };

  try {
    await Promise.all(Array.from({ length: stage.users }, virtualUser));
  } finally {
    clearTimeout(deadline);
    interrupt?.removeEventListener('abort', onInterrupt);
    await pool.close().catch(() => undefined);
  }
  return { startedAt, endedAt: Date.now(), interrupted: requests.signal.aborted };
}
