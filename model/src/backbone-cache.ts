import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readArtifactsDir, writeArtifactsDir, type LayersArtifacts } from './artifacts';

export const DEFAULT_BACKBONE_CACHE_DIR = path.join(os.homedir(), '.cache', 'gourmetgram', 'backbones');

interface CacheRecord {
  url: string;
  digest: string;
  fetchedAt: string;
}

/** One folder per source URL, so the image build's fetch is found again by the server given the same URL. */
export function cacheEntryDir(cacheDir: string, url: string): string {
  return path.join(cacheDir, createHash('sha256').update(url).digest('hex').slice(0, 16));
}

export async function readCachedBackbone(
  cacheDir: string,
  url: string,
): Promise<{ artifacts: LayersArtifacts; digest: string; dir: string } | undefined> {
  const dir = cacheEntryDir(cacheDir, url);
  let record: CacheRecord;
  try {
    record = JSON.parse(await fs.readFile(path.join(dir, 'source.json'), 'utf8')) as CacheRecord;
  } catch {
    return undefined;
  }
  if (record.url !== url || typeof record.digest !== 'string') return undefined;
  try {
    return { artifacts: await readArtifactsDir(dir), digest: record.digest, dir };
  } catch {
    return undefined; // a damaged entry is fetched again
  }
}

export async function writeCachedBackbone(
  cacheDir: string,
  url: string,
  artifacts: LayersArtifacts,
  digest: string,
): Promise<string> {
  const dir = cacheEntryDir(cacheDir, url);
  const record: CacheRecord = { url, digest, fetchedAt: new Date().toISOString() };
  await writeArtifactsDir(dir, artifacts, { 'source.json': JSON.stringify(record, null, 2) + '\n' });
  return dir;
}
