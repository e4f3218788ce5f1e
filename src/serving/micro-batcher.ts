// Micro-batching: concurrent requests' images are gathered for at most `maxWaitMs`
// (or until `maxBatch` are waiting) and run through the model in one forward pass.
// A forward pass of 32 images costs far less than 32 passes of one, so throughput
// grows with load while a lone request waits at most maxWaitMs extra. Images queue
// first-come-first-served and a batch is bounded by images, not requests (a big
// request may span two batches). With `maxInFlight`, at most that many batches run
// at once (two per inference thread: one computing, the next written); the rest wait in the queue and the next batch
// starts as one finishes, taking the oldest images, so under load batches fill up
// by themselves and no request waits behind later ones.

import { ServingOverloadedError } from './errors.ts';

export interface MicroBatcherOptions {
  /** Most images per forward pass. */
  maxBatch: number;
  /** Longest an image waits for others before its batch runs; 0 runs at the next turn of the event loop. */
  maxWaitMs: number;
  /** Most batches running at once (default unbounded: forward passes on the event loop run one at a time anyway). */
  maxInFlight?: number;
  /** Most images waiting (not yet in a forward pass); submitMany beyond it fails with ServingOverloadedError. Default unbounded. */
  maxQueued?: number;
}

interface Pending<I, O> {
  input: I;
  resolve: (output: O) => void;
  reject: (error: unknown) => void;
}

export class MicroBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  /** Cancels the scheduled flush; set while one is scheduled. */
  private cancelScheduled: (() => void) | undefined;
  private running = 0;
  private batchesRunning = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly run: (inputs: I[]) => Promise<O[]>;
  private readonly options: MicroBatcherOptions;
  private readonly onBatch?: (size: number) => void;

  /** `run` maps a batch of inputs to their outputs, in order; `onBatch` sees each batch's size (metrics). */
  constructor(run: (inputs: I[]) => Promise<O[]>, options: MicroBatcherOptions, onBatch?: (size: number) => void) {
    this.run = run;
    this.options = options;
    this.onBatch = onBatch;
  }

  /** Images queued or in a running forward pass. */
  get inFlight(): number {
    return this.queue.length + this.running;
  }

  /** Queues all of one request's images, or none of them when that would exceed maxQueued (503: retry later). */
  submitMany(inputs: I[]): Promise<O[]> {
    const max = this.options.maxQueued ?? Infinity;
    if (this.queue.length + inputs.length > max) return Promise.reject(new ServingOverloadedError(this.queue.length, max));
    return Promise.all(inputs.map((input) => this.submit(input)));
  }

  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.queue.length >= this.options.maxBatch) this.flush();
      else if (!this.cancelScheduled) this.schedule();
    });
  }

  /** Resolves once nothing is queued or running (used before disposing a model). */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.options.maxWaitMs > 0) {
      const timer = setTimeout(this.flush, this.options.maxWaitMs);
      this.cancelScheduled = () => clearTimeout(timer);
    } else {
      const immediate = setImmediate(this.flush);
      this.cancelScheduled = () => clearImmediate(immediate);
    }
  }

  private readonly flush = (): void => {
    this.cancelScheduled?.();
    this.cancelScheduled = undefined;
    const maxInFlight = this.options.maxInFlight ?? Infinity;
    while (this.queue.length > 0 && this.batchesRunning < maxInFlight) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      void this.runBatch(batch);
    }
  };

  private async runBatch(batch: Pending<I, O>[]): Promise<void> {
    this.batchesRunning++;
    this.running += batch.length;
    this.onBatch?.(batch.length);
    try {
      const outputs = await this.run(batch.map((p) => p.input));
      batch.forEach((p, i) => p.resolve(outputs[i]!));
    } catch (error) {
      for (const p of batch) p.reject(error);
    } finally {
      this.batchesRunning--;
      this.running -= batch.length;
      // Images that queued while this batch ran have waited already: start the next batch now.
      if (this.queue.length > 0) this.flush();
      if (this.inFlight === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
    }
  }
}
