import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { METADATA_FILE, readMetadata, writeMetadata, type HeadEntry, type ModelMetadataInput } from '../src';
import type { Label } from './labels';

export const MODEL_NAME = 'gourmetgram-food11';

export interface HeadToWrite {
  headId: string;
  labels: Label[];
  resize: 'cover' | 'fill';
  modelVersion: string;
  save: (dir: string) => Promise<void>;
  entry: Omit<HeadEntry, 'id' | 'path'>;
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
}

/**
 * Writes a head into a model folder and records it in metadata.json, keeping the folder's other heads (a model
 * ships one head per backbone). Heads of another label set or resize mode are refused rather than mixed.
 */
export async function writeHeadIntoModel(
  outDir: string,
  h: HeadToWrite,
): Promise<{ headDir: string; headBytes: number; metadataFile: string }> {
  const relative = path.posix.join('heads', h.headId);
  let heads: ModelMetadataInput['heads'] = [];
  if (existsSync(path.join(outDir, METADATA_FILE))) {
    const old = await readMetadata(outDir);
    const sameLabels =
      JSON.stringify(old.labels.map((l) => l.id)) === JSON.stringify(h.labels.map((l) => l.id));
    if (!sameLabels || old.input.resize !== h.resize) {
      throw new Error(
        `${outDir} holds a model with other labels or resize mode; write this head to a new --out folder.`,
      );
    }
    heads = old.heads.filter((e) => e.id !== h.headId);
  }
  const headDir = path.join(outDir, relative);
  await h.save(headDir);
  heads.push({ id: h.headId, path: relative, ...h.entry });
  // The clean head first: it is the one a loader prefers.
  heads.sort((a, b) =>
    a.backbone.kind === b.backbone.kind ? a.id.localeCompare(b.id) : a.backbone.kind === 'layers' ? -1 : 1,
  );
  await writeMetadata(outDir, {
    schemaVersion: 1,
    name: MODEL_NAME,
    version: h.modelVersion,
    labels: h.labels,
    input: { resize: h.resize },
    heads,
  });
  return { headDir, headBytes: dirBytes(headDir), metadataFile: path.join(outDir, METADATA_FILE) };
}
