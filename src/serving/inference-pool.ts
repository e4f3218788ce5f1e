// Inference threads (INFERENCE_THREADS): forward passes run on worker threads
// (inference-thread.mjs), each with its own copy of every loaded model's folded
// weights, so that a batch computing on one core does not stop the event loop
// from parsing and decoding the next requests on the other. Jobs go to the first
// idle thread, else to a busy one's second slot, else wait in one first-come-first-served
// queue (their number is bounded by the micro-batchers, which keep at most `capacity`
// batches in flight). The second slot keeps a thread computing: its next batch is already
// written and posted when it finishes one, instead of waiting for the event loop to get
// round to the 'done' message while it parses requests (one thread, digits-only probes:
// 32-PNG requests at 8 connections 9,680 → 11,032 images/s, single PNGs 3,762 → 4,961;
// bench/results/predict-load-f4-threads1.json, -f4-slots-threads1.json).
//
// Images and probabilities cross to a thread through shared buffers it keeps (a slab
// each way per slot, grown when a batch does not fit), not a new transferred buffer per
// batch: a transferred buffer is freed only when the receiving thread next collects
// garbage, which one allocating almost nothing on its JS heap rarely does, so under load
// tens of MB of them piled up in the API's malloc heap and fragmented it (bench/api-rss.ts).
import { Worker } from 'node:worker_threads';
import type { ConvBlock } from '../model/seed-net.ts';
import { IMAGE_PIXELS, NUM_CLASSES } from '../model/spec.ts';
import type { FoldedWeights } from './folded-forward.mjs';
import type { FromThread, ThreadData, ToThread } from './inference-thread.mjs';

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
/** Batches a thread holds at once: the one it computes and the next, already written. */
const SLOTS = 2;

type Started = Job & { id: number; slot: number };

class InferenceThread {
  readonly worker: Worker;
  /** Jobs posted to the thread, oldest (the one computing) first; at most SLOTS. */
  readonly jobs: Started[] = [];
  private readonly loads = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private readonly slabs = Array.from({ length: SLOTS }, () => new Slabs(INITIAL_SLAB_IMAGES));

  constructor(onIdle: () => void, onDeath: (thread: InferenceThread, error: Error) => void) {
    // execArgv without the parent's loader flags (tsx): the thread is plain JavaScript.
    const workerData: ThreadData = { slots: this.slabs.map(({ input, output }) => ({ input, output })) };
    this.worker = new Worker(THREAD, { workerData, execArgv: [] });
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (message: FromThread) => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'fatal') reject(new InferenceThreadError(`inference thread could not start: ${message.message}`));
        else if (message.type === 'loaded' || message.type === 'load-failed') {
          const load = this.loads.get(message.model);
          this.loads.delete(message.model);
          if (message.type === 'loaded') load?.resolve();
          else load?.reject(new InferenceThreadError(message.message));
        }
        else {
          const index = this.jobs.findIndex((job) => job.id === message.job);
          if (index < 0) return;
          const [job] = this.jobs.splice(index, 1);
          if (message.type === 'done') job!.resolve(this.slabs[job!.slot]!.output.slice(0, job!.count * NUM_CLASSES));
          else job!.reject(new InferenceThreadError(message.message));
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

  /** Has the job write its images into a free slot's input slab (grown if they do not fit) and posts it; a job whose write throws fails alone. */
  start(job: Job & { id: number }): void {
    const { count } = job;
    const slot = [...Array(SLOTS).keys()].find((s) => !this.jobs.some((j) => j.slot === s))!;
    const grown = count > this.slabs[slot]!.images;
    if (grown) this.slabs[slot] = new Slabs(count);
    const slabs = this.slabs[slot]!;
    try {
      job.write(slabs.input.subarray(0, count * IMAGE_PIXELS));
    } catch (error) {
      job.reject(error as Error);
      return;
    }
    this.jobs.push({ ...job, slot });
    this.send({ type: 'run', job: job.id, model: job.model, count, slot, ...(grown ? { input: slabs.input, output: slabs.output } : {}) });
  }

  load(model: number, layout: ConvBlock[], weights: FoldedWeights): Promise<void> {
    return new Promise((resolve, reject) => {
      this.loads.set(model, { resolve, reject });
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

  private constructor(size: number) {
    this.threads = Array.from({ length: size }, () => new InferenceThread(() => this.dispatch(), (thread, error) => this.lost(thread, error)));
  }

  /** Starts `size` threads and waits until each has compiled its kernels. */
  static async start(size: number): Promise<InferencePool> {
    const pool = new InferencePool(size);
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

  /** Batches the threads hold at once (two per thread: one computing, the next written); more wait in the queue. */
  get capacity(): number {
    return this.threads.length * SLOTS;
  }

  /** Copies a model's folded weights into every thread; the id names it in run() and unload(). */
  async load(layout: readonly ConvBlock[], weights: FoldedWeights): Promise<number> {
    if (this.closed) throw new InferenceThreadError('the inference threads are stopped');
    if (this.threads.length === 0) throw new InferenceThreadError('no inference thread is running (they exited; see the log)');
    const model = this.nextModel++;
    try {
      await Promise.all(this.threads.map((thread) => thread.load(model, [...layout], weights)));
    } catch (error) {
      this.unload(model);
      throw error;
    }
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
    for (const thread of this.threads) for (const job of thread.jobs.splice(0)) job.reject(stopped);
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  /** Idle threads first, then second slots, oldest job first. */
  private dispatch(): void {
    for (let depth = 1; depth <= SLOTS; depth++) {
      for (const thread of this.threads) {
        while (thread.jobs.length < depth && this.queue.length > 0) thread.start({ ...this.queue.shift()!, id: this.nextJob++ });
      }
    }
  }

  /** A thread that died fails its jobs; the rest go on (an API with no thread left fails every request, and /readyz stays as it is). */
  private lost(thread: InferenceThread, error: Error): void {
    if (this.closed) return;
    const index = this.threads.indexOf(thread);
    if (index < 0) return;
    this.threads.splice(index, 1);
    for (const job of thread.jobs.splice(0)) job.reject(error);
    if (this.threads.length === 0) for (const job of this.queue.splice(0)) job.reject(error);
  }
}
