/**
 * Fetches a clean backbone (a TF.js layers model.json URL) into a cache folder and verifies its weight digest,
 * so a container image carries it and its pods never download at start:
 *   node dist/model/cli/fetch-backbone.js --url <url> --cache-dir <dir>
 * The expected digest is --digest, else the one the model's metadata records for its URL-backbone head.
 */
import { Command, InvalidArgumentError } from 'commander';
import {
  DEFAULT_BACKBONE_CACHE_DIR,
  DEFAULT_FETCH_TIMEOUT_MS,
  defaultModelDir,
  fetchBackboneIntoCache,
  initBackend,
  readMetadata,
  TEACHABLE_MACHINE_MOBILENET_V2_035_URL,
} from '../src/index';

interface CliOptions {
  url: string;
  cacheDir: string;
  digest?: string;
  modelDir?: string;
  timeoutMs: number;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number.');
  return n;
}

function sha256Hex(value: string): string {
  if (!/^[0-9a-f]{64}$/.test(value)) throw new InvalidArgumentError('expected 64 lowercase hex characters.');
  return value;
}

/** The digest the shipped head was trained on, if the model folder has one. */
async function expectedFromMetadata(modelDir: string): Promise<string | undefined> {
  const meta = await readMetadata(modelDir);
  return meta.heads.find((h) => h.backbone.kind === 'layers')?.backbone.digest;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command('fetch-backbone')
    .description('Fetch a TF.js MobileNet-style backbone into a cache folder and verify its weight digest.')
    .option(
      '--url <url>',
      'http(s):// or file:// URL of the model.json',
      TEACHABLE_MACHINE_MOBILENET_V2_035_URL,
    )
    .option(
      '--cache-dir <dir>',
      'cache folder (the service reads BACKBONE_CACHE_DIR)',
      DEFAULT_BACKBONE_CACHE_DIR,
    )
    .option('--digest <sha256>', 'expected weight digest (default: from the model metadata)', sha256Hex)
    .option(
      '--model-dir <dir>',
      'model folder whose metadata names the expected digest (default: the shipped one)',
    )
    .option('--timeout-ms <ms>', 'give up fetching after this long', positiveInt, DEFAULT_FETCH_TIMEOUT_MS)
    .parse(argv);
  const opts = program.opts<CliOptions>();

  // The digest is computed on decoded weight values; the plain cpu backend needs nothing native.
  await initBackend('cpu');
  let expected = opts.digest;
  if (!expected) {
    const modelDir = opts.modelDir ?? defaultModelDir();
    try {
      expected = await expectedFromMetadata(modelDir);
    } catch (err) {
      if (opts.modelDir) throw err;
    }
    if (!expected) {
      console.warn(
        `No --digest and no URL-backbone head in ${modelDir}: fetching without a digest to compare.`,
      );
    }
  }
  const { digest, dir } = await fetchBackboneIntoCache(opts.url, opts.cacheDir, {
    expectedDigest: expected,
    fetchTimeoutMs: opts.timeoutMs,
  });
  console.log(`backbone ${opts.url}`);
  console.log(`  digest ${digest}${expected ? ' (matches the head)' : ''}`);
  console.log(`  cached in ${dir}`);
}

main(process.argv).catch((err: unknown) => {
  console.error(`fetch-backbone: ${(err as Error).message}`);
  process.exitCode = 1;
});
