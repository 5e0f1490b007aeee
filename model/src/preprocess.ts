import { performance } from 'node:perf_hooks';

import type { View } from './metadata';

/**
 * The one way from photo bytes to the model's input: the service, training's tensor cache and `evaluate` all call
 * `preprocessPhoto`, so a photo is seen the same way wherever it is classified. It turns a photo into RGB bytes
 * (view.size × view.size × 3, HWC, 8-bit sRGB) whatever the file's orientation, alpha, colour space or bit depth,
 * then gives it the model's view (model/src/metadata.ts: the crop, the side, and for a model trained on the 64 px
 * look, that look's JPEG round trip). Two decoders: sharp (libvips, the default and the fast one, and the one
 * training uses) and jimp (pure JavaScript, the fallback and the benchmark's baseline; its resampling differs
 * slightly from libvips'). Both libraries are loaded lazily so a process that never uses one does not pay for it.
 */

/** The formats a photo may come in: what sniffFormat recognises and both decoders read. */
export const IMAGE_FORMATS = {
  jpeg: { name: 'JPEG', mediaType: 'image/jpeg' },
  png: { name: 'PNG', mediaType: 'image/png' },
  webp: { name: 'WebP', mediaType: 'image/webp' },
  gif: { name: 'GIF', mediaType: 'image/gif' },
} as const;
export type ImageFormat = keyof typeof IMAGE_FORMATS;

const inWords = (items: string[]) => `${items.slice(0, -1).join(', ')} or ${items.at(-1)!}`;
/** The accepted formats as a person reads them in a message: "JPEG, PNG, WebP or GIF". */
export const ACCEPTED_FORMATS = inWords(Object.values(IMAGE_FORMATS).map((f) => f.name));
/** The same as media types: "image/jpeg, image/png, image/webp or image/gif". */
export const ACCEPTED_MEDIA_TYPES = inWords(Object.values(IMAGE_FORMATS).map((f) => f.mediaType));

/** sharp (libvips) or jimp (pure JavaScript); a config schema takes its choices from here. */
export const DECODER_NAMES = ['sharp', 'jimp'] as const;
export type DecoderName = (typeof DECODER_NAMES)[number];
export type { View } from './metadata';

/**
 * The pixel budget a photo is decoded under unless the caller sets one (the service's MAX_PIXELS default, and what
 * training and evaluation use): a phone's 48, 50 or 64 MP photo (8000×6000, 8160×6144, 9248×6936), not a
 * decompression bomb. What decoding holds is bounded apart (decodeMemoryBytes): a baseline JPEG this large is shrunk
 * while it is decoded, about 10 MB at 48 MP (bench/REPORT.md).
 */
export const DEFAULT_MAX_PIXELS = 64_200_000;

export interface DecodeOptions {
  /** The model's view (its metadata's `view`). */
  view: View;
  /** Images with more pixels than this (width × height) are refused before they are decoded. */
  maxPixels: number;
  decoder: DecoderName;
  /**
   * Called once the header is read and before a pixel is decoded, with what the decoding will hold at its peak
   * (decodeMemoryBytes); resolves with the release once that memory may be spent (the service's decode budget).
   * sharp only: jimp decodes in the service's workers, one photo at a time each.
   */
  reserveMemory?(bytes: number): Promise<() => void>;
}

/**
 * What decoding a photo to a view holds at its peak, from its header (bench/memory.ts measures it by size and
 * kind; bench/REPORT.md): a baseline JPEG is shrunk while it is decoded (libjpeg scales by up to 8 a side), a
 * fraction of a byte a pixel; a progressive JPEG keeps every DCT coefficient of the whole image until its last scan,
 * 2 bytes for each sample of each component, shrunk or not: 3 bytes a pixel with the usual 4:2:0 chroma, 6 with
 * 4:4:4 (what some editors and web tools save), 8 for CMYK; PNG, WebP and GIF are decoded at full size (at most 4
 * bytes a pixel). `chromaSubsampling` is sharp's metadata (`4:2:0`, `4:4:4`, `4:2:0:4` with CMYK's K); when a
 * JPEG's is unknown, full-resolution colour (4:4:4) is counted, the costliest a three-component photo can be.
 */
