import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { ImageFormat } from '../../model/src/preprocess';

/** Test images generated with sharp (no committed binaries, no dataset photos). */

/** A smooth colour field with some structure, deterministic from the seed, in the given format. */
export async function makeImage(
  format: ImageFormat = 'jpeg',
  width = 320,
  height = 240,
  seed = 1,
): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 255) / width;
      raw[i + 1] = (y * 255) / height;
      raw[i + 2] = (Math.sin((x + seed * 37) / 9) * Math.cos((y - seed * 11) / 7) * 0.5 + 0.5) * 255;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .toFormat(format)
    .toBuffer();
}

export const makeJpeg = (width?: number, height?: number, seed?: number) =>
  makeImage('jpeg', width, height, seed);
export const makePng = (width?: number, height?: number, seed?: number) =>
  makeImage('png', width, height, seed);

/** The photo GET /test classifies: a real-looking food image for tests that want one. */
export function bundledTestPhoto(): Buffer {
  return fs.readFileSync(path.resolve(__dirname, '..', '..', 'service', 'assets', 'test-photo.jpg'));
}

/** A multipart body built by hand, for the shapes a browser's FormData cannot produce. */
export function multipart(
  parts: { name: string; filename?: string; type?: string; data: Buffer | string }[],
  boundary = 'gourmetgram-test-boundary',
): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    const head = `--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`;
    chunks.push(
      Buffer.from(head),
      Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data),
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Bytes as fetch() and Blob take them (a Buffer's type may be backed by a SharedArrayBuffer). */
export const bytes = (b: Buffer): Uint8Array<ArrayBuffer> => Uint8Array.from(b);
