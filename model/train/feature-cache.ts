import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { decodeForModel, VIEW_RECIPES, type Variant } from './decode';
import type { Resize } from './decode';

/**
 * Features are cached in chunks keyed by the extractor, the variant and the chunk's files (path, size, mtime), so
 * an interrupted extraction resumes, several processes can share the work, and re-training a head reads only
 * the cache.
 */
export const CHUNK_SIZE = 256;

/** What extraction needs of a backbone: its input and a batch extractor. */
export interface FeatureExtractor {
  readonly featureSize: number;
  readonly input: { size: number; resize: Resize };
  extract(images: Uint8Array[]): Promise<Float32Array[]>;
}

export interface Chunk {
  files: string[];
  file: string;
}

export function planChunks(
  cacheDir: string,
  extractorId: string,
  variant: Variant,
  files: string[],
): Chunk[] {
  const dir = path.join(
    cacheDir,
    createHash('sha1').update(extractorId).digest('hex').slice(0, 16),
    VIEW_RECIPES[variant],
  );
  const sorted = [...files].sort();
  const chunks: Chunk[] = [];
  for (let i = 0; i < sorted.length; i += CHUNK_SIZE) {
    const part = sorted.slice(i, i + CHUNK_SIZE);
    const h = createHash('sha1');
    for (const f of part) {
      const st = statSync(f);
      h.update(`${path.resolve(f)}\0${st.size}\0${st.mtimeMs}\n`);
    }
    chunks.push({ files: part, file: path.join(dir, h.digest('hex').slice(0, 20) + '.f32') });
  }
  return chunks;
}

export async function extractChunk(
  chunk: Chunk,
  extractor: FeatureExtractor,
  variant: Variant,
  onImages: (n: number) => void,
  batchSize = 4,
): Promise<void> {
  const out = new Float32Array(chunk.files.length * extractor.featureSize);
  for (let i = 0; i < chunk.files.length; i += batchSize) {
    const files = chunk.files.slice(i, i + batchSize);
    const images = await Promise.all(
      files.map((f) => decodeForModel(f, extractor.input.size, extractor.input.resize, variant)),
    );
    const feats = await extractor.extract(images);
    feats.forEach((f, j) => out.set(f, (i + j) * extractor.featureSize));
    onImages(files.length);
  }
  mkdirSync(path.dirname(chunk.file), { recursive: true });
  // Written under a temporary name first so a killed process never leaves a short chunk behind.
  const tmp = `${chunk.file}.${process.pid}.tmp`;
  writeFileSync(tmp, Buffer.from(out.buffer));
  renameSync(tmp, chunk.file);
}

/** Feature rows for the given files (any order), read from completed chunks. */
export function readFeatures(chunks: Chunk[], featureSize: number): Map<string, Float32Array> {
  const rows = new Map<string, Float32Array>();
  for (const chunk of chunks) {
    if (!existsSync(chunk.file)) throw new Error(`Feature chunk missing: ${chunk.file}`);
    const buf = readFileSync(chunk.file);
    const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    if (all.length !== chunk.files.length * featureSize) {
      throw new Error(`Feature chunk ${chunk.file} has the wrong size; delete it and extract again.`);
    }
    chunk.files.forEach((f, i) => rows.set(f, all.subarray(i * featureSize, (i + 1) * featureSize)));
  }
  return rows;
}
