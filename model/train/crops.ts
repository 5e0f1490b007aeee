import { preprocessPixels, type View } from '../src';
import { viewPhoto } from './photo-file';

/**
 * Which parts of a photo the model is shown, for `npm run evaluate --crops` (issue 23's view check): the model's
 * centre crop, the whole photo, or several crops whose probabilities are averaged. Every crop goes through the
 * service's own functions (preprocessPhoto, and preprocessPixels for crops cut from decoded pixels), so a crop
 * scored here is what the service would make of it. The service itself shows one view per photo: several crops
 * at serving time would need it to classify and average them, which it does not do yet.
 */

/**
 * 'cover': the centre square (the shipped view); 'fill': the whole photo, squeezed to a square; 'corners': four
 * squares of 7/8 the side of the centre square, one in each of its corners (with 'cover', the five-crop of
 * torchvision's FiveCrop on the centre square).
 */
export const CROP_NAMES = ['cover', 'fill', 'corners'] as const;
export type CropName = (typeof CROP_NAMES)[number];
/** The crops a photo is scored on, their probabilities averaged; written `cover+corners`. */
export type CropSet = readonly CropName[];

const CORNER_SHARE = 7 / 8;

export const cropSetName = (crops: CropSet): string => crops.join('+');

/** How many images a crop set makes of one photo: the model's time grows with it. */
export const cropCount = (crops: CropSet): number =>
  crops.reduce((n, crop) => n + (crop === 'corners' ? 4 : 1), 0);

/** A crop set from its name (`cover+corners`), or why it is not one. */
export function parseCropSet(name: string): CropSet | string {
  const parts = name.split('+');
  if (!parts.every((p) => (CROP_NAMES as readonly string[]).includes(p)))
    return `crops are ${CROP_NAMES.join(', ')}, joined by '+' (e.g. cover+corners)`;
  if (new Set(parts).size !== parts.length) return 'a crop is named twice';
  return parts as CropName[];
}

/**
 * The images of one photo for a crop set, in the set's order (the four corners: top left, top right, bottom left,
 * bottom right), each view.size² × 3 RGB bytes at the model's view (its size and JPEG round trip).
 */
export async function cropViews(photo: Buffer, view: View, crops: CropSet): Promise<Uint8Array[]> {
  const images: Uint8Array[] = [];
  for (const crop of crops) {
    if (crop !== 'corners') {
      images.push(await viewPhoto(photo, { ...view, crop }));
      continue;
    }
    // The centre square decoded once at twice the view's side (no JPEG trip yet), its corners cut from the pixels
    // and brought to the view by preprocessPixels, which makes the view's JPEG trip at the view's size as
    // preprocessPhoto would. The side differs from the view's, so preprocessPixels never takes a corner as given.
    const side = 2 * view.size;
    const square = await viewPhoto(photo, { size: side, crop: 'cover' });
    const corner = Math.round(side * CORNER_SHARE);
    for (const [left, top] of [
      [0, 0],
      [side - corner, 0],
      [0, side - corner],
      [side - corner, side - corner],
    ] as const) {
      const pixels = new Uint8Array(corner * corner * 3);
      for (let y = 0; y < corner; y++) {
        const from = ((top + y) * side + left) * 3;
        pixels.set(square.subarray(from, from + corner * 3), y * corner * 3);
      }
      images.push(await preprocessPixels(pixels, corner, corner, view));
    }
  }
  return images;
}

/** Averages each photo's crops' probabilities: `probabilities` holds `perPhoto` vectors per photo, in order. */
export function averageCrops(probabilities: Float32Array[], perPhoto: number): Float32Array[] {
  if (perPhoto === 1) return probabilities;
  if (probabilities.length % perPhoto !== 0) {
    throw new Error(`${probabilities.length} probability vectors are not ${perPhoto} per photo`);
  }
  const out: Float32Array[] = [];
  for (let start = 0; start < probabilities.length; start += perPhoto) {
    const mean = new Float32Array(probabilities[start]!.length);
    for (let k = 0; k < perPhoto; k++)
      probabilities[start + k]!.forEach((p, c) => (mean[c]! += p / perPhoto));
    out.push(mean);
  }
  return out;
}
