import sharp from 'sharp';
import { DEFAULT_MAX_PIXELS, preprocessPhoto, type DecoderName } from '../model/src/preprocess';
import { median, timeRuns } from '../model/train/latency';

/**
 * Decode + resize to the model's input, jimp against sharp, on photo-like JPEGs at phone-camera sizes. The
 * photos are the service's bundled test photo scaled up with a little sensor-like noise, so they compress like
 * real photos (a flat or pure-noise image would flatter or punish the decoders).
 */

export const DECODE_SIZES = [
  { label: '0.3 MP', width: 640, height: 480 },
  { label: '3 MP', width: 2000, height: 1500 },
  { label: '12 MP', width: 4000, height: 3000 },
] as const;

export interface DecodeRow {
  label: string;
  width: number;
  height: number;
  jpegBytes: number;
  runs: Record<DecoderName, number>;
  medianMs: Record<DecoderName, number>;
}

export async function photoLikeJpeg(
  source: Buffer,
  width: number,
  height: number,
  {
    progressive = false,
    chromaSubsampling = '4:2:0',
  }: { progressive?: boolean; chromaSubsampling?: '4:2:0' | '4:4:4' } = {},
): Promise<Buffer> {
  const scaled = await sharp(source).resize(width, height, { fit: 'fill' }).raw().toBuffer();
  // Deterministic noise (a fixed-seed LCG), ±8 levels: every run and every machine decodes the same bytes.
  let state = 12345;
  for (let i = 0; i < scaled.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    scaled[i] = Math.max(0, Math.min(255, scaled[i]! + (state >>> 28) - 8));
  }
  return sharp(scaled, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90, progressive, chromaSubsampling })
    .toBuffer();
}

export async function benchDecode(source: Buffer, inputSize: number): Promise<DecodeRow[]> {
  const rows: DecodeRow[] = [];
  for (const size of DECODE_SIZES) {
    const jpeg = await photoLikeJpeg(source, size.width, size.height);
    const megapixels = (size.width * size.height) / 1e6;
    // jimp takes about a second per 12 MP: fewer runs for it keep the whole benchmark within minutes.
    const runs: Record<DecoderName, number> = {
      sharp: 25,
      jimp: megapixels > 5 ? 5 : megapixels > 1 ? 7 : 15,
    };
    const medianMs = { sharp: NaN, jimp: NaN };
    for (const decoder of ['sharp', 'jimp'] as const) {
      const times = await timeRuns(runs[decoder], 2, () =>
        preprocessPhoto(jpeg, {
          view: { size: inputSize, crop: 'cover', jpegQuality: 75 },
          maxPixels: DEFAULT_MAX_PIXELS,
          decoder,
        }),
      );
      medianMs[decoder] = median(times);
    }
    rows.push({ ...size, jpegBytes: jpeg.length, runs, medianMs });
    console.log(
      `decode ${size.label}: sharp ${medianMs.sharp.toFixed(1)} ms, jimp ${medianMs.jimp.toFixed(1)} ms`,
    );
  }
  return rows;
}