export function decodeMemoryBytes(
  format: ImageFormat,
  pixels: number,
  progressive: boolean,
  chromaSubsampling?: string,
): number {
  const perPixel =
    format === 'jpeg' ? (progressive ? 2 * jpegSamplesPerPixel(chromaSubsampling) + 0.2 : 0.3) : 4;
  return Math.ceil(pixels * perPixel) + 2 * 1024 * 1024;
}

/**
 * Samples a JPEG stores per pixel over all its components: J:a:b gives each chroma component (a + b) / 2J of the
 * luma's samples (4:2:0 → ¼, 4:2:2 → ½, 4:4:4 → 1), and a fourth figure is a full-resolution K (CMYK).
 */
function jpegSamplesPerPixel(chromaSubsampling: string | undefined): number {
  const parts = (chromaSubsampling ?? '4:4:4').split(':').map(Number);
  const [j, a, b] = parts;
  if (parts.some((n) => !Number.isFinite(n)) || !j || a === undefined || b === undefined) return 3;
  return 1 + (2 * (a + b)) / (2 * j) + (parts.length > 3 ? 1 : 0);
}

export interface DecodedImage {
  /** size × size × 3 bytes, row-major HWC, 8-bit sRGB. */
  rgb: Uint8Array;
  /** The photo's own dimensions as a person sees it (after EXIF orientation), before resizing. */
  width: number;
  height: number;
  format: ImageFormat;
  decodeMs: number;
}

export type DecodeErrorCode = 'unsupported' | 'corrupt' | 'too_many_pixels';

/** A problem with the uploaded bytes themselves (the HTTP layer maps the code to 415 or 422). */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  constructor(
    readonly code: DecodeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Identifies the format from the file's first bytes. A client's Content-Type or file name is never trusted:
 * only what the bytes are decides which decoder touches them.
 */
export function sniffFormat(buf: Uint8Array): ImageFormat | undefined {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b.subarray(0, 8).equals(PNG_SIGNATURE)) return 'png';
  if (b.length >= 6 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a')) {
    return 'gif';
  }
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') {
    return 'webp';
  }
  return undefined;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export async function preprocessPhoto(buf: Buffer, opts: DecodeOptions): Promise<DecodedImage> {
  const { size } = opts.view;
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`preprocessPhoto: view.size must be a positive integer, got ${size}`);
  }
  const started = performance.now();
  const format = sniffFormat(buf);
  if (!format) {
    throw new DecodeError(
      'unsupported',
      buf.length === 0
        ? `The upload is empty. Send a ${ACCEPTED_FORMATS} photo.`
        : `This file is not a ${ACCEPTED_FORMATS} image (judged by its contents, not its name). Send a photo in one of those formats.`,
    );
  }
  const decoded =
    opts.decoder === 'jimp'
      ? await decodeWithJimp(buf, format, opts)
      : await decodeWithSharp(buf, format, opts);
  return { ...decoded, format, decodeMs: performance.now() - started };
}

/**
 * RGB pixels that arrive already decoded (the Open Inference Protocol's FP32 input) brought to the model's view:
 * the same crop, size and JPEG round trip a photo gets. Pixels already at the view's size are taken as they are:
 * a client that sends the view itself has done this step.
 */
export async function preprocessPixels(
  rgb: Uint8Array,
  width: number,
  height: number,
  view: View,
): Promise<Uint8Array> {
  if (width === view.size && height === view.size) return rgb;
  const sharp = await loadSharp();
  const { data } = await withView(sharp, sharp(rgb, { raw: { width, height, channels: 3 } }), view);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

type Pixels = Omit<DecodedImage, 'format' | 'decodeMs'>;

function tooManyPixels(width: number, height: number, maxPixels: number): DecodeError {
  const mp = (n: number) => `${(n / 1e6).toFixed(1)} MP`;
  return new DecodeError(
    'too_many_pixels',
    `The image is ${width}×${height} (${mp(width * height)}), more than the ${mp(maxPixels)} this service decodes. ` +
      'Scale it down and try again.',
  );
}

function corrupt(format: ImageFormat, cause: unknown): DecodeError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new DecodeError(
    'corrupt',
    `The ${format.toUpperCase()} file could not be decoded; it looks truncated or damaged (${detail.trim()}). ` +
      'Upload the original photo again.',
    { cause },
  );
}

