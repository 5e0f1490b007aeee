import type { NextFunction, Request, Response } from 'express';
import { hasBody, type ErrorAnswer } from './error-answer';
import { HttpError } from './http-error';

/**
 * Budgets for request bodies, applied before any route reads one: a declared length over the route's limit is
 * answered 413 without reading a byte; the bytes all uploads in progress may hold together are bounded (503
 * once they are spent); every body must have arrived by a deadline (408); and while the server drains, an
 * upload that has stopped moving is answered at once instead of holding the drain to its deadline.
 * Each refusal is answered by `answer` (error-answer.ts: the error page or JSON), which closes the connection after
 * a bounded lingering read, so the client reads the refusal instead of a connection reset.
 */

export type BodyRefusal = 'too_large' | 'upload_budget' | 'body_timeout' | 'draining_stalled';

export interface BodyGuardOptions {
  /** the largest body the route behind this path reads */
  limitFor(path: string): number;
  /** the message a 413 for this path carries */
  tooLargeMessage(path: string, limit: number): string;
  /** bytes all bodies in progress may reserve together */
  budgetBytes: number;
  bodyTimeoutMs: number;
  /** during a drain, an upload that received nothing for this long is cut off */
  drainStallMs?: number;
  onRefused?(reason: BodyRefusal): void;
  /** writes a refusal */
  answer: ErrorAnswer;
}

interface Tracked {
  req: Request;
  res: Response;
  bytesRead: number;
  movedAt: number;
}

export class BodyGuard {
  private reservedBytes = 0;
  private readonly receiving = new Set<Tracked>();
  private drainTimer?: NodeJS.Timeout;

  constructor(private readonly options: BodyGuardOptions) {}

  /** Bytes reserved by bodies in progress right now. */
  get reserved(): number {
    return this.reservedBytes;
  }

  readonly middleware = (req: Request, res: Response, next: NextFunction): void => {
    if (!hasBody(req)) {
      next();
      return;
    }
    const limit = this.options.limitFor(req.path);
    const declared =
      req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined;
    if (declared !== undefined && declared > limit) {
      this.refuse(req, res, 'too_large', 413, this.options.tooLargeMessage(req.path, limit));
      return;
    }
    // A chunked body does not say how long it is: it may be as long as the route allows.
    const reserve = declared ?? limit;
    if (this.reservedBytes + reserve > this.options.budgetBytes) {
      this.refuse(
        req,
        res,
        'upload_budget',
        503,
        'Too many uploads are in progress on this server right now; retry in a moment.',
        { 'Retry-After': '1' },
      );
      return;
    }
    this.reservedBytes += reserve;
    const tracked: Tracked = { req, res, bytesRead: req.socket.bytesRead, movedAt: Date.now() };
    this.receiving.add(tracked);
    const timer = setTimeout(() => {
      if (req.complete) return;
      const seconds = Math.round(this.options.bodyTimeoutMs / 100) / 10;
      this.refuse(
        req,
        res,
        'body_timeout',
        408,
        `The request body did not arrive within ${seconds} seconds: check the connection and send it again.`,
      );
    }, this.options.bodyTimeoutMs);
    // The budget is held until the answer is out: the photo stays in memory while it is decoded.
    res.once('close', () => {
      clearTimeout(timer);
      this.receiving.delete(tracked);
      this.reservedBytes -= reserve;
    });
    next();
  };

  /** From now on (the server is draining), uploads that stop moving are answered 503 and closed. */
  startDrain(): void {
    if (this.drainTimer) return;
    const stallMs = this.options.drainStallMs ?? 1000;
    const check = () => {
      const now = Date.now();
      for (const t of this.receiving) {
        if (t.req.complete) continue;
        const bytesRead = t.req.socket.bytesRead;
        if (bytesRead !== t.bytesRead) {
          t.bytesRead = bytesRead;
          t.movedAt = now;
        } else if (now - t.movedAt >= stallMs) {
          this.refuse(
            t.req,
            t.res,
            'draining_stalled',
            503,
            'The server is shutting down and this upload stalled; send it again and another instance will answer.',
            { 'Retry-After': '1' },
          );
        }
      }
    };
    this.drainTimer = setInterval(check, Math.max(50, Math.floor(stallMs / 4)));
    this.drainTimer.unref();
  }

  private refuse(
    req: Request,
    res: Response,
    reason: BodyRefusal,
    status: number,
    message: string,
    headers: Record<string, string> = {},
  ): void {
    this.options.onRefused?.(reason);
    this.options.answer(req, res, new HttpError(status, reason, message, headers));
  }
}
