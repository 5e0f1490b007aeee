import sharp from 'sharp';
import { decodeMemoryBytes, sniffFormat } from '../../../model/src/preprocess';
import type { PendingPrediction } from './store';

/**
 * Predictions on their way to the store, off the request's path: a prediction is answered first, and this queue
 * scales its photo to 512 px and writes it in batches afterwards. The queue is bounded by the bytes it holds:
 * when it is full, a new prediction is refused here (and answered without an id, so nobody is offered a label
 * that could not be kept); while the store is down, the queue keeps its records and retries with backoff, so a
 * slow or stopped database costs a prediction nothing. A record still unwritten when its pending window ends is
 * dropped (nobody could label it any more); every drop is counted.
 */

/** A prediction as the route hands it over: the photo as it arrived, not yet scaled. */
export interface PendingUpload extends Omit<PendingPrediction, 'photo'> {
  original: Buffer;
}

export type DropReason = 'queue_full' | 'expired' | 'photo' | 'shutdown';

export interface PendingWriterObserver {
  queueBytes?(bytes: number): void;
  dropped?(reason: DropReason): void;
  written?(count: number): void;
  /** whether the last write reached the store */
  storeUp?(up: boolean): void;
  log?(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
}

export interface PendingWriterOptions {
  maxBytes: number;
  pendingMs: number;
  /** writes a batch; throws when the store is unavailable (the batch is retried) */
  write(records: PendingPrediction[]): Promise<void>;
  observer?: PendingWriterObserver;
  now?: () => number;
  batchSize?: number;
  /** first and largest pause between retries */
  retryMs?: { min: number; max: number };
  /** the service's decode memory budget, which scaling a photo draws on */
  reserveMemory?: ReserveMemory;
}

interface Entry {
  upload: PendingUpload;
  photo?: Uint8Array;
  bytes: number;
  waiters: { resolve(): void; reject(err: Error): void }[];
}

/** The longest side of a kept photo: enough to retrain on at any view the model may use. */
export const KEPT_PHOTO_SIZE = 512;

/** Holds decoding memory from the service's budget (DecodeMemory.reserve): resolves with its release. */
export type ReserveMemory = (bytes: number) => Promise<() => void>;

/**
 * The photo as the store keeps it. Decoding it again costs what decoding it for the model did (a progressive
 * 12 MP JPEG holds ~38 MB until its last scan), so it takes its share of the same budget, DECODE_MEMORY_BYTES,
 * and waits for it like any other decode.
 */
export async function scalePhoto(original: Buffer, reserveMemory?: ReserveMemory): Promise<Buffer> {
  const meta = await sharp(original, { failOn: 'none' }).metadata();
  const format = sniffFormat(original);
  const release = await reserveMemory?.(
    decodeMemoryBytes(
      format ?? 'png',
      (meta.width ?? 0) * (meta.height ?? 0),
      meta.isProgressive === true,
      meta.chromaSubsampling,
    ),
  );
  try {
    return await sharp(original, { failOn: 'none' })
      .rotate()
      .resize(KEPT_PHOTO_SIZE, KEPT_PHOTO_SIZE, { fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 85 })
      .toBuffer();
  } finally {
    release?.();
  }
}

export class RecordDroppedError extends Error {
  override name = 'RecordDroppedError';
}

export class PendingWriter {
  private readonly queue: Entry[] = [];
  private readonly byId = new Map<string, Entry>();
  private bytes = 0;
  private running = false;
  private closed = false;
  private wake?: () => void;
  private readonly now: () => number;

