import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DatasetError, type Sample, setOf } from './dataset';
import { viewPhotoFile } from './photo-file';

/**
 * Validation photos with a near twin in training: the same photo saved twice, cropped, resized or re-encoded, or the
 * same plate shot again a moment later. A validation score counts such a photo as new when the network has seen it,
 * so it flatters the model (`sharp`'s web pasta holds the same photos under different names, and two `full`
 * sources share photos of pan de muerto). Found by two perceptual hashes of the whole photo, as `full`'s recipe
 * finds the duplicates it leaves out.
 */

/** Both hashes of a photo, 64 bits each. */
export interface PhotoHashes {
  /** Difference hash: whether each of 8×8 pixels is brighter than its right neighbour, on a 9×8 grey thumbnail. */
  dHash: bigint;
  /** Perceptual hash: whether each of the 8×8 lowest frequencies of a 32×32 grey thumbnail's DCT is above their median. */
  pHash: bigint;
}

/**
 * The most bits each hash may differ by for two photos to be near twins. Both must agree: `full`'s recipe also
 * takes a dHash within 14 bits with a pHash within 10, which on one-item phone photos on a plain table (Liang-yc's
 * lemon and its doughnut, on the same plate) pairs different foods; the same dish cropped, or a pan de muerto
 * photo one source shares with another, is within 6 of both.
 */
export const NEAR_TWIN_BITS = 6;

const THUMB = 32;
const LOW = 8;

/**
 * Hashes of a photo's pixels: `grey` is THUMB×THUMB luma, row-major (the whole photo stretched to a square, so a
 * copy at another size or aspect hashes alike).
 */
export function hashesOfGrey(grey: Float64Array): PhotoHashes {
  if (grey.length !== THUMB * THUMB)
    throw new RangeError(`hashesOfGrey: ${THUMB}×${THUMB} pixels, got ${grey.length}`);
  const small = resizeBilinear(grey, THUMB, LOW + 1, LOW);
  let dHash = 0n;
  for (let y = 0; y < LOW; y++)
    for (let x = 0; x < LOW; x++)
      dHash = (dHash << 1n) | (small[y * (LOW + 1) + x]! > small[y * (LOW + 1) + x + 1]! ? 1n : 0n);
  const coefficients = lowFrequencies(grey);
  // The DC term is the photo's mean brightness: left out of the median so a darker copy splits the same way.
  const median = [...coefficients.slice(1)].sort((a, b) => a - b)[(coefficients.length - 1) >> 1]!;
  let pHash = 0n;
  for (const c of coefficients) pHash = (pHash << 1n) | (c > median ? 1n : 0n);
  return { dHash, pHash };
}

/** A photo file's hashes, decoded the way the tensor cache and the service decode it. */
export async function photoHashes(file: string): Promise<PhotoHashes> {
  const rgb = await viewPhotoFile(file, { size: THUMB, crop: 'fill' });
  const grey = new Float64Array(THUMB * THUMB);
  for (let i = 0; i < grey.length; i++)
    grey[i] = 0.299 * rgb[3 * i]! + 0.587 * rgb[3 * i + 1]! + 0.114 * rgb[3 * i + 2]!;
  return hashesOfGrey(grey);
}

/** Bits that differ between two 64-bit hashes. */
export function hammingDistance(a: bigint, b: bigint): number {
  let x = a ^ b;
  let n = 0;
  while (x) {
    x &= x - 1n;
    n++;
  }
  return n;
}

