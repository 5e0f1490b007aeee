import { createHash } from 'node:crypto';
import path from 'node:path';
import sharp from 'sharp';
import { seededRandom } from './prng';

export type Resize = 'cover' | 'fill';

/**
 * How a photo is turned into the backbone's input during training. 'plain' is exactly what the service does;
 * the others are augmentations: a mirror image, the 64 px look of the low-resolution set applied to a
 * full-resolution photo (centre crop to 64 px, JPEG, then up to the input size) so the two sets meet, and a
 * zoomed-in crop at a position of its own (a dish framed less tidily than the centre crop frames it).
 */
export type Variant = 'plain' | 'flip' | 'lowres' | 'lowres-flip' | 'crop';
export const VARIANTS: readonly Variant[] = ['plain', 'flip', 'lowres', 'lowres-flip', 'crop'];

/**
 * Each view's recipe, which names its folder in the feature cache: change a view's pixels, change its recipe, and
 * features cached by the old recipe are never read again. ('-2': mirrored after the resize.)
 */
export const VIEW_RECIPES: Readonly<Record<Variant, string>> = {
  plain: 'plain',
  flip: 'flip-2',
  lowres: 'lowres',
  'lowres-flip': 'lowres-flip-2',
  crop: 'crop',
};

/** The crop view keeps 75–90 % of the centre square's side, so the dish stays in the frame. */
const CROP_SCALE = [0.75, 0.9] as const;

/**
 * Where the crop view of a photo sits: drawn from the file's name, so every run (and every worker) extracts the
 * same crop and cached features stay valid. Returns the zoomed square's side and the window's offset in it.
 */
export function cropWindow(file: string, size: number): { zoomed: number; left: number; top: number } {
  const seed = createHash('sha1').update(path.basename(file)).digest().readUInt32LE(0);
  const random = seededRandom(seed);
  const scale = CROP_SCALE[0] + random() * (CROP_SCALE[1] - CROP_SCALE[0]);
  const zoomed = Math.round(size / scale);
  return {
    zoomed,
    left: Math.floor(random() * (zoomed - size + 1)),
    top: Math.floor(random() * (zoomed - size + 1)),
  };
}

/** The low-resolution set was made by centre-cropping to 64×64 (measured: 'cover' matches it, 'fill' does not). */
const LOWRES_SIZE = 64;
const LOWRES_JPEG_QUALITY = 75;

/** RGB bytes, row-major HWC, size × size × 3: the same steps the service's sharp decoder takes. */
export async function decodeForModel(
  file: string | Buffer,
  size: number,
  resize: Resize,
  variant: Variant = 'plain',
): Promise<Uint8Array> {
  let source: string | Buffer = file;
  if (variant === 'lowres' || variant === 'lowres-flip') {
    source = await sharp(file)
      .rotate()
      .resize(LOWRES_SIZE, LOWRES_SIZE, { fit: 'cover' })
      .jpeg({ quality: LOWRES_JPEG_QUALITY })
      .toBuffer();
  }
  // The same steps, in the same order, as the service's sharp decoder (service/src/decode.ts); the crop view
  // resizes to a larger square and cuts the input out of it.
  const crop = variant === 'crop' && typeof file === 'string' ? cropWindow(file, size) : undefined;
  if (variant === 'crop' && !crop) throw new Error("The crop view needs the photo's file name.");
  const side = crop?.zoomed ?? size;
  let pipeline = sharp(source)
    .rotate()
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .resize(side, side, { fit: resize, position: 'centre' });
  if (crop) pipeline = pipeline.extract({ left: crop.left, top: crop.top, width: size, height: size });
  const { data, info } = await pipeline
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size || info.channels !== 3) {
    throw new Error(`Decoded ${info.width}×${info.height}×${info.channels}, expected ${size}×${size}×3.`);
  }
  const rgb = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // Mirrored here, after the resize, rather than with sharp's flop(): sharp flops before it crops and resamples,
  // which is a different view (up to 0.6 apart in feature values) from the one the classifier's test-time flip
  // sees (tf.reverse of the decoded input). Training on that one is what serving asks of the head.
  return variant === 'flip' || variant === 'lowres-flip' ? mirrorRows(rgb, size) : rgb;
}

/** A left-right mirror of size × size RGB bytes. */
export function mirrorRows(rgb: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < size; y++) {
    const row = y * size * 3;
    for (let x = 0; x < size; x++) {
      const from = row + x * 3;
      const to = row + (size - 1 - x) * 3;
      out[to] = rgb[from]!;
      out[to + 1] = rgb[from + 1]!;
      out[to + 2] = rgb[from + 2]!;
    }
  }
  return out;
}
