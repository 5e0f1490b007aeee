import fs from 'node:fs';
import path from 'node:path';
import { photoLikeJpeg } from './decoders';

/**
 * Phone-size photos made from real ones: a real photo's content scaled up to a camera's pixel count (4:3), with the
 * decoders benchmark's sensor-like noise so the JPEG carries a phone photo's detail and size, not a smooth
 * upscale's. Baseline JPEG, as cameras write it, or progressive, as many photos saved from the web or an editing
 * app are (libjpeg decodes a progressive one whole, even when it is shrunk on load: it costs far more memory). Made once into a cache folder (never committed: the sources are data) and reused by later runs.
 */

export const PHONE_SIZES = [
  { label: '0.3 MP', width: 640, height: 480 },
  { label: '3 MP', width: 2000, height: 1500 },
  { label: '12 MP', width: 4000, height: 3000 },
  { label: '48 MP', width: 8000, height: 6000 },
] as const;
export type PhoneSize = (typeof PHONE_SIZES)[number];

/** Every JPEG under the folder, sorted, so a pick is the same on every run. */
export function jpegFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...jpegFiles(full));
    else if (/\.jpe?g$/i.test(entry.name)) out.push(full);
  }
  return out.sort();
}

/** A deterministic spread over the list (every class and size), not its first N files. */
export function spread<T>(items: T[], n: number): T[] {
  const step = items.length / n;
  return Array.from({ length: Math.min(n, items.length) }, (_, i) => items[Math.floor(i * step)]!);
}

/**
 * `count` sources from `sources` scaled to `size`, as files in `cacheDir` (made when absent). Each file is named
 * after its source and size, so a changed pick or size makes new files instead of reusing wrong ones.
 */
export async function phonePhotos(
  sources: string[],
  size: PhoneSize,
  count: number,
  cacheDir: string,
  { progressive = false }: { progressive?: boolean } = {},
): Promise<string[]> {
  fs.mkdirSync(cacheDir, { recursive: true });
  const out: string[] = [];
  for (const source of spread(sources, count)) {
    const kind = progressive ? '-progressive' : '';
    const name = `${path.basename(source, path.extname(source))}-${size.width}x${size.height}${kind}.jpg`;
    const file = path.join(cacheDir, name);
    if (!fs.existsSync(file)) {
      const jpeg = await photoLikeJpeg(fs.readFileSync(source), size.width, size.height, { progressive });
      fs.writeFileSync(`${file}.tmp`, jpeg);
      fs.renameSync(`${file}.tmp`, file);
    }
    out.push(file);
  }
  return out;
}
