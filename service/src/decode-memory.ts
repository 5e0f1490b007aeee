/**
 * The memory all decodes in progress may hold together (DECODE_MEMORY_BYTES), shared first come, first served:
 * each decode reserves what model/src/preprocess.ts's decodeMemoryBytes says it will need, from its header, before
 * a pixel is decoded, and waits while the reservations of the decodes running leave too little. A progressive
 * 12 MP JPEG holds about 38 MB while it decodes, a baseline one about 6 MB; without a bound, four libuv threads
 * decoding large progressive photos at once could hold half a gigabyte. One decode larger than the whole budget
 * (MAX_PIXELS bounds it) runs alone.
 */
export class DecodeMemory {
  private reserved = 0;
  private readonly waiting: { bytes: number; start: () => void }[] = [];

  constructor(readonly budgetBytes: number) {}

  /** Bytes reserved by decodes running now. */
  get inUse(): number {
    return this.reserved;
  }

  /** Resolves with the release once `bytes` (at most the whole budget) may be held. */
  readonly reserve = (bytes: number): Promise<() => void> => {
    const share = Math.min(bytes, this.budgetBytes);
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
