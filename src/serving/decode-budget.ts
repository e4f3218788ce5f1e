// Bounds on the image work one request, and all requests together, can cause.
// Pixels are what decoding costs (inflate, colour conversion, resize all scale
// with width × height), so a request is charged the pixels its images declare,
// read from their headers before anything is decoded. Decoding itself runs in
// libvips on libuv's thread pool; DecodeSlots caps how many run at once so that
// bombs queue behind each other instead of taking every core and every pool
// thread (which file reads share) from the requests that are cheap.
import { PixelBudgetExceededError, UnprocessableInputError } from './errors.ts';

/** A counting semaphore: at most `limit` tasks run at once, the rest wait in order. */
export class DecodeSlots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter, or free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  /** Tasks waiting for a slot (for tests and metrics). */
  get queued(): number {
    return this.waiting.length;
  }
}

/**
 * Refuses a request with an image larger than `maxPixels` (422, that image named)
 * or whose images declare more than `maxRequestPixels` together (413).
 */
export function chargePixels(declared: readonly { what: string; width: number; height: number }[], maxPixels: number, maxRequestPixels: number): number {
  let total = 0;
  for (const { what, width, height } of declared) {
    if (width * height > maxPixels) {
      throw new UnprocessableInputError(`${what} declares ${width}×${height} pixels; at most ${maxPixels} pixels are accepted (PREDICT_MAX_PIXELS)`);
    }
    total += width * height;
  }
  if (total > maxRequestPixels) throw new PixelBudgetExceededError(declared.length, total, maxRequestPixels);
  return total;
}
