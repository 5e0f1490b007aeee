import express, { type Request, type Response } from 'express';
import multer from 'multer';
import { ACCEPTED_MEDIA_TYPES } from '../../../model/src/preprocess';
import { HttpError } from './http-error';
import { megabytes } from '../inference/decode-memory';
import { checkPhotoFormat } from './photo-format';

/**
 * Receiving one photo: a multipart form with the field `file`, or the raw photo as the body (Content-Type
 * image/* or application/octet-stream). Uploads stay in memory, never on disk. What the bytes are is decided by
 * their signature, not by the name or the declared type.
 */

/** The photo, once it is known to be non-empty and in a format the decoders read. */
function checkedPhoto(buffer: Buffer): Buffer {
  if (buffer.length === 0)
    throw new HttpError(400, 'empty_file', 'The photo is empty (0 bytes): choose another file.');
  checkPhotoFormat(buffer);
  return buffer;
}

/** What a photo over MAX_UPLOAD_BYTES is told, whichever check finds it (the body guard, multer, the raw body). */
export const photoTooLargeMessage = (maxBytes: number) =>
  `The photo is larger than ${megabytes(maxBytes)}: send a smaller or more compressed one.`;

const tooLarge = (maxBytes: number) => new HttpError(413, 'too_large', photoTooLargeMessage(maxBytes));

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
  receive(req: Request, res: Response): Promise<Buffer>;
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
        return checkedPhoto(file.buffer);
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
        return checkedPhoto(body);
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
        `Content-Type '${type || '(none)'}' is not accepted: send multipart/form-data with the field 'file', or the photo itself as ${ACCEPTED_MEDIA_TYPES}.`,
      );
    },
  };
}
