import type { Server } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { HttpError } from '../http/http-error';

/**
 * Graceful shutdown. On SIGTERM readiness turns false (Kubernetes stops routing here), the listener stops
 * accepting connections, requests already in progress finish, and the process exits before the deadline,
 * which must stay below the pod's termination grace period.
 */

const PROBES = new Set(['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready']);

export interface DrainTarget {
  server: Server;
  /** stops the inference engine once no request needs it */
  closeEngine(): Promise<void>;
  log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
  exit(code: number): void;
}

export class Lifecycle {
  private drainingSince?: number;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private drainListeners: (() => void)[] = [];

  constructor(private readonly onRejected: () => void = () => undefined) {}

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  /**
   * Counts requests in progress, and refuses new ones that arrive on kept-alive connections after draining began
   * (the listener no longer accepts new connections). Probes still answer, so readiness can be seen to flip.
   */
  readonly middleware = (req: Request, res: Response, next: NextFunction): void => {
    if (this.draining && !PROBES.has(req.path)) {
      this.onRejected();
      // The app's error handler answers it (the error page for a browser) and closes the connection.
      next(
        new HttpError(
          503,
          'draining',
          'The server is shutting down; retry and another instance will answer.',
          {
            'Retry-After': '1',
            Connection: 'close',
          },
        ),
      );
      return;
    }
    this.inFlight++;
    let counted = true;
    const done = () => {
      if (!counted) return;
      counted = false;
      this.inFlight--;
      if (this.inFlight === 0) this.idleWaiters.splice(0).forEach((wake) => wake());
    };
    res.on('finish', done);
    res.on('close', done);
    next();
  };

  /** Called once when draining begins (the body guard then cuts off uploads that stall). */
  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  private idle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drains and exits: 0 when everything finished in time, 1 when the deadline cut requests off. */
  async shutdown(target: DrainTarget, timeoutMs: number): Promise<void> {
    if (this.draining) return;
    this.drainingSince = Date.now();
    // Leave a margin so the process is gone before whoever set the deadline (the kubelet) sends SIGKILL.
    const deadlineMs = Math.max(50, timeoutMs - Math.min(1000, timeoutMs * 0.1));
    const deadline = setTimeout(() => {
      target.log('error', 'drain deadline reached; exiting with requests unfinished', {
        inFlight: this.inFlight,
        deadlineMs,
      });
      target.server.closeAllConnections();
      target.exit(1);
    }, deadlineMs);
    target.log('info', 'draining: readiness is false, no new connections accepted', {
      inFlight: this.inFlight,
      deadlineMs,
    });
    target.server.close();
    target.server.closeIdleConnections();
    for (const listener of this.drainListeners) listener();
    await this.idle();
    await target.closeEngine();
    clearTimeout(deadline);
    target.log('info', 'drained; exiting', { drainMs: Date.now() - this.drainingSince });
    target.exit(0);
  }
}
