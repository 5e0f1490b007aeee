import { existsSync, readFileSync } from 'node:fs';

export interface ModelAccuracy {
  value: number;
  /** which head and which evaluation the figure is, e.g. "clean validation:food11" */
  source: string;
}

interface HeadLike {
  id?: unknown;
  version?: unknown;
  backbone?: { id?: unknown };
  accuracy?: unknown;
}

/** test-set figures before validation ones before anything else, so a run names the least optimistic number */
function rank(key: string): number {
  if (/test/i.test(key)) return 0;
  if (/valid/i.test(key)) return 1;
  return 2;
}

/**
 * The accuracy the model card (model/shipped/metadata.json) records for the head the service was running.
 * Read defensively: the file is another folder's, may be absent or older than a run; anything missing → null
 * ("n/a" in the table), never an exception. `modelInfo` (the service's model_info labels, kept in run.json)
 * picks the head by its backbone; without it the first head is used.
 */
export function readModelAccuracy(
  metadataFile: string,
  modelInfo: Record<string, string> | null,
): ModelAccuracy | null {
  if (!existsSync(metadataFile)) return null;
  let heads: HeadLike[];
  try {
    const meta = JSON.parse(readFileSync(metadataFile, 'utf8')) as { heads?: unknown };
    heads = Array.isArray(meta.heads) ? (meta.heads as HeadLike[]) : [];
  } catch {
    return null;
  }
  const served =
    (modelInfo?.backbone !== undefined && heads.find((h) => h.backbone?.id === modelInfo.backbone)) ||
    heads[0];
  if (!served || typeof served.accuracy !== 'object' || served.accuracy === null) return null;
  const figures = Object.entries(served.accuracy as Record<string, unknown>)
    .filter((e): e is [string, number] => typeof e[1] === 'number' && e[1] >= 0 && e[1] <= 1)
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  const first = figures[0];
  if (!first) return null;
  return { value: first[1], source: `${typeof served.id === 'string' ? served.id : 'head'} ${first[0]}` };
}
