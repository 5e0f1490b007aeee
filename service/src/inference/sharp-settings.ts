import type { Config } from '../config';

/**
 * libvips as the service runs it (bench/decode-peak.ts measures decoding under the same settings). What holds
 * memory on a stream of real photos (bench/memory.ts measures it): libvips' operation cache keeps recent decodes
 * that no later upload reuses, and each libvips thread working on a photo brings its own buffers (and, under
 * glibc, its own malloc arena). Requests already decode in parallel on the thread pool.
 *
 * sharp is loaded twice in this process: as CommonJS (http/views.ts, at start) and as an ES module (the lazy
 * `import('sharp')` of model/src/preprocess.ts, which decodes). Each copy turns libvips' cache back to its default
 * (50 MB, 100 operations) when it loads, and the cache is libvips' own, shared by both. So the settings are applied
 * here after loading the ES module copy the decoder uses, the last one to load: applied before it, as they were until
 * issue 19, they were undone by the first upload.
 */
export async function applySharpSettings(
  config: Pick<Config, 'sharpCacheMb' | 'sharpConcurrency'>,
): Promise<void> {
  const sharp = (await import('sharp')).default;
  sharp.cache(config.sharpCacheMb > 0 ? { memory: config.sharpCacheMb, files: 0, items: 100 } : false);
  if (config.sharpConcurrency > 0) sharp.concurrency(config.sharpConcurrency);
}
