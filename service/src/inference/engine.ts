import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { DecodeError } from '../../../model/src/preprocess';
import { serviceScript, startThread } from '../process/threads';
import type {
  DecodedInWorker,
  Decoding,
  FromWorker,
  ImageOutcome,
  JobImage,
  ModelDescription,
  ToWorker,
  WorkerInit,
} from './worker-protocol';

/**
 * The inference engine: a pool of worker threads behind one bounded queue. It sheds load by deadline (a request
 * whose expected wait exceeds queueMaxWaitMs is refused at once) and can gather queued images into micro-batches.
 * It knows nothing of HTTP: callers get results or typed errors.
 */

export interface EngineObserver {
  queueDepth?(depth: number): void;
  inFlight?(count: number): void;
  /** one call per finished batch */
  inference?(msPerImage: number, images: number): void;
  rejected?(reason: 'queue_full'): void;
  workerTensors?(worker: number, numTensors: number): void;
  log?(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
}

export interface EngineOptions {
  workers: number;
  init: WorkerInit;
  queueMaxWaitMs: number;
  batchMaxSize: number;
  batchMaxWaitMs: number;
  /** safety cap on queued images, whatever the estimate says */
  maxQueueLength?: number;
  /** the worker script; tests substitute their own */
  workerFile?: string;
  observer?: EngineObserver;
}

export interface ClassifyResult {
  probabilities: Float32Array;
  /** model time of the batch this image ran in, divided by the batch size */
  inferenceMs: number;
  queueMs: number;
  batchSize: number;
  /** for a photo the worker decoded (classifyPhoto): what it made of it */
  decoded?: DecodedInWorker;
}

/** Places in the queue held for images their caller is still preparing; see Engine.admit. */
export interface Admission {
  /** how many images it holds places for */
  readonly images: number;
  release(): void;
}

/** The expected wait is longer than allowed: answer 503 and ask the client to come back after retryAfterSeconds. */
export class OverloadedError extends Error {
  override name = 'OverloadedError';
  constructor(
    readonly retryAfterSeconds: number,
    readonly expectedWaitMs: number,
  ) {
    super(
      `The classifier is busy (expected wait ${Math.round(expectedWaitMs)} ms); retry in ${retryAfterSeconds} s.`,
    );
  }
}

export class NotReadyError extends Error {
  override name = 'NotReadyError';
  constructor() {
    super('The model is still loading; retry in a few seconds.');
  }
}

export class InferenceError extends Error {
  override name = 'InferenceError';
}

interface QueuedImage {
  image: JobImage;
  enqueuedAt: number;
  resolve(result: ClassifyResult): void;
  reject(err: Error): void;
}

interface PoolWorker {
  index: number;
  thread: Worker;
  ready: boolean;
  job?: { id: number; items: QueuedImage[]; startedAt: number };
  numTensors: number;
}

export class Engine {
  private readonly workers: PoolWorker[] = [];
  private readonly queue: QueuedImage[] = [];
  private readonly workerFile: string;
  private readonly maxQueueLength: number;
  private msPerImage = 0;
  private nextJobId = 1;
  private batchTimer?: NodeJS.Timeout;
  private dispatchScheduled = false;
  private closing = false;
  private description?: ModelDescription;
  private inFlightImages = 0;
  /** images admitted but still being prepared (decoded) by their callers: they will queue soon */
  private reserved = 0;

  constructor(private readonly options: EngineOptions) {
    this.workerFile = options.workerFile ?? serviceScript('inference/worker');
    this.maxQueueLength = options.maxQueueLength ?? 10_000;
  }

  /** Starts every worker; resolves when all have loaded and warmed the model, rejects with the first failure. */
  async start(): Promise<ModelDescription> {
    const started = Array.from({ length: this.options.workers }, (_, i) => this.spawn(i));
    await Promise.all(started);
    return this.description!;
  }

  get ready(): boolean {
    return !this.closing && this.workers.length > 0 && this.workers.some((w) => w.ready);
  }

  /** What the workers loaded: undefined until the first worker is ready. */
  get model(): ModelDescription | undefined {
    return this.description;
  }

  get stats(): {
    workers: number;
    queued: number;
    inFlight: number;
    msPerImage: number;
    numTensors: number[];
  } {
    return {
      workers: this.workers.length,
      queued: this.queue.length,
      inFlight: this.inFlightImages,
      msPerImage: this.msPerImage,
      numTensors: this.workers.map((w) => w.numTensors),
    };
  }

  /**
   * How long a request of n images arriving now would wait for a worker. Every ready worker serves one image
   * every msPerImage on average, and a busy one is on average half-way through its current batch.
   */
  expectedWaitMs(n = 1): number {
    const ready = this.workers.filter((w) => w.ready);
    if (ready.length === 0) return Infinity;
    const idle = ready.filter((w) => !w.job).length;
    const ahead = this.queue.length + this.reserved;
    if (ahead + n <= idle) return 0;
    return ((ahead + n) / ready.length + 0.5) * this.msPerImage;
  }

