import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import { classifyRequestError } from './virtual-users';

// What the load test asks of its target before the clock starts: that the URL is one, that it answers, and
// which model it serves.

/** The target cannot be load-tested: wrong URL, nothing listening, or not the service. Exit code 2. */
export class BadTargetError extends Error {}

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

/**
 * The request headers for --host-header: a host name (and port), as a KServe url's host part. A whole url, a
 * path or a blank would reach the ingress as a name it does not route, and fail as a 404 that blames --url.
 */
export function hostHeaders(raw: string | undefined): Record<string, string> {
  if (raw === undefined) return {};
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(raw)) {
    throw new BadTargetError(
      `--host-header "${raw}" is not a host name; give the url's host alone, e.g. gourmetgram.gourmetgram.example.com`,
    );
  }
  return { host: raw };
}

/** scheme://host:port plus the base path, joined to the target path without doubling slashes */
export function targetPath(base: URL, path: string): string {
  return `${base.pathname.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/** One request before the clock starts, so a typo fails in a second with a reason, not after 30 minutes of errors. */
export async function preflight(
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
export async function readModelInfo(
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

/**
 * The service's live accuracy (GET /accuracy: users' held-out labels per model version), saved with the run so
 * the report can put it beside response time and resources. Best effort: null when the service has labels off,
 * its store is down, or it is not GourmetGram.
 */
export async function readLiveAccuracy(base: URL, headers: Record<string, string>): Promise<unknown> {
  try {
    const res = await request(new URL(targetPath(base, '/accuracy'), base.origin).href, {
      headers: { ...headers, Accept: 'application/json' },
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    const body: unknown = await res.body.json().catch(() => null);
    return res.statusCode === 200 && typeof body === 'object' && body !== null && 'labelsTotal' in body
      ? body
      : null;
  } catch {
    return null;
  }
}
