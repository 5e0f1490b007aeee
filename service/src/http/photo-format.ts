import { ACCEPTED_FORMATS, sniffFormat, type ImageFormat } from '../../../model/src/preprocess';
import { HttpError } from './http-error';

/**
 * Which photos the service takes, judged by their first bytes (never by a name or a declared type), before a
 * request is admitted: every protocol runs this check on every photo it carries.
 */

/** Known formats the service does not take, with the advice a person needs. */
function unsupportedFormat(buf: Buffer): string | undefined {
  const ascii = (from: number, to: number) => buf.subarray(from, to).toString('latin1');
  if (ascii(4, 8) === 'ftyp') {
    const brand = ascii(8, 12);
    if (/^(heic|heix|hevc|mif1|msf1)$/.test(brand)) {
      return `HEIC/HEIF photos are not supported: send ${ACCEPTED_FORMATS} (an iPhone saves JPEG with Settings > Camera > Formats > Most Compatible).`;
    }
    if (/^avi[fs]$/.test(brand)) return `AVIF images are not supported: send ${ACCEPTED_FORMATS}.`;
  }
  if (ascii(0, 2) === 'BM') return `BMP images are not supported: send ${ACCEPTED_FORMATS}.`;
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*')
    return `TIFF images are not supported: send ${ACCEPTED_FORMATS}.`;
  if (ascii(0, 4) === '%PDF') return `PDF documents are not supported: send a photo as ${ACCEPTED_FORMATS}.`;
  if (/^\s*(<\?xml|<svg)/i.test(ascii(0, 64)))
    return `SVG images are not supported: send ${ACCEPTED_FORMATS}.`;
  return undefined;
}

/** The image format by its leading bytes; throws 415 for anything the decoder does not take. */
export function checkPhotoFormat(buf: Buffer): ImageFormat {
  const format = sniffFormat(buf);
  if (format) return format;
  const known = unsupportedFormat(buf);
  throw new HttpError(
    415,
    'unsupported_type',
    known ?? `This file is not an image the service reads: send ${ACCEPTED_FORMATS}.`,
  );
}
