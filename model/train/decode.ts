import sharp from 'sharp';

export type Resize = 'cover' | 'fill';

/**
 * How a photo is turned into the backbone's input during training. 'plain' is exactly what the service does;
 * the others are augmentations: a mirror image, and the 64 px look of the low-resolution set applied to a
 * full-resolution photo (centre crop to 64 px, JPEG, then up to the input size) so the two sets meet.
 */
export type Variant = 'plain' | 'flip' | 'lowres' | 'lowres-flip';
export const VARIANTS: readonly Variant[] = ['plain', 'flip', 'lowres', 'lowres-flip'];

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
  // The same steps, in the same order, as the service's sharp decoder (service/src/decode.ts).
  let pipeline = sharp(source)
    .rotate()
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .resize(size, size, { fit: resize, position: 'centre' });
  if (variant === 'flip' || variant === 'lowres-flip') pipeline = pipeline.flop();
  const { data, info } = await pipeline
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size || info.channels !== 3) {
    throw new Error(`Decoded ${info.width}×${info.height}×${info.channels}, expected ${size}×${size}×3.`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
