import { HttpError } from '../http/http-error';
import { accuracyReport, type AccuracyReport } from './accuracy';
import { openDatabase, type Database, type DatabaseOptions } from './database';
import { migrate } from './migrations';
import {
  PendingWriter,
  type PendingUpload,
  type PendingWriterObserver,
  type ReserveMemory,
} from './pending-writer';
import { newPredictionId, predictionIdTime } from './prediction-id';
import { LabelStore, type LabelledPrediction } from './store';

/**
 * The labels, as the routes see them: record a prediction (queued, never awaited), label one, read the live
 * accuracy. Behind it: the store (opened and migrated in the background, retried until it answers, so the
 * service starts and classifies without a database), the pending writer, and a sweeper that deletes what may
 * not be kept. Every failure of the store becomes 503 + Retry-After for the label's sender: a label is either
 * stored or its sender is told to retry, never dropped quietly.
 */

export interface LabelsObserver extends PendingWriterObserver {
  /** one call per prediction labelled for the first time (a replaced label is not counted again) */
  labelled?(prediction: LabelledPrediction): void;
}

export interface LabelsOptions {
  database: DatabaseOptions;
  pendingMs: number;
  retentionMs: number;
  queueMaxBytes: number;
  /** the service's decode memory budget: scaling a photo for the store draws on it */
  reserveMemory?: ReserveMemory;
  observer?: LabelsObserver;
  now?: () => number;
  /** how often the sweeper runs */
  sweepEveryMs?: number;
}

/** The labels store as readiness reports it. */
export type LabelsState = 'opening' | 'open' | 'unavailable';

/** A prediction to record: everything but the id and the time, which record() gives it. */
export type NewPrediction = Omit<PendingUpload, 'id' | 'createdAt'>;

/** An unknown id younger than this may still be on its way to the store from another replica. */
const IN_FLIGHT_MS = 30_000;
/** How long a label waits for its own prediction's write on this replica before it answers 503. */
const WAIT_FOR_WRITE_MS = 3_000;
const RETRY_AFTER_S = '5';

const unavailable = (why: string) =>
  new HttpError(
    503,
    'labels_unavailable',
    `The labels store is unavailable (${why}); please retry shortly.`,
    {
      'Retry-After': RETRY_AFTER_S,
    },
  );

export class Labels {
  private store?: LabelStore;
  private db?: Database;
  private closed = false;
  private readonly writer: PendingWriter;
  private readonly now: () => number;
  private readonly timers: NodeJS.Timeout[] = [];
  private opening?: Promise<void>;
  /** the first attempt to open the store has ended, opened or failed */
  private firstAttemptOver = false;

  constructor(private readonly options: LabelsOptions) {
    this.now = options.now ?? Date.now;
    this.writer = new PendingWriter({
      maxBytes: options.queueMaxBytes,
      pendingMs: options.pendingMs,
      ...(options.reserveMemory ? { reserveMemory: options.reserveMemory } : {}),
      now: this.now,
      observer: options.observer,
      write: async (records) => {
        if (!this.store) throw new Error('not open yet');
        await this.store.savePending(records);
      },
    });
  }

  /** Opens the store in the background, retrying until it answers; resolves once it is open (or closed). */
  start(): Promise<void> {
    this.opening ??= this.openUntilDone();
    return this.opening;
  }

  get isOpen(): boolean {
    return this.store !== undefined;
  }

  /** What readiness reports of the store. */
  get state(): LabelsState {
    if (this.store) return 'open';
    return this.firstAttemptOver ? 'unavailable' : 'opening';
  }

  /**
   * Whether the labels let the service say it is ready. The embedded store is part of this process and opens
   * while the model loads, so readiness waits for its first attempt: a user who opens the page once /readyz says
   * ready gets no 503 from /labels or /accuracy. (Should that attempt fail, classification goes on and labels
   * answer 503 while it retries.) A server's state never holds readiness back: a pod whose database is down
   * stays ready for predictions.
   */
  get ready(): boolean {
    return this.options.database.url !== undefined || this.firstAttemptOver;
  }

  /** Where the data is, for the log. */
  get where(): string | undefined {
    return this.db?.where;
  }