// ---------------------------------------------------------------------------------------------------------
// sharp

type SharpModule = typeof import('sharp');
type SharpPipeline = ReturnType<SharpModule>;
let sharpModule: Promise<SharpModule> | undefined;
function loadSharp(): Promise<SharpModule> {
  sharpModule ??= import('sharp').then((m) => m.default);
  return sharpModule;
}

async function decodeWithSharp(buf: Buffer, format: ImageFormat, opts: DecodeOptions): Promise<Pixels> {
  const sharp = await loadSharp();
  // failOn is spelled out because laxer settings ('none') decode a truncated JPEG with a grey bottom half; a
  // half-grey photo classified with confidence is worse than a clear 422.
  const input = { limitInputPixels: opts.maxPixels, failOn: 'warning' as const, pages: 1, page: 0 };

  let meta: Awaited<ReturnType<ReturnType<SharpModule>['metadata']>>;
  try {
    meta = await sharp(buf, input).metadata();
  } catch (err) {
    throw mapSharpError(err, format, opts.maxPixels);
  }
  // Header-only check: refuse a decompression bomb before a single pixel is decoded.
  const rawWidth = meta.width;
  const rawHeight = meta.pageHeight ?? meta.height;
  if (!rawWidth || !rawHeight) throw corrupt(format, new Error('no image dimensions in the header'));
  if (rawWidth * rawHeight > opts.maxPixels) throw tooManyPixels(rawWidth, rawHeight, opts.maxPixels);
  const swapsAxes = (meta.orientation ?? 1) >= 5;

  const { size } = opts.view;
  const release = await opts.reserveMemory?.(
    decodeMemoryBytes(format, rawWidth * rawHeight, meta.isProgressive === true, meta.chromaSubsampling),
  );
  try {
    const decoded = sharp(buf, input)
      .rotate() // EXIF auto-orientation: phones store portraits sideways
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb'); // CMYK via libvips' built-in profile, greyscale expanded to three channels
    const { data, info } = await withView(sharp, decoded, opts.view);
    if (info.channels !== 3 || data.length !== size * size * 3) {
      throw new Error(`unexpected decoder output ${info.width}×${info.height}×${info.channels}`);
    }
    return {
      rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: swapsAxes ? rawHeight : rawWidth,
      height: swapsAxes ? rawWidth : rawHeight,
    };
  } catch (err) {
    throw mapSharpError(err, format, opts.maxPixels);
  } finally {
    release?.();
  }
}

/**
 * The view on a sharp pipeline: crop and resize to the square, then, for the 64 px look, the JPEG round trip (the
 * low-resolution photos were stored as small JPEGs, so every photo makes the same trip, and a sharp photo cannot be
 * told from a low-resolution one by its compression either); out as raw 8-bit RGB (16-bit PNGs included).
 */
async function withView(sharp: SharpModule, pipeline: SharpPipeline, view: View) {
  let viewed = pipeline.resize(view.size, view.size, { fit: view.crop, position: 'centre' }).removeAlpha();
  if (view.jpegQuality !== undefined) {
    viewed = sharp(await viewed.jpeg({ quality: view.jpegQuality }).toBuffer()).removeAlpha();
  }
  return viewed.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
}

function mapSharpError(err: unknown, format: ImageFormat, maxPixels: number): DecodeError {
  if (err instanceof DecodeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(message)) {
    return new DecodeError(
      'too_many_pixels',
      `The image has more than the ${(maxPixels / 1e6).toFixed(1)} MP this service decodes. Scale it down and try again.`,
      { cause: err },
    );
  }
  return corrupt(format, err);
}

// ---------------------------------------------------------------------------------------------------------
// jimp

const importJimp = () => import('jimp');
let jimpModule: ReturnType<typeof importJimp> | undefined;
function loadJimp(): ReturnType<typeof importJimp> {
  jimpModule ??= importJimp();
  return jimpModule;
}