  /**
   * Throws what admit(n) would throw right now, without holding a place: lets the HTTP layer shed a request
   * before it spends anything on it (reading its body, logging it), while admit() still decides later.
   */
  check(n = 1): void {
    if (!this.ready || !this.description) throw new NotReadyError();
    const wait = this.expectedWaitMs(n);
    if (wait > this.options.queueMaxWaitMs || this.queue.length + this.reserved + n > this.maxQueueLength) {
      this.options.observer?.rejected?.('queue_full');
      const finite = Number.isFinite(wait) ? wait : this.options.queueMaxWaitMs;
      throw new OverloadedError(Math.max(1, Math.ceil(finite / 1000)), finite);
    }
  }

  /**
   * Admits n images or throws NotReadyError / OverloadedError. Callers admit before costly preparation
   * (decoding a photo), so a request that will be shed costs next to nothing, and the admitted images count as
   * waiting from then on, so a burst that arrives while the first photos decode is still judged whole. Hand the
   * admission to classify(), and release() it in any case (it is idempotent) in case preparation fails.
   */
  admit(n = 1): Admission {
    this.check(n);
    this.reserved += n;
    let held = true;
    return {
      images: n,
      release: () => {
        if (!held) return;
        held = false;
        this.reserved -= n;
        // Queued images may have been waiting for these to join their batch.
        if (this.queue.length > 0) this.scheduleDispatch();
      },
    };
  }

  /**
   * Classifies images (RGB bytes at the model's input size); one result per image, in order. With an admission
   * from admit() the images are queued without a second check; without one they are admitted now.
   */
  classify(images: Uint8Array[], admission?: Admission): Promise<ClassifyResult[]> {
    if (!this.ready || !this.description) return Promise.reject(new NotReadyError());
    const { size } = this.description.view;
    for (const image of images) {
      if (image.length !== size * size * 3) {
        return Promise.reject(
          new InferenceError(
            `An image must be ${size}x${size} RGB (${size * size * 3} bytes), got ${image.length}.`,
          ),
        );
      }
    }
    try {
      // An admission for fewer images than arrive would let a request queue more than was judged: the rest
      // must pass the check too.
      const unadmitted = images.length - (admission?.images ?? 0);
      if (unadmitted > 0) this.admit(unadmitted).release();
      admission?.release();
    } catch (err) {
      admission?.release();
      return Promise.reject(err as Error);
    }
    return Promise.all(this.enqueue(images.map((rgb) => ({ rgb }))));
  }

