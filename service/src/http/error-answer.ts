import type { Socket } from 'node:net';
import type { Request, Response } from 'express';
import type { HttpError } from './http-error';
import { errorPage, wantsHtml } from './views';

/**
 * The one way an error is answered, wherever it is found (a route, the body guard, shedding, the drain): the error
 * page for a browser, JSON `{error, code, requestId}` for everyone else.
 *
 * A refusal that leaves a body unread closes the connection (reading a refused body to keep the connection alive
 * would be the very work the refusal spares), and closes it lingering, as nginx does: closing a socket with unread
 * bytes makes the kernel send a reset, which can discard the answer before the client has read it (Node's fetch
 * then reports EPIPE or ECONNRESET instead of the 413). So after the answer is sent the server half-closes and goes
 * on reading and discarding what the client still sends, until the client closes, `maxBytes` have been read or
 * `maxMs` have passed, whichever comes first: neither a fast nor a slow client can hold the connection longer.
 */

export interface LingerLimits {
  /** how long, at most, the server keeps reading a refused body after answering */
  maxMs: number;
  /** how many bytes of it, at most */
  maxBytes: number;
}

/**
 * How often a lingering socket's byte count is checked (the HTTP parser reads it natively, without events): a fast
 * client may send what the link carries in this long beyond LINGER_MAX_BYTES (on loopback, a few MB).
 */
const LINGER_POLL_MS = 10;

/**
 * Node ends a `Connection: close` answer with socket.destroySoon(): FIN, then close as soon as the FIN is out, which
 * resets a connection the client is still sending on. This replaces that step for one socket.
 */
function lingerOnClose(socket: Socket, limits: LingerLimits): void {
  socket.destroySoon = function lingeringClose(this: Socket) {
    this.end();
    const startBytes = this.bytesRead;
    const stop = () => {
      clearTimeout(deadline);
      clearInterval(poll);
      this.destroy();
    };
    const deadline = setTimeout(stop, limits.maxMs);
    const poll = setInterval(() => {
      if (this.bytesRead - startBytes >= limits.maxBytes) stop();
    }, LINGER_POLL_MS);
    deadline.unref();
    poll.unref();
    this.once('close', () => {
      clearTimeout(deadline);
      clearInterval(poll);
    });
    // Whatever read the body before the refusal may have paused the socket; the discarding needs it flowing.
    this.resume();
  };
}

/** Whether the request carries a body (a bodiless request is complete only after its handler's first tick). */
export const hasBody = (req: Request) =>
  req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

export type ErrorAnswer = (req: Request, res: Response, error: HttpError) => void;

export function errorAnswer(linger: LingerLimits): ErrorAnswer {
  return (req, res, error) => {
    if (res.headersSent) {
      // Too late for an answer: a half-sent one is cut off rather than left looking whole. One already sent in full
      // (a refusal whose reader failed afterwards) is left to its lingering close.
      if (!res.writableFinished) res.destroy();
      return;
    }
    res.status(error.status).set(error.headers);
    if ((hasBody(req) && !req.complete) || error.headers.Connection === 'close') {
      res.set('Connection', 'close');
      lingerOnClose(req.socket, linger);
    }
    if (wantsHtml(req)) res.type('html').send(errorPage(error.status, error.message));
    else res.json({ error: error.message, code: error.code, requestId: req.id });
  };
}