async function decodeWithJimp(buf: Buffer, format: ImageFormat, opts: DecodeOptions): Promise<Pixels> {
  if (format === 'webp') {
    throw new DecodeError(
      'unsupported',
      'WebP needs the sharp decoder; this server runs the pure-JavaScript one (IMAGE_DECODER=jimp), which reads ' +
        'JPEG, PNG and GIF. Send one of those, or run the service with IMAGE_DECODER=sharp.',
    );
  }
  const dims = headerDimensions(buf, format);
  if (!dims) throw corrupt(format, new Error('no image dimensions in the header'));
  if (dims.width * dims.height > opts.maxPixels) throw tooManyPixels(dims.width, dims.height, opts.maxPixels);

  const { Jimp } = await loadJimp();
  let image: Awaited<ReturnType<typeof Jimp.fromBuffer>>;
  try {
    image = await Jimp.fromBuffer(buf, {
      // jpeg-js would otherwise paint a truncated file's missing rows grey and carry on (see the sharp side).
      'image/jpeg': { tolerantDecoding: false, maxResolutionInMP: opts.maxPixels / 1e6 },
    });
  } catch (err) {
    throw corrupt(format, err);
  }
  // jimp has already applied EXIF orientation; flatten before resizing so transparent pixels' hidden colours
  // cannot bleed into their neighbours.
  const { width, height } = image.bitmap;
  flattenOntoWhite(image.bitmap.data);
  const { size, crop, jpegQuality } = opts.view;
  if (crop === 'cover') image.cover({ w: size, h: size });
  else image.resize({ w: size, h: size });
  if (jpegQuality !== undefined) {
    const small = await image.getBuffer('image/jpeg', { quality: jpegQuality });
    image = await Jimp.fromBuffer(small);
  }
  return { rgb: rgbaToRgb(image.bitmap.data, size * size), width, height };
}

function flattenOntoWhite(rgba: Buffer): void {
  for (let i = 0; i < rgba.length; i += 4) {
    const alpha = rgba[i + 3]!;
    if (alpha === 255) continue;
    const keep = alpha / 255;
    const white = 255 * (1 - keep);
    rgba[i] = Math.round(rgba[i]! * keep + white);
    rgba[i + 1] = Math.round(rgba[i + 1]! * keep + white);
    rgba[i + 2] = Math.round(rgba[i + 2]! * keep + white);
    rgba[i + 3] = 255;
  }
}

function rgbaToRgb(rgba: Buffer, pixels: number): Uint8Array {
  const rgb = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    rgb[p * 3] = rgba[p * 4]!;
    rgb[p * 3 + 1] = rgba[p * 4 + 1]!;
    rgb[p * 3 + 2] = rgba[p * 4 + 2]!;
  }
  return rgb;
}

/**
 * Width and height from the file header alone (the stored orientation), so the pure-JS path can refuse a
 * decompression bomb before allocating its bitmap. Returns undefined when the header is unreadable.
 */
function headerDimensions(buf: Buffer, format: ImageFormat): { width: number; height: number } | undefined {
  switch (format) {
    case 'png':
      // IHDR is always the first chunk: signature (8) + length (4) + type (4), then width and height.
      if (buf.length < 24 || buf.toString('latin1', 12, 16) !== 'IHDR') return undefined;
      return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
    case 'gif':
      // The logical screen bounds every frame.
      if (buf.length < 10) return undefined;
      return { width: buf.readUInt16LE(6), height: buf.readUInt16LE(8) };
    case 'jpeg':
      return jpegDimensions(buf);
    case 'webp':
      return undefined;
  }
}

function jpegDimensions(buf: Buffer): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 4 <= buf.length) {
    if (buf[i] !== 0xff) return undefined;
    const marker = buf[i + 1]!;
    if (marker === 0xff) {
      i += 1; // fill byte
      continue;
    }
    // Markers without a length field.
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    const length = buf.readUInt16BE(i + 2);
    // SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 9 > buf.length) return undefined;
      return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
    }
    i += 2 + length;
  }
  return undefined;
}