  constructor(private readonly options: PendingWriterOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Queues a prediction; false (and counted) when the queue is full or closed. Never waits. */
  offer(upload: PendingUpload): boolean {
    const bytes = upload.original.length;
    if (this.closed || this.bytes + bytes > this.options.maxBytes) {
      this.options.observer?.dropped?.(this.closed ? 'shutdown' : 'queue_full');
      return false;
    }
    const entry: Entry = { upload, bytes, waiters: [] };
    this.queue.push(entry);
    this.byId.set(upload.id, entry);
    this.account(bytes);
    void this.run();
    return true;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  get length(): number {
    return this.queue.length;
  }

  /** Resolves once the record is in the store (at once if it is not queued here); rejects if it is dropped. */
  written(id: string): Promise<void> {
    const entry = this.byId.get(id);
    if (!entry) return Promise.resolve();
    this.nudge();
    return new Promise((resolve, reject) => entry.waiters.push({ resolve, reject }));
  }

  /** Stops taking records and gives the ones queued until the deadline to reach the store. */
  async close(deadlineMs: number): Promise<void> {
    this.closed = true;
    const until = this.now() + deadlineMs;
    while (this.queue.length > 0 && this.now() < until) {
      this.nudge();
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const entry of this.queue.splice(0)) this.drop(entry, 'shutdown');
    this.nudge();
  }

  private account(delta: number): void {
    this.bytes += delta;
    this.options.observer?.queueBytes?.(this.bytes);
  }

  private drop(entry: Entry, reason: DropReason): void {
    this.byId.delete(entry.upload.id);
    this.account(-entry.bytes);
    this.options.observer?.dropped?.(reason);
    const err = new RecordDroppedError(`prediction ${entry.upload.id} was not stored (${reason})`);
    for (const w of entry.waiters) w.reject(err);
  }

  /** Ends a pause between retries now (the store has just opened, or someone waits for a record). */
  nudge(): void {
    this.wake?.();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const { min, max } = this.options.retryMs ?? { min: 250, max: 15_000 };
    let retryMs = min;
    try {
      while (this.queue.length > 0) {
        const tooOld = this.now() - this.options.pendingMs;
        while (this.queue[0] && this.queue[0].upload.createdAt.getTime() < tooOld) {
          this.drop(this.queue.shift()!, 'expired');
        }
        const batch = this.queue.slice(0, this.options.batchSize ?? 16);
        if (batch.length === 0) break;
        const ready: Entry[] = [];
        for (const entry of batch) {
          if (!entry.photo && !(await this.scale(entry))) continue;
          ready.push(entry);
        }
        try {
          await this.options.write(
            ready.map(({ upload: { original: _original, ...record }, photo }) => ({
              ...record,
              photo: photo!,
            })),
          );
        } catch (err) {
          this.options.observer?.storeUp?.(false);
          this.options.observer?.log?.(
            'warn',
            'labels store unavailable; pending predictions kept for a retry',
            {
              err: (err as Error).message,
              queued: this.queue.length,
              retryMs,
            },
          );
          await this.pause(retryMs);
          retryMs = Math.min(retryMs * 2, max);
          continue;
        }
        retryMs = min;
        this.options.observer?.storeUp?.(true);
        this.options.observer?.written?.(ready.length);
        for (const entry of ready) {
          this.queue.splice(this.queue.indexOf(entry), 1);
          this.byId.delete(entry.upload.id);
          this.account(-entry.bytes);
          for (const w of entry.waiters) w.resolve();
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Replaces the upload by its 512 px JPEG (the queue then holds fewer bytes); false when it cannot be read. */
  private async scale(entry: Entry): Promise<boolean> {
    try {
      const photo = await scalePhoto(entry.upload.original, this.options.reserveMemory);
      entry.photo = photo;
      entry.upload = { ...entry.upload, original: Buffer.alloc(0) };
      this.account(photo.length - entry.bytes);
      entry.bytes = photo.length;
      return true;
    } catch (err) {
      this.options.observer?.log?.('warn', 'a photo could not be scaled for the labels store', {
        id: entry.upload.id,
        err: (err as Error).message,
      });
      this.queue.splice(this.queue.indexOf(entry), 1);
      this.drop(entry, 'photo');
      return false;
    }
  }
}