  /**
   * Classifies an encoded photo that the worker decodes itself: for a decoder that would block the event loop
   * (jimp is pure JavaScript). A photo the decoder refuses rejects with its DecodeError.
   */
  classifyPhoto(photo: Uint8Array, decode: Decoding, admission?: Admission): Promise<ClassifyResult> {
    try {
      (admission ?? this.admit(1)).release();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.enqueue([{ photo, decode }])[0]!;
  }

  private enqueue(images: JobImage[]): Promise<ClassifyResult>[] {
    const enqueuedAt = performance.now();
    const promises = images.map(
      (image) =>
        new Promise<ClassifyResult>((resolve, reject) => {
          this.queue.push({ image, enqueuedAt, resolve, reject });
        }),
    );
    this.options.observer?.queueDepth?.(this.queue.length);
    this.scheduleDispatch();
    return promises;
  }

  /** Waits for queued and running images to finish, then stops the workers. New work is refused meanwhile. */
  async close(): Promise<void> {
    this.closing = true;
    while (this.queue.length > 0 || this.workers.some((w) => w.job)) {
      await new Promise((r) => setTimeout(r, 10));
      this.dispatch();
    }
    clearTimeout(this.batchTimer);
    await Promise.all(this.workers.map((w) => w.thread.terminate()));
  }

  private spawn(index: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const thread = startThread(this.workerFile, this.options.init);
      const worker: PoolWorker = { index, thread, ready: false, numTensors: 0 };
      this.workers[index] = worker;
      thread.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            worker.ready = true;
            worker.numTensors = message.numTensors;
            this.description ??= message.model;
            if (this.msPerImage === 0) this.msPerImage = message.warmupMsPerImage;
            this.options.observer?.workerTensors?.(index, message.numTensors);
            this.options.observer?.log?.('info', 'inference worker ready', {
              worker: index,
              backend: message.model.backend,
              warmupMsPerImage: Math.round(message.warmupMsPerImage * 10) / 10,
            });
            resolve();
            this.dispatch();
            break;
          case 'result':
            worker.numTensors = message.numTensors;
            this.options.observer?.workerTensors?.(index, message.numTensors);
            this.finishJob(worker, message.jobId, message.inferenceMs, message.busyMs, message.outcomes);
            break;
          case 'failed':
            this.failJob(worker, new InferenceError(`Inference failed: ${message.message}`));
            break;
          case 'log':
            this.options.observer?.log?.(message.level, message.msg, { worker: index, ...message.fields });
            break;
        }
      });
      thread.on('error', (err) => {
        this.options.observer?.log?.('error', 'inference worker failed', { worker: index, err: err.message });
        if (!worker.ready) reject(new Error(`The model could not be loaded: ${err.message}`));
        this.failJob(worker, new InferenceError('The inference worker stopped; please retry.'));
      });
      thread.on('exit', (code) => {
        const wasServing = worker.ready;
        worker.ready = false;
        this.failJob(worker, new InferenceError('The inference worker stopped; please retry.'));
        // A worker that was serving dies only on a crash (out of memory, a native fault): replace it. One that
        // never got ready would fail again the same way, so it is not retried.
        if (!this.closing && wasServing) {
          this.options.observer?.log?.('warn', 'replacing inference worker', {
            worker: index,
            exitCode: code,
          });
          this.spawn(index).catch(() => undefined);
        }
      });
    });
  }

  /**
   * Dispatches on the next turn of the event loop rather than now, so that images enqueued together (a burst
   * of requests, a request of several images) are seen together and can share a forward pass.
   */
  private scheduleDispatch(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  /**
   * Adaptive batching: a free worker takes what is queued, up to BATCH_MAX_SIZE, shared fairly between the free
   * workers (two free workers run two images side by side rather than one batch of two). It waits for a fuller
   * batch only while more images are admitted and still decoding (they will queue within milliseconds), and never
   * past BATCH_MAX_WAIT_MS after the oldest image arrived; a request that arrives alone is never held back.
   */
  private dispatch(): void {
    const batchMax = this.options.batchMaxSize;
    const free = this.workers.filter((w) => w?.ready && !w.job);
    if (this.queue.length > 0 && free.length > 0 && this.shouldWaitForBatch(batchMax)) return;
    for (const [i, worker] of free.entries()) {
      if (this.queue.length === 0) break;
      const share = Math.min(batchMax, Math.ceil(this.queue.length / (free.length - i)));
      this.run(worker, this.queue.splice(0, share));
    }
    this.options.observer?.queueDepth?.(this.queue.length);
  }

  /** Whether to hold the queued images for the ones on their way; if so, a timer dispatches at the bound. */
  private shouldWaitForBatch(batchMax: number): boolean {
    if (batchMax <= 1 || this.closing || this.reserved === 0 || this.queue.length >= batchMax) return false;
    const remaining = this.options.batchMaxWaitMs - (performance.now() - this.queue[0]!.enqueuedAt);
    if (remaining <= 0) return false;
    this.batchTimer ??= setTimeout(() => {
      this.batchTimer = undefined;
      this.dispatch();
    }, remaining);
    return true;
  }

  private run(worker: PoolWorker, items: QueuedImage[]): void {
    const job = { id: this.nextJobId++, items, startedAt: performance.now() };
    worker.job = job;
    // Each image gets its own buffer so it can be transferred, not copied, to the worker; the caller keeps its own
    // (the result page shows what the model saw).
    const images: JobImage[] = items.map(({ image }) =>
      'rgb' in image ? { rgb: new Uint8Array(image.rgb) } : { ...image, photo: new Uint8Array(image.photo) },
    );
    const message: ToWorker = { type: 'classify', jobId: job.id, images };
    worker.thread.postMessage(
      message,
      images.map((i) => ('rgb' in i ? i.rgb.buffer : i.photo.buffer) as ArrayBuffer),
    );
    this.inFlightImages += items.length;
    this.options.observer?.inFlight?.(this.inFlightImages);
  }

  private finishJob(
    worker: PoolWorker,
    jobId: number,
    inferenceMs: number,
    busyMs: number,
    outcomes: ImageOutcome[],
  ): void {
    const job = worker.job;
    if (!job || job.id !== jobId) return;
    worker.job = undefined;
    const n = job.items.length;
    this.inFlightImages -= n;
    const perImage = inferenceMs / n;
    // An exponential moving average follows a slower machine or a busier neighbour within a few batches.
    const busyPerImage = busyMs / n;
    this.msPerImage = this.msPerImage === 0 ? busyPerImage : 0.8 * this.msPerImage + 0.2 * busyPerImage;
    this.options.observer?.inference?.(perImage, n);
    this.options.observer?.inFlight?.(this.inFlightImages);
    job.items.forEach((item, i) => {
      const outcome = outcomes[i];
      if (!outcome)
        item.reject(new InferenceError('The inference worker gave no answer for an image; please retry.'));
      else if ('error' in outcome) item.reject(new DecodeError(outcome.error.code, outcome.error.message));
      else {
        item.resolve({
          probabilities: outcome.probabilities,
          inferenceMs: perImage,
          queueMs: job.startedAt - item.enqueuedAt,
          batchSize: n,
          decoded: outcome.decoded,
        });
      }
    });
    this.dispatch();
  }

  private failJob(worker: PoolWorker, err: Error): void {
    const job = worker.job;
    if (!job) return;
    worker.job = undefined;
    this.inFlightImages -= job.items.length;
    this.options.observer?.inFlight?.(this.inFlightImages);
    for (const item of job.items) item.reject(err);
    this.dispatch();
  }
}
