import fs from 'node:fs';
import { DEFAULT_MAX_PIXELS, preprocessPhoto, type View } from '../model/src/preprocess';
import { timeRuns } from '../model/train/latency';
import { loadConfig } from '../service/src/config';
import { applySharpSettings } from '../service/src/inference/sharp-settings';

/**
 * One photo brought to one view, in a process of its own (bench/memory.ts starts one per photo size and view):
 * prints the milliseconds of each run and the resident memory the decoding added at its peak. The peak is
 * measured from a baseline taken after a warm-up decode of a small photo (libvips and its codecs loaded), with the
 * kernel's high-water mark reset to that baseline first (writing 5 to /proc/self/clear_refs), so it counts only
 * what decoding this photo needs, buffers kept by the allocator included. libvips runs as the service sets it up
 * (its default SHARP_CACHE_MB and SHARP_CONCURRENCY: service/src/inference/sharp-settings.ts).
 *
 * The baseline is taken after a full garbage collection, so node must run with --expose-gc: without it the warm-up's
 * garbage was collected during the measured decode now and then, and the heap's growth counted as decoding (6 MP
 * progressive 4:2:0, the test's photo, 30 runs of this script each way: without it 2 peaks of 21.2 and 21.7 MiB
 * against a median of 18.7; with it, at most 18.9). It is rarer, not gone: a later session saw 21.7 and 23.0 once
 * each, so tests/service/decode-memory.test.ts takes the least of three runs.
 *
 * Usage: node --expose-gc --import tsx bench/decode-peak.ts <photo.jpg> <view JSON> <runs> <warm-up photo.jpg>
 */

const [photoPath, viewJson, runsArg, warmupPath] = process.argv.slice(2);
if (!photoPath || !viewJson || !runsArg || !warmupPath) {
  console.error('usage: node --expose-gc decode-peak.ts <photo> <view JSON> <runs> <warm-up photo>');
  process.exit(2);
}
/** global.gc, which --expose-gc gives: the measurement is wrong without it, so it is refused. */
function requireGc(): () => void {
  if (!global.gc) {
    console.error(
      'bench/decode-peak: run node with --expose-gc (the baseline is taken after a full collection)',
    );
    process.exit(2);
  }
  return global.gc;
}
const collectGarbage = requireGc();

function statusKb(field: 'VmRSS' | 'VmHWM'): number {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]);
}

async function main() {
  await applySharpSettings(loadConfig({}));
  const view = JSON.parse(viewJson!) as View;
  const photo = fs.readFileSync(photoPath!);
  const decode = (buf: Buffer, maxPixels: number) =>
    preprocessPhoto(buf, { view, maxPixels, decoder: 'sharp' });
  await decode(fs.readFileSync(warmupPath!), DEFAULT_MAX_PIXELS);
  collectGarbage();
  const baselineKb = statusKb('VmRSS');
  fs.writeFileSync('/proc/self/clear_refs', '5');
  // The cost is measured above the default pixel budget too: whether the service refuses it is reported apart.
  let size = { width: 0, height: 0 };
  const ms = await timeRuns(Number(runsArg), 1, async () => {
    size = await decode(photo, Number.MAX_SAFE_INTEGER);
  });
  const peakKb = statusKb('VmHWM');
  const { width, height } = size;
  const refusedByDefault = await decode(photo, DEFAULT_MAX_PIXELS).then(
    () => undefined,
    (err: Error) => err.message,
  );
  console.log(
    JSON.stringify({ width, height, ms, addedPeakBytes: (peakKb - baselineKb) * 1024, refusedByDefault }),
  );
}

main().catch((err: Error) => {
  console.error(`bench/decode-peak: ${err.message}`);
  process.exit(1);
});
