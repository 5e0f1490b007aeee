import { DecodeError } from '../../../model/src/preprocess';
import { InferenceError, NotReadyError, OverloadedError } from '../inference/engine';

/** An error that already knows its HTTP answer: status, a stable code for programs, a message for people. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const DECODE_STATUS = { unsupported: 415, corrupt: 422, too_many_pixels: 422 } as const;

/**
 * The HTTP answer to any error thrown while serving a request. Unknown errors become a bare 500: their
 * details go to the log (with the request id), never to the client.
 */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof DecodeError) return new HttpError(DECODE_STATUS[err.code] ?? 422, err.code, err.message);
  if (err instanceof OverloadedError) {
    return new HttpError(503, 'overloaded', err.message, { 'Retry-After': String(err.retryAfterSeconds) });
  }
  if (err instanceof NotReadyError)
    return new HttpError(503, 'not_ready', err.message, { 'Retry-After': '5' });
  if (err instanceof InferenceError) return new HttpError(500, 'inference_failed', err.message);
  // Express decodes route parameters; a malformed escape (/v2/models/%ZZ) is the client's mistake.
  if (err instanceof URIError) {
    return new HttpError(
      400,
      'bad_path',
      'The path holds an invalid percent-encoding (such as %ZZ): encode the name again and retry.',
    );
  }
  const e = err as { type?: string; status?: number; message?: string };
  // body-parser's errors (the OIP JSON body) carry a type and a client-error status.
  if (e.type === 'entity.too.large') return new HttpError(413, 'too_large', 'The request body is too large.');
  if (e.type === 'entity.parse.failed') {
    return new HttpError(400, 'bad_json', `The body is not valid JSON (${e.message ?? 'parse error'}).`);
  }
  if (e.type && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return new HttpError(e.status, 'bad_request', e.message ?? 'The request could not be read.');
  }
  return new HttpError(
    500,
    'internal',
    'Something went wrong on our side; please retry. The log has the details.',
  );
}
