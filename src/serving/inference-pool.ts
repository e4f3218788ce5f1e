// Inference threads (INFERENCE_THREADS): forward passes run on worker threads
// (inference-thread.mjs), each with its own copy of every loaded model's folded
// weights, so that a batch computing on one core does not stop the event loop
// from parsing and decoding the next requests on the other. Jobs go to the first
// idle thread, else wait in one first-come-first-served queue (their number is
// bounded by the micro-batchers, which keep at most one batch per thread in flight).
//
// Images and probabilities cross to a thread through two shared buffers it keeps
// (a slab each way, grown when a batch does not fit), not a new transferred buffer per
// batch: a transferred buffer is freed only when the receiving thread next collects
// garbage, which one allocating almost nothing on its JS heap rarely does, so under load
// tens of MB of them piled up in the API's malloc heap and fragmented it (bench/api-rss.ts).
import { Worker } from 'node:worker_threads';
import type { EngineName } from '../engine/types.ts';
import type { ConvBlock } from '../model/seed-net.ts';
import { IMAGE_PIXELS, NUM_CLASSES } from '../model/spec.ts';
import type { FoldedWeights } from './folded-forward.mjs';
import type { FromThread, ToThread } from './inference-thread.mjs';

const THREAD = new URL('./inference-thread.mjs', import.meta.url);

export class InferenceThreadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InferenceThreadError';
  }
}

interface Job {
  model: number;
  count: number;
  /** Writes the batch's `count` normalised images (IMAGE_PIXELS values each) into the input slab. */
  write: (input: Float32Array) => void;
  resolve: (probabilities: Float32Array) => void;
  reject: (error: Error) => void;
}

/** Shared buffers a thread reads a batch from and writes its probabilities to, sized in images. */
class Slabs {
  readonly images: number;
  readonly input: Float32Array;
  readonly output: Float32Array;
  constructor(images: number) {
    this.images = images;
    this.input = new Float32Array(new SharedArrayBuffer(images * IMAGE_PIXELS * 4));
    this.output = new Float32Array(new SharedArrayBuffer(images * NUM_CLASSES * 4));
  }
}

/** Images a thread's slabs hold at first (the default MAX_BATCH); a bigger batch grows them. */
const INITIAL_SLAB_IMAGES = 64;

class InferenceThread {
  readonly worker: Worker;
  busy: (Job & { id: number }) | undefined;
  private readonly loads = new Map<number, () => void>();
  private slabs = new Slabs(INITIAL_SLAB_IMAGES);

  constructor(engine: EngineName | 'auto', onIdle: () => void, onDeath: (thread: InferenceThread, error: Error) => void) {
    // execArgv without the parent's loader flags (tsx): the thread is plain JavaScript.
    this.worker = new Worker(THREAD, { workerData: { engine, input: this.slabs.input, output: this.slabs.output }, execArgv: [] });
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (message: FromThread) => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'fatal') reject(new InferenceThreadError(`inference thread could not start: ${message.message}`));
        else if (message.type === 'loaded') this.loads.get(message.model)?.();
        else if (this.busy?.id === message.job) {
          const job = this.busy;
          this.busy = undefined;
          if (message.type === 'done') job.resolve(this.slabs.output.slice(0, job.count * NUM_CLASSES));
          else job.reject(new InferenceThreadError(message.message));
          onIdle();
        }
      });
      this.worker.on('error', (error: Error) => {
        reject(error);
        onDeath(this, error);
      });
      this.worker.on('exit', (code) => {
        const error = new InferenceThreadError(`inference thread exited (code ${code})`);
        reject(error);
        onDeath(this, error);
      });
    });
  }

  readonly ready: Promise<void>;

  send(message: ToThread): void {
    this.worker.postMessage(message);
  }

  /** Has the job write its images into the input slab (grown if they do not fit) and starts it; a job whose write throws fails alone. */
  start(job: Job & { id: number }): void {
    const { count } = job;
    const grown = count > this.slabs.images;
    if (grown) this.slabs = new Slabs(count);
    try {
      job.write(this.slabs.input.subarray(0, count * IMAGE_PIXELS));
    } catch (error) {
      job.reject(error as Error);
      return;
    }
    this.busy = job;
    this.send({ type: 'run', job: job.id, model: job.model, count, ...(grown ? { input: this.slabs.input, output: this.slabs.output } : {}) });
  }

  load(model: number, layout: ConvBlock[], weights: FoldedWeights): Promise<void> {
    return new Promise((resolve) => {
      this.loads.set(model, () => {
        this.loads.delete(model);
        resolve();
      });
      this.send({ type: 'load', model, layout, weights });
    });
  }
}

export class InferencePool {
  private readonly threads: InferenceThread[];
  private readonly queue: Job[] = [];
  private nextModel = 1;
  private nextJob = 1;
  private closed = false;

  private constructor(size: number, engine: EngineName | 'auto') {
    this.threads = Array.from({ length: size }, () => new InferenceThread(engine, () => this.dispatch(), (thread, error) => this.lost(thread, error)));
  }

  /** Starts `size` threads and waits until each has its engine. */
  static async start(size: number, engine: EngineName | 'auto' = 'auto'): Promise<InferencePool> {
    const pool = new InferencePool(size, engine);
    try {
      await Promise.all(pool.threads.map((thread) => thread.ready));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get size(): number {
    return this.threads.length;
  }

  /** Copies a model's folded weights into every thread; the id names it in run() and unload(). */
  async load(layout: readonly ConvBlock[], weights: FoldedWeights): Promise<number> {
    if (this.closed) throw new InferenceThreadError('the inference threads are stopped');
    if (this.threads.length === 0) throw new InferenceThreadError('no inference thread is running (they exited; see the log)');
    const model = this.nextModel++;
    await Promise.all(this.threads.map((thread) => thread.load(model, [...layout], weights)));
    return model;
  }

  unload(model: number): void {
    if (this.closed) return;
    for (const thread of this.threads) thread.send({ type: 'unload', model });
  }

  /** Probabilities [count × classes] for a batch of `count` images that `write` puts, normalised, into the array it is given once a thread is free. */
  run(model: number, count: number, write: (input: Float32Array) => void): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new InferenceThreadError('the inference threads are stopped'));
    if (this.threads.length === 0) return Promise.reject(new InferenceThreadError('no inference thread is running (they exited; see the log)'));
    return new Promise((resolve, reject) => {
      this.queue.push({ model, count, write, resolve, reject });
      this.dispatch();
    });
  }

  /** Stops every thread; queued and running jobs fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopped = new InferenceThreadError('the inference threads are stopped');
    for (const job of this.queue.splice(0)) job.reject(stopped);
    for (const thread of this.threads) thread.busy?.reject(stopped);
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  private dispatch(): void {
    for (const thread of this.threads) {
      while (!thread.busy && this.queue.length > 0) thread.start({ ...this.queue.shift()!, id: this.nextJob++ });
    }
  }

  /** A thread that died fails its job; the rest go on (an API with no thread left fails every request, and /readyz stays as it is). */
  private lost(thread: InferenceThread, error: Error): void {
    if (this.closed) return;
    const index = this.threads.indexOf(thread);
    if (index < 0) return;
    this.threads.splice(index, 1);
    thread.busy?.reject(error);
    thread.busy = undefined;
    if (this.threads.length === 0) for (const job of this.queue.splice(0)) job.reject(error);
  }
}
