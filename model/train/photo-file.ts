import { promises as fs } from 'node:fs';
import { DEFAULT_MAX_PIXELS, preprocessPhoto, type View } from '../src';

/**
 * A photo file as the model sees it, the way the service would see the same upload: its bytes (changed by `look`
 * first, when scoring a copy of the photo) through preprocessPhoto at the model's view, under the service's default
 * pixel budget, decoded by sharp. The tensor cache and scoring both read photos here, so they cannot drift apart.
 */
export async function viewPhotoFile(
  file: string,
  view: View,
  look?: (photo: Buffer) => Promise<Buffer>,
): Promise<Uint8Array> {
  return viewPhoto(await photoBytes(file, look), view);
}

/** What a user would send: the file's bytes, or a copy changed by `look`. */
export async function photoBytes(file: string, look?: (photo: Buffer) => Promise<Buffer>): Promise<Buffer> {
  const bytes = await fs.readFile(file);
  return look ? look(bytes) : bytes;
}

/** Photo bytes at a view, as the service decodes an upload. */
export async function viewPhoto(photo: Buffer, view: View): Promise<Uint8Array> {
  return (await preprocessPhoto(photo, { view, maxPixels: DEFAULT_MAX_PIXELS, decoder: 'sharp' })).rgb;
}
