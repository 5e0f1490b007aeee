import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { mulberry32 } from './random';

/**
 * What a photo can look like when a user sends it, made from a clean photo: the ways phone photos differ from the
 * training photos. `npm run evaluate -- --look …` scores the same validation photos in each look, so a number says
 * how the model does on blurred, dark, noisy, compressed, small or tilted photos, not only on clean ones. Strengths
 * are fixed (the middle of what finetune.py's `phone_faults` trains on, scaled to the photo's size), and the noise
 * is seeded by the photo's bytes, so a look is the same on every run.
 */

type LookFn = (photo: Buffer) => Promise<Buffer>;

/** The photo upright (EXIF applied), with its size. */
async function upright(photo: Buffer): Promise<{ image: sharp.Sharp; width: number; height: number }> {
  const { data, info } = await sharp(photo).rotate().toBuffer({ resolveWithObject: true });
  return { image: sharp(data), width: info.width, height: info.height };
}

/** A phone's own JPEG, after the fault. */
const phoneJpeg = (image: sharp.Sharp, quality = 85) => image.jpeg({ quality }).toBuffer();

/** As the 64 px set stores its photos (centre crop, 64×64, JPEG 75): the sharpness-shortcut check. */
const lowres: LookFn = (photo) =>
  sharp(photo).rotate().resize(64, 64, { fit: 'cover', position: 'centre' }).jpeg({ quality: 75 }).toBuffer();

/** Out of focus: a Gaussian blur of 1 % of the short side (2.2 px on a 224 px view). */
const defocus: LookFn = async (photo) => {
  const { image, width, height } = await upright(photo);
  return phoneJpeg(image.blur(Math.max(0.3, 0.01 * Math.min(width, height))));
};

/** A shaken hand: a diagonal line blur 6 % of the short side long. */
const motion: LookFn = async (photo) => {
  const { image, width, height } = await upright(photo);
  const size = Math.max(3, Math.round(0.06 * Math.min(width, height)) | 1);
  const kernel = Array.from({ length: size * size }, (_, i) => (i % (size + 1) === 0 ? 1 : 0));
  return phoneJpeg(image.convolve({ width: size, height: size, kernel, scale: size }));
};

/** A dim restaurant: a third of the light, darker shadows (gamma 1.6) and a warm cast. */
const dark: LookFn = async (photo) => {
  const { data, info } = await sharp(photo)
    .rotate()
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const gain = [0.4, 0.34, 0.27];
  for (let i = 0; i < data.length; i++) data[i] = Math.round(255 * (data[i]! / 255) ** 1.6 * gain[i % 3]!);
  return phoneJpeg(sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }));
};

/** A small sensor in low light: Gaussian noise of σ 12 (of 255), seeded by the photo. */
const noise: LookFn = async (photo) => {
  const { data, info } = await sharp(photo)
    .rotate()
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const random = seededRandom(photo);
  for (let i = 0; i < data.length; i++) {
    // Box-Muller: one standard normal per channel value.
    const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    data[i] = Math.min(255, Math.max(0, Math.round(data[i]! + 12 * z)));
  }
  return phoneJpeg(sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }));
};

/** A photo recompressed by a messaging app: JPEG quality 15. */
const jpeg: LookFn = async (photo) => sharp(photo).rotate().jpeg({ quality: 15 }).toBuffer();

/** A thumbnail: 160 px on the long side. */
const small: LookFn = async (photo) => phoneJpeg(sharp(photo).rotate().resize(160, 160, { fit: 'inside' }));

/** A phone held askew: turned 20°, the corners the turn brings in cropped away. */
const tilt: LookFn = async (photo) => {
  const { image, width, height } = await upright(photo);
  const turned = await image.rotate(20).toBuffer({ resolveWithObject: true });
  // The largest centred rectangle of the original's proportions inside the turned photo, about 70 % of its side.
  const keep = 0.7;
  const w = Math.round(width * keep);
  const h = Math.round(height * keep);
  return phoneJpeg(
    sharp(turned.data).extract({
      left: Math.round((turned.info.width - w) / 2),
      top: Math.round((turned.info.height - h) / 2),
      width: w,
      height: h,
    }),
  );
};

/** The worst common case: a dark, shaken, noisy phone photo. */
const phone: LookFn = async (photo) => noise(await motion(await dark(photo)));

/** Every look by name; 'as-is' sends the photo unchanged. */
export const LOOKS = {
  'as-is': undefined,
  lowres,
  defocus,
  motion,
  dark,
  noise,
  jpeg,
  small,
  tilt,
  phone,
} as const satisfies Record<string, LookFn | undefined>;
export type Look = keyof typeof LOOKS;
export const LOOK_NAMES = Object.keys(LOOKS) as Look[];

/** A uniform [0, 1) generator seeded by the photo's bytes. */
function seededRandom(photo: Buffer): () => number {
  return mulberry32(createHash('sha1').update(photo).digest().readUInt32BE(0));
}
