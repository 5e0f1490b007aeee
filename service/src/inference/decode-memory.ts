import { DecodeError } from '../../../model/src/preprocess';

/** A size as the service's messages state it: "10.0 MB". */
export const megabytes = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

/**
 * The memory all decodes in progress may hold together (DECODE_MEMORY_BYTES), shared first come, first served:
 * each decode reserves what model/src/preprocess.ts's decodeMemoryBytes says it will need, from its header, before
 * a pixel is decoded, and waits while the reservations of the decodes running leave too little. A progressive
 * 12 MP JPEG holds about 38 MB while it decodes, a baseline one about 6 MB; without a bound, four libuv threads
 * decoding large progressive photos at once could hold half a gigabyte. A photo that alone needs more than the
 * whole budget is refused (422) before it is decoded, so the bound holds whatever arrives.
 */
export class DecodeMemory {
  private reserved = 0;
  private readonly waiting: { bytes: number; start: () => void }[] = [];

  constructor(readonly budgetBytes: number) {}

  /** Bytes reserved by decodes running now. */
  get inUse(): number {
    return this.reserved;
  }

  /** Resolves with the release once `bytes` may be held; rejects with DecodeError when they never could. */
  readonly reserve = (bytes: number): Promise<() => void> => {
    if (bytes > this.budgetBytes) {
      return Promise.reject(
        new DecodeError(
          'too_many_pixels',
          `Decoding this photo would take about ${megabytes(bytes)} of memory, more than the ${megabytes(this.budgetBytes)} this server gives decoding (a progressive JPEG or a PNG is decoded at full size): send a smaller photo, or a standard (baseline) JPEG.`,
        ),
      );
    }
    const share = bytes;
    return new Promise((resolve) => {
      this.waiting.push({
        bytes: share,
        start: () => {
          this.reserved += share;
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            this.reserved -= share;
            this.startWaiting();
          });
        },
      });
      this.startWaiting();
    });
  };

  private startWaiting(): void {
    // In arrival order: a large decode is not passed over for ever by smaller ones arriving after it.
    while (this.waiting.length > 0 && this.reserved + this.waiting[0]!.bytes <= this.budgetBytes) {
      this.waiting.shift()!.start();
    }
  }
}
