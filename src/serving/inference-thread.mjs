// An inference thread (a worker started by inference-pool.ts): holds folded models
// by id and runs their forward passes (folded-forward.mjs, WebAssembly SIMD), so that
// the API's event loop keeps parsing, decoding and answering requests while a batch
// computes. Plain JavaScript, loaded without the TypeScript loader (which would cost
// about 60 MB per thread); the messages are typed in inference-thread.d.mts.
import { parentPort, workerData } from 'node:worker_threads';
import { FoldedNet, kernelsModule } from './folded-forward.mjs';

const port = parentPort;
const models = new Map();
// Shared with the pool (inference-pool.ts), per slot: a batch's images come in through one slab, its
// probabilities go out through the other. Batches run in the order they were posted.
const { slots } = workerData;

try {
  kernelsModule();
  port.postMessage({ type: 'ready' });
} catch (error) {
  port.postMessage({ type: 'fatal', message: error instanceof Error ? error.message : String(error) });
}

port.on('message', (message) => {
  if (message.type === 'load') {
    try {
      models.set(message.model, new FoldedNet(message.layout, message.weights));
      port.postMessage({ type: 'loaded', model: message.model });
    } catch (error) {
      port.postMessage({ type: 'load-failed', model: message.model, message: error instanceof Error ? error.message : String(error) });
    }
  } else if (message.type === 'unload') {
    models.delete(message.model);
  } else {
    try {
      if (message.input) slots[message.slot] = { input: message.input, output: message.output };
      const net = models.get(message.model);
      if (!net) throw new Error(`model ${message.model} is not loaded in this inference thread`);
      const { input, output } = slots[message.slot];
      net.probabilities(input, message.count, output);
      port.postMessage({ type: 'done', job: message.job });
    } catch (error) {
      port.postMessage({ type: 'failed', job: message.job, message: error instanceof Error ? error.message : String(error) });
    }
  }
});
