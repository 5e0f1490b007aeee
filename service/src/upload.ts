import express, { type Request, type Response } from 'express';
import multer from 'multer';
import { sniffFormat, type ImageFormat } from '../../model/src/preprocess';
import { HttpError } from './http-error';

/**
 * Receiving one photo: a multipart form with the field `file`, or the raw photo as the body (Content-Type
 * image/* or application/octet-stream). Uploads stay in memory, never on disk. What the bytes are is decided by
 * their signature, not by the name or the declared type.
 */

export interface Upload {
  buffer: Buffer;
  format: ImageFormat;
  filename?: string;
}

const ACCEPTED = 'JPEG, PNG, WebP or GIF';

/** Known formats the service does not take, with the advice a person needs. */
function unsupportedFormat(buf: Buffer): string | undefined {
  const ascii = (from: number, to: number) => buf.subarray(from, to).toString('latin1');
  if (ascii(4, 8) === 'ftyp') {
    const brand = ascii(8, 12);
    if (/^(heic|heix|hevc|mif1|msf1)$/.test(brand)) {
      return `HEIC/HEIF photos are not supported: send ${ACCEPTED} (an iPhone saves JPEG with Settings > Camera > Formats > Most Compatible).`;
    }
    if (/^avi[fs]$/.test(brand)) return `AVIF images are not supported: send ${ACCEPTED}.`;
  }
  if (ascii(0, 2) === 'BM') return `BMP images are not supported: send ${ACCEPTED}.`;
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*')
    return `TIFF images are not supported: send ${ACCEPTED}.`;
  if (ascii(0, 4) === '%PDF') return `PDF documents are not supported: send a photo as ${ACCEPTED}.`;
  if (/^\s*(<\?xml|<svg)/i.test(ascii(0, 64))) return `SVG images are not supported: send ${ACCEPTED}.`;
  return undefined;
}

/** The image format by its leading bytes; throws 415 for anything the decoder does not take. */
export function sniffImageFormat(buf: Buffer): ImageFormat {
  const format = sniffFormat(buf);
  if (format) return format;
  const known = unsupportedFormat(buf);
  throw new HttpError(
    415,
    'unsupported_type',
    known ?? `This file is not an image the service reads: send ${ACCEPTED}.`,
  );
}

function checkedUpload(buffer: Buffer, filename?: string): Upload {
  if (buffer.length === 0)
    throw new HttpError(400, 'empty_file', 'The photo is empty (0 bytes): choose another file.');
  return { buffer, format: sniffImageFormat(buffer), filename };
}

function tooLarge(maxBytes: number): HttpError {
  const mb = (maxBytes / (1024 * 1024)).toFixed(1);
  return new HttpError(
    413,
    'too_large',
    `The photo is larger than ${mb} MB: send a smaller or more compressed one.`,
  );
}

function multerToHttp(err: unknown, maxBytes: number): HttpError {
  if (err instanceof multer.MulterError) {
    switch (err.code) {
      case 'LIMIT_FILE_SIZE':
        return tooLarge(maxBytes);
      case 'LIMIT_FILE_COUNT':
        return new HttpError(400, 'too_many_files', 'Send one photo per request (several files were sent).');
      case 'LIMIT_UNEXPECTED_FILE':
        return new HttpError(
          400,
          'wrong_field',
          `Send the photo in the form field 'file' (got '${err.field}').`,
        );
      default:
        return new HttpError(
          400,
          'bad_form',
          `The form could not be read (${err.message}); send one photo in the field 'file'.`,
        );
    }
  }
  return new HttpError(
    400,
    'bad_form',
    `The multipart form could not be read (${(err as Error).message}); send one photo in the field 'file'.`,
  );
}

export interface UploadReceiver {
  /** Reads the request's photo; throws HttpError (400/413/415) with a message a person can act on. */
  receive(req: Request, res: Response): Promise<Upload>;
}

export function createUploadReceiver(maxBytes: number): UploadReceiver {
  const multipart = multer({
    storage: multer.memoryStorage(),
    // A form from the upload page carries one file and nothing else; the other limits stop abusive forms early.
    limits: { fileSize: maxBytes, files: 1, fields: 10, fieldSize: 64 * 1024, parts: 20 },
  }).any();
  const raw = express.raw({ type: () => true, limit: maxBytes });

  const run = (handler: express.RequestHandler, req: Request, res: Response) =>
    new Promise<void>((resolve, reject) =>
      handler(req, res, (err?: unknown) => (err ? reject(err) : resolve())),
    );

  return {
    async receive(req, res) {
      const type = req.headers['content-type'] ?? '';
      if (type.startsWith('multipart/form-data')) {
        await run(multipart, req, res).catch((err: unknown) => {
          throw multerToHttp(err, maxBytes);
        });
        const files = (req.files as Express.Multer.File[] | undefined) ?? [];
        const file = files[0];
        if (!file)
          throw new HttpError(400, 'missing_file', "No photo was sent: add one in the form field 'file'.");
        if (file.fieldname !== 'file') {
          throw new HttpError(
            400,
            'wrong_field',
            `Send the photo in the form field 'file' (got '${file.fieldname}').`,
          );
        }
        return checkedUpload(file.buffer, file.originalname);
      }
      if (type.startsWith('image/') || type.startsWith('application/octet-stream')) {
        await run(raw, req, res).catch((err: { type?: string; message: string }) => {
          if (err.type === 'entity.too.large') throw tooLarge(maxBytes);
          throw new HttpError(400, 'bad_body', `The request body could not be read (${err.message}).`);
        });
        const body: unknown = req.body;
        if (!Buffer.isBuffer(body) || body.length === 0) {
          throw new HttpError(400, 'empty_body', 'The request body is empty: send the photo as the body.');
        }
        return checkedUpload(body);
      }
      const length = Number(req.headers['content-length'] ?? 0);
      if (!type && !length && !req.headers['transfer-encoding']) {
        throw new HttpError(
          400,
          'empty_body',
          "No photo was sent: POST a form with the field 'file', or the photo itself.",
        );
      }
      throw new HttpError(
        415,
        'unsupported_media_type',
        `Content-Type '${type || '(none)'}' is not accepted: send multipart/form-data with the field 'file', or the photo itself as image/jpeg, image/png, image/webp or image/gif.`,
      );
    },
  };
}