function resizeBilinear(src: Float64Array, side: number, width: number, height: number): Float64Array {
  const out = new Float64Array(width * height);
  const at = (v: number) => Math.min(side - 1, Math.max(0, v));
  for (let y = 0; y < height; y++) {
    const sy = at(((y + 0.5) * side) / height - 0.5);
    const y0 = Math.floor(sy);
    const y1 = Math.min(side - 1, y0 + 1);
    for (let x = 0; x < width; x++) {
      const sx = at(((x + 0.5) * side) / width - 0.5);
      const x0 = Math.floor(sx);
      const x1 = Math.min(side - 1, x0 + 1);
      const fx = sx - x0;
      const fy = sy - y0;
      const top = src[y0 * side + x0]! * (1 - fx) + src[y0 * side + x1]! * fx;
      const bottom = src[y1 * side + x0]! * (1 - fx) + src[y1 * side + x1]! * fx;
      out[y * width + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/** The LOW×LOW lowest-frequency coefficients of the THUMB×THUMB DCT-II, row-major (u down, v across). */
function lowFrequencies(grey: Float64Array): number[] {
  const basis = Array.from({ length: LOW }, (_, u) =>
    Float64Array.from({ length: THUMB }, (_, x) => Math.cos(((2 * x + 1) * u * Math.PI) / (2 * THUMB))),
  );
  // Rows first, then columns: LOW × THUMB × THUMB + LOW × LOW × THUMB products instead of LOW² × THUMB².
  const rows = new Float64Array(THUMB * LOW);
  for (let y = 0; y < THUMB; y++)
    for (let v = 0; v < LOW; v++) {
      let s = 0;
      for (let x = 0; x < THUMB; x++) s += grey[y * THUMB + x]! * basis[v]![x]!;
      rows[y * LOW + v] = s;
    }
  const out: number[] = [];
  for (let u = 0; u < LOW; u++)
    for (let v = 0; v < LOW; v++) {
      let s = 0;
      for (let y = 0; y < THUMB; y++) s += rows[y * LOW + v]! * basis[u]![y]!;
      out.push(s);
    }
  return out;
}

/** The hash cache's file: one entry per photo, reused while the file's size and modification time stay the same. */
interface HashCacheFile {
  version: 1;
  photos: Record<string, { size: number; mtimeMs: number; dHash: string; pHash: string }>;
}

/** The cache as last saved; a missing, unreadable or older-format one is an empty cache (it is only a cache). */
async function readHashCache(cacheFile: string): Promise<HashCacheFile> {
  try {
    const cache = JSON.parse(await fs.readFile(cacheFile, 'utf8')) as HashCacheFile;
    if (cache.version === 1 && typeof cache.photos === 'object' && cache.photos !== null) return cache;
  } catch {
    // Missing or unreadable: hash again.
  }
  return { version: 1, photos: {} };
}

/**
 * Every file's hashes, decoding only the files the cache at `cacheFile` has no current entry for. The cache is
 * written every `saveEvery` new photos too, so a stopped run keeps what it hashed. A photo that cannot be decoded
 * stops the run with its name, as it would stop training.
 */
export async function hashPhotos(
  files: string[],
  cacheFile: string,
  opts: { concurrency?: number; saveEvery?: number; log?: (msg: string) => void } = {},
): Promise<Map<string, PhotoHashes>> {
  const cache = await readHashCache(cacheFile);
  const save = async () => {
    await fs.mkdir(path.dirname(cacheFile), { recursive: true });
    await fs.writeFile(`${cacheFile}.tmp`, JSON.stringify(cache));
    await fs.rename(`${cacheFile}.tmp`, cacheFile);
  };
  const out = new Map<string, PhotoHashes>();
  const missing: { file: string; size: number; mtimeMs: number }[] = [];
  for (const file of new Set(files)) {
    const { size, mtimeMs } = await fs.stat(file);
    const entry = cache.photos[file];
    if (entry && entry.size === size && entry.mtimeMs === mtimeMs)
      out.set(file, { dHash: BigInt(`0x${entry.dHash}`), pHash: BigInt(`0x${entry.pHash}`) });
    else missing.push({ file, size, mtimeMs });
  }
  const concurrency = opts.concurrency ?? 4;
  const saveEvery = opts.saveEvery ?? 2000;
  if (missing.length > 0)
    opts.log?.(`near duplicates: hashing ${missing.length} photos (${out.size} cached)`);
  for (let start = 0; start < missing.length; start += concurrency) {
    const part = missing.slice(start, start + concurrency);
    const hashed = await Promise.all(
      part.map(async ({ file }) => {
        try {
          return await photoHashes(file);
        } catch (err) {
          throw new DatasetError(`${file}: ${(err as Error).message}`);
        }
      }),
    );
    part.forEach(({ file, size, mtimeMs }, i) => {
      const h = hashed[i]!;
      out.set(file, h);
      cache.photos[file] = { size, mtimeMs, dHash: h.dHash.toString(16), pHash: h.pHash.toString(16) };
    });
    const done = start + part.length;
    if (done % saveEvery < concurrency || done === missing.length) {
      await save();
      if (done < missing.length) opts.log?.(`near duplicates: ${done} of ${missing.length} hashed`);
    }
  }
  return out;
}

export interface NearTwin {
  validation: Sample;
  training: Sample;
  dHashDistance: number;
  pHashDistance: number;
}

/** Each validation photo's near twins among the training photos (both hashes within NEAR_TWIN_BITS). */
export function nearTwins(samples: Sample[], hashes: Map<string, PhotoHashes>): NearTwin[] {
  const hashOf = (s: Sample) => {
    const h = hashes.get(s.path);
    if (!h) throw new Error(`near duplicates: no hashes for ${s.path}`);
    return h;
  };
  const training = samples.filter((s) => s.split === 'train');
  // Split into 32-bit halves: comparing numbers is about fifty times faster than comparing bigints, and the
  // search is every validation photo against every training photo.
  const halves = (h: bigint) => [Number(h >> 32n), Number(h & 0xffffffffn)] as const;
  const table = new Uint32Array(training.length * 4);
  training.forEach((s, i) => {
    const { dHash, pHash } = hashOf(s);
    table.set([...halves(dHash), ...halves(pHash)], i * 4);
  });
  const twins: NearTwin[] = [];
  for (const v of samples) {
    if (v.split !== 'validation') continue;
    const { dHash, pHash } = hashOf(v);
    const [dHi, dLo] = halves(dHash);
    const [pHi, pLo] = halves(pHash);
    for (let i = 0; i < training.length; i++) {
      const d = bitCount32(table[i * 4]! ^ dHi) + bitCount32(table[i * 4 + 1]! ^ dLo);
      if (d > NEAR_TWIN_BITS) continue;
      const p = bitCount32(table[i * 4 + 2]! ^ pHi) + bitCount32(table[i * 4 + 3]! ^ pLo);
      if (p <= NEAR_TWIN_BITS)
        twins.push({ validation: v, training: training[i]!, dHashDistance: d, pHashDistance: p });
    }
  }
  return twins;
}

function bitCount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export type ValidationGroup = 'dishes left out' | 'sources left out' | 'by photo';

/** The validation groups the gate reads (a photo of a source left out is counted there, not under its dish). */
export function validationGroup(s: Sample): ValidationGroup {
  return s.unseenSource ? 'sources left out' : s.unseenDish ? 'dishes left out' : 'by photo';
}

/** A photo's path as its set names it: `sharp/Noodles-Pasta/…`. */
const relative = (s: Sample) => `${setOf(s)}/${path.relative(path.resolve(s.root), path.resolve(s.path))}`;

/** Per validation group and data set, how many photos have a near twin in training; then the twins themselves. */
export function nearTwinsToMarkdown(
  samples: Sample[],
  twins: NearTwin[],
  opts: { examples?: number } = {},
): string {
  const examples = opts.examples ?? 20;
  const withTwin = new Set(twins.map((t) => t.validation));
  const rows = new Map<string, { group: ValidationGroup; set: string; photos: number; twinned: number }>();
  for (const s of samples) {
    if (s.split !== 'validation') continue;
    const [group, set] = [validationGroup(s), setOf(s)];
    const row = rows.get(`${group}:${set}`) ?? { group, set, photos: 0, twinned: 0 };
    row.photos++;
    if (withTwin.has(s)) row.twinned++;
    rows.set(`${group}:${set}`, row);
  }
  const order: ValidationGroup[] = ['dishes left out', 'sources left out', 'by photo'];
  const table = [...rows.values()].sort(
    (a, b) => order.indexOf(a.group) - order.indexOf(b.group) || a.set.localeCompare(b.set),
  );
  const pct = (n: number, of: number) => `${((100 * n) / of).toFixed(1)} %`;
  const shown = [...twins]
    .sort(
      (a, b) => order.indexOf(validationGroup(a.validation)) - order.indexOf(validationGroup(b.validation)),
    )
    .slice(0, examples);
  return [
    '### Validation photos with a near twin in training',
    '',
    `A near twin: both perceptual hashes of the whole photo within ${NEAR_TWIN_BITS} of 64 bits (a copy, crop, resize ` +
      'or re-encoding, or the same plate shot again). The network has seen such a photo, so its score is not one ' +
      "of a new photo; a twin under 'dishes left out' or 'sources left out' also means the split did not keep the dish " +
      'or source out.',
    '',
    '| validation group | set | photos | with a near twin in training |',
    '|---|---|---:|---:|',
    ...table.map(
      ({ group, set, photos, twinned }) =>
        `| ${group} | \`${set}\` | ${photos} | ${twinned} (${pct(twinned, photos)}) |`,
    ),
    '',
    ...(shown.length > 0
      ? [
          `${twins.length} pairs${twins.length > shown.length ? `; the first ${shown.length}` : ''} (the groups left out first):`,
          '',
          '| validation photo | group | its twin in training | dHash, pHash bits apart |',
          '|---|---|---|---|',
          ...shown.map(
            (t) =>
              `| ${relative(t.validation)} | ${validationGroup(t.validation)} | ${relative(t.training)} | ` +
              `${t.dHashDistance}, ${t.pHashDistance} |`,
          ),
          '',
        ]
      : []),
  ].join('\n');
}
