// Entry of the training worker thread (loaded through src/lib/ts-worker.mjs).
// Training is CPU-bound; running it here leaves the worker process's event loop
// free, so BullMQ keeps renewing the job lock and cancel messages get through.
import { parentPort, workerData } from 'node:worker_threads';
import { train } from '../training/train.ts';
import type { ThreadInput, ThreadMessage } from './thread-runner.ts';

const { options, abortFlag } = workerData as ThreadInput;
const port = parentPort!;
const post = (message: ThreadMessage) => port.postMessage(message);

const controller = new AbortController();
// The parent sets the shared flag and also sends a message: the flag is seen at
// the very next batch even while this thread is busy, the message also reaches
// phases without batches (loading the data set).
const flag = new Int32Array(abortFlag);
port.on('message', (message: { type: string }) => {
  if (message.type === 'abort') controller.abort();
});

try {
  const result = await train({
    ...options,
    resume: true,
    signal: controller.signal,
    onStart: ({ engine }) => post({ type: 'start', engine }),
    onBatch: (progress) => {
      if (Atomics.load(flag, 0) !== 0) controller.abort();
      post({ type: 'batch', progress });
    },
    onEpoch: (metrics) => post({ type: 'epoch', metrics }),
  });
  post({ type: 'done', result });
} catch (error) {
  const err = error as Error;
  post({ type: 'error', name: err.name, message: err.message, stack: err.stack });
}