  private async openUntilDone(): Promise<void> {
    const log = this.options.observer?.log;
    let retryMs = 500;
    while (!this.closed) {
      let db: Database | undefined;
      try {
        db = openDatabase({
          ...this.options.database,
          onIdleError: (err) => log?.('warn', 'labels store connection lost', { err: err.message }),
        });
        const applied = await migrate(db);
        if (this.closed) {
          await db.close();
          return;
        }
        this.db = db;
        this.store = new LabelStore(db);
        this.firstAttemptOver = true;
        this.options.observer?.storeUp?.(true);
        log?.('info', `labels store open: ${db.where}`, { migrationsApplied: applied });
        this.startSweeper();
        // Predictions made while the store was closed are waiting.
        this.writer.nudge();
        return;
      } catch (err) {
        this.firstAttemptOver = true;
        this.options.observer?.storeUp?.(false);
        log?.('warn', 'labels store cannot be opened yet; classification goes on, labels answer 503', {
          err: (err as Error).message,
          retryMs,
        });
        await db?.close().catch(() => undefined);
        await new Promise((r) => setTimeout(r, retryMs).unref());
        retryMs = Math.min(retryMs * 2, 30_000);
      }
    }
  }

  private startSweeper(): void {
    const every = this.options.sweepEveryMs ?? Math.min(60_000, this.options.pendingMs / 4);
    const sweep = () => {
      this.store?.sweep(new Date(this.now()), this.options.pendingMs, this.options.retentionMs).then(
        (deleted) => {
          if (deleted.pending + deleted.labelled > 0)
            this.options.observer?.log?.('info', 'labels store swept', deleted);
        },
        (err: Error) => this.options.observer?.log?.('warn', 'labels sweep failed', { err: err.message }),
      );
    };
    sweep();
    const timer = setInterval(sweep, every);
    timer.unref();
    this.timers.push(timer);
  }

  /**
   * Queues a prediction for the store and returns its id, or undefined when the queue is full (the answer then
   * offers no labelling). Never waits for the store.
   */
  record(prediction: NewPrediction): string | undefined {
    const now = this.now();
    const id = newPredictionId(now);
    return this.writer.offer({ ...prediction, id, createdAt: new Date(now) }) ? id : undefined;
  }

  /** Labels (or relabels) a prediction; `label` is a class id the route has validated. */
  async label(id: string, label: string): Promise<LabelledPrediction> {
    if (this.writer.has(id)) {
      // The label came back before this replica wrote its prediction: write it first.
      const waited = await Promise.race([
        this.writer.written(id).then(
          () => 'written' as const,
          () => 'dropped' as const,
        ),
        new Promise<'late'>((r) => setTimeout(() => r('late'), WAIT_FOR_WRITE_MS).unref()),
      ]);
      if (waited === 'late') throw unavailable('its prediction is not written yet');
      if (waited === 'dropped') {
        // It will never be in the store (label_pending_dropped_total says why): retrying cannot help.
        throw new HttpError(
          404,
          'not_stored',
          `Prediction ${id} could not be stored, so it cannot be labelled.`,
        );
      }
    }
    const store = this.store;
    if (!store) throw unavailable('not open yet');
    let outcome;
    try {
      outcome = await store.label(id, label, new Date(this.now()), this.options.pendingMs);
    } catch (err) {
      this.options.observer?.storeUp?.(false);
      this.options.observer?.log?.('warn', 'a label could not be stored', { err: (err as Error).message });
      throw unavailable('it did not answer');
    }
    this.options.observer?.storeUp?.(true);
    if (outcome.status === 'labelled') {
      if (outcome.prediction.first) this.options.observer?.labelled?.(outcome.prediction);
      return outcome.prediction;
    }
    if (outcome.status === 'expired') {
      throw new HttpError(
        410,
        'expired',
        `Prediction ${id} can no longer be labelled: labels are taken for ${Math.round(this.options.pendingMs / 60_000)} minutes after a prediction.`,
      );
    }
    const madeAt = predictionIdTime(id);
    if (madeAt !== undefined && Math.abs(this.now() - madeAt) < IN_FLIGHT_MS) {
      throw new HttpError(
        503,
        'not_stored_yet',
        `Prediction ${id} is still on its way to the store; retry in a moment.`,
        { 'Retry-After': '1' },
      );
    }
    throw new HttpError(
      404,
      'unknown_prediction',
      `No prediction ${id} waits for a label (unknown or expired).`,
    );
  }

  async accuracy(knownClasses: readonly string[]): Promise<AccuracyReport> {
    const store = this.store;
    if (!store) throw unavailable('not open yet');
    try {
      return accuracyReport(await store.tally(), knownClasses);
    } catch (err) {
      this.options.observer?.log?.('warn', 'accuracy could not be read', { err: (err as Error).message });
      throw unavailable('it did not answer');
    }
  }

  /** Gives queued predictions until the deadline to reach the store, then closes it. */
  async close(deadlineMs = 2_000): Promise<void> {
    this.closed = true;
    for (const t of this.timers.splice(0)) clearInterval(t);
    await this.writer.close(this.store ? deadlineMs : 0);
    const db = this.db;
    this.store = undefined;
    this.db = undefined;
    await db?.close();
  }
}
