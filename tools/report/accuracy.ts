import { existsSync, readFileSync } from 'node:fs';

export interface ModelAccuracy {
  value: number;
  /** which model and which evaluation the figure is, e.g. "3 test:food11" */
  source: string;
}

/** test-set figures before validation ones before anything else, so a run names the least optimistic number */
function rank(key: string): number {
  if (/test/i.test(key)) return 0;
  if (/valid/i.test(key)) return 1;
  return 2;
}

/**
 * The accuracy the model card (model/shipped/metadata.json) records, when it describes the model the service was
 * running. Read defensively: the file is another folder's, may be absent or older than a run; anything missing →
 * null ("n/a" in the table), never an exception. `modelInfo` (the service's model_info labels, kept in run.json)
 * names the version that ran: a run of another version gets no figure rather than someone else's.
 */
export function readModelAccuracy(
  metadataFile: string,
  modelInfo: Record<string, string> | null,
): ModelAccuracy | null {
  if (!existsSync(metadataFile)) return null;
  let meta: { version?: unknown; accuracy?: unknown };
  try {
    meta = JSON.parse(readFileSync(metadataFile, 'utf8')) as typeof meta;
  } catch {
    return null;
  }
  if (modelInfo?.version !== undefined && modelInfo.version !== meta.version) return null;
  if (typeof meta.accuracy !== 'object' || meta.accuracy === null) return null;
  const figures = Object.entries(meta.accuracy as Record<string, unknown>)
    .filter(
      (entry): entry is [string, number] => typeof entry[1] === 'number' && entry[1] >= 0 && entry[1] <= 1,
    )
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  const first = figures[0];
  if (!first) return null;
  return {
    value: first[1],
    source: `${typeof meta.version === 'string' ? meta.version : 'model'} ${first[0]}`,
  };
}

/** The live accuracy a run saved (GET /accuracy as its load test ended), for the model version that ran. */
export interface LiveAccuracy {
  value: number;
  low: number;
  high: number;
  /** held-out labels it rests on */
  n: number;
  version: string;
}

interface AccuracyJson {
  models?: {
    version?: unknown;
    heldOut?: { n?: unknown; accuracy?: unknown; ci95?: { low?: unknown; high?: unknown } | null };
  }[];
}

/**
 * The held-out accuracy of the version the run's service reported (run.json's model_info), else of the version
 * with the most labels. Read defensively like the model card: anything missing or malformed → null ("n/a").
 */
export function readLiveAccuracy(
  file: string,
  modelInfo: Record<string, string> | null,
): LiveAccuracy | null {
  if (!existsSync(file)) return null;
  let report: AccuracyJson;
  try {
    report = JSON.parse(readFileSync(file, 'utf8')) as AccuracyJson;
  } catch {
    return null;
  }
  const candidates = (Array.isArray(report.models) ? report.models : [])
    .map((m) => ({
      version: typeof m.version === 'string' ? m.version : '',
      n: typeof m.heldOut?.n === 'number' ? m.heldOut.n : 0,
      value: m.heldOut?.accuracy,
      low: m.heldOut?.ci95?.low,
      high: m.heldOut?.ci95?.high,
    }))
    .filter(
      (m): m is LiveAccuracy =>
        m.n > 0 && typeof m.value === 'number' && typeof m.low === 'number' && typeof m.high === 'number',
    )
    .sort((a, b) => b.n - a.n);
  const wanted = modelInfo?.version;
  return (wanted !== undefined ? candidates.find((m) => m.version === wanted) : candidates[0]) ?? null;
}
