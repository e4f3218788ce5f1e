// Runs train() in a worker thread (training-thread.ts) and turns its messages
// back into callbacks and a promise, with AbortSignal cancellation.
//
// Why a hand-made thread and not BullMQ's sandboxed processor (useWorkerThreads):
//  - cancelling must stop training at the next batch boundary, checkpoint kept. BullMQ 6
//    forwards an abort to the sandbox as a message, which the thread only sees when its
//    event loop turns; train() runs batch after batch without necessarily giving it a
//    turn. Here the parent sets one shared Int32 (abortFlag) that train() reads between
//    batches, whatever the thread's event loop is doing.
//  - the Redis side of a job (publish claim, registry publish, announcement, progress)
//    stays in the parent on the worker's connections (processor.ts); a sandbox would
//    need its own connections and a copy of that protocol.
//  - the thread starts TypeScript through our own bootstrap (lib/ts-worker.mjs).
// The thread's only job is to keep the parent's event loop free (BullMQ's lock
// renewal) while tfjs computes.
import { Worker } from 'node:worker_threads';
import type { BatchProgress, EpochMetrics, TrainOptions, TrainResult } from '../training/types.ts';

/** The serialisable part of TrainOptions (no callbacks, no signal). */
export type ThreadTrainOptions = Omit<TrainOptions, 'signal' | 'onStart' | 'onBatch' | 'onEpoch' | 'resume'>;

export interface ThreadInput {
  entry: string;
  options: ThreadTrainOptions;
  /** One Int32 set to 1 when training should stop at the next batch boundary. */
  abortFlag: SharedArrayBuffer;
}

export type ThreadMessage =
  | { type: 'start'; engine: string }
  | { type: 'batch'; progress: BatchProgress }
  | { type: 'epoch'; metrics: EpochMetrics }
  | { type: 'done'; result: TrainResult }
  | { type: 'error'; name: string; message: string; stack?: string };

export class TrainingThreadError extends Error {
  constructor(message: string, stack?: string) {
    super(message);
    this.name = 'TrainingThreadError';
    if (stack) this.stack = stack;
  }
}

export interface ThreadCallbacks {
  signal?: AbortSignal;
  onStart?: (info: { engine: string }) => void;
  onBatch?: (progress: BatchProgress) => void;
  onEpoch?: (metrics: EpochMetrics) => void;
}

const BOOTSTRAP = new URL('../lib/ts-worker.mjs', import.meta.url);
/**
 * Training allocates many short-lived objects per op, so V8 grows the thread's young
 * generation to its maximum (16 MB semi-spaces); 6 MB (2 MB semi-spaces) keeps ~20 MB of
 * RSS off the worker at no measurable cost in epoch time (README, Memory).
 */
const TRAINING_THREAD_YOUNG_GENERATION_MB = 6;
const ENTRY = new URL('./training-thread.ts', import.meta.url).href;

/** Trains in a fresh thread, resuming from options.outDir's checkpoint when there is one. */
export function trainInThread(options: ThreadTrainOptions, callbacks: ThreadCallbacks = {}): Promise<TrainResult> {
  const abortFlag = new SharedArrayBuffer(4);
  const input: ThreadInput = { entry: ENTRY, options, abortFlag };
  const thread = new Worker(BOOTSTRAP, { workerData: input, resourceLimits: { maxYoungGenerationSizeMb: TRAINING_THREAD_YOUNG_GENERATION_MB } });
  const abort = () => {
    Atomics.store(new Int32Array(abortFlag), 0, 1);
    thread.postMessage({ type: 'abort' });
  };
  if (callbacks.signal?.aborted) abort();
  callbacks.signal?.addEventListener('abort', abort, { once: true });

  return new Promise<TrainResult>((resolve, reject) => {
    let settled = false;
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      callbacks.signal?.removeEventListener('abort', abort);
      finish();
      // The thread has nothing left to do once it reported; tfjs backends may keep it alive.
      void thread.terminate();
    };
    thread.on('message', (message: ThreadMessage) => {
      if (settled) return;
      if (message.type === 'start') callbacks.onStart?.({ engine: message.engine });
      else if (message.type === 'batch') callbacks.onBatch?.(message.progress);
      else if (message.type === 'epoch') callbacks.onEpoch?.(message.metrics);
      else if (message.type === 'done') settle(() => resolve(message.result));
      else {
        const error = new TrainingThreadError(message.message, message.stack);
        error.name = message.name;
        settle(() => reject(error));
      }
    });
    thread.on('error', (error) => settle(() => reject(error)));
    thread.on('exit', (code) =>
      settle(() => reject(new TrainingThreadError(`training thread exited with code ${code} before reporting a result`))),
    );
  });
}
