// An inference thread (a worker started by inference-pool.ts): holds folded models
// by id and runs forward passes on its own single-threaded wasm engine, so that the
// API's event loop keeps parsing, decoding and answering requests while a batch
// computes. Plain JavaScript, loaded without the TypeScript loader (which would cost
// about 60 MB per thread); the messages are typed in inference-thread.d.mts.
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
// tfjs-core and the one backend the thread runs, not the union package (its layers, converter,
// data and webgl code would cost each thread ~23 MB).
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { foldedLogits, foldedTensors } from './folded-forward.mjs';

const port = parentPort;
const models = new Map();
// Shared with the pool (inference-pool.ts): a batch's images come in through one, its probabilities go out through the other.
let { input, output } = workerData;

async function startEngine(engine) {
  // The engine the API was configured with, where a thread can run it: wasm (one thread; parallelism
  // comes from the pool), or cpu when that is what the API runs on.
  const backend = engine === 'cpu' ? 'cpu' : 'wasm';
  if (backend === 'cpu') await import('@tensorflow/tfjs-backend-cpu');
  if (backend === 'wasm') setWasmPaths(join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + sep);
  if (!(await tf.setBackend(backend)) || tf.getBackend() !== backend) throw new Error(`tf.setBackend('${backend}') did not succeed`);
  await tf.ready();
}

const dispose = (folded) => tf.dispose([...folded.kernels, ...folded.biases, folded.headKernel, folded.headBias]);

try {
  await startEngine(workerData.engine);
  port.postMessage({ type: 'ready' });
} catch (error) {
  port.postMessage({ type: 'fatal', message: error instanceof Error ? error.message : String(error) });
}

port.on('message', (message) => {
  if (message.type === 'load') {
    const previous = models.get(message.model);
    if (previous) dispose(previous.folded);
    models.set(message.model, { layout: message.layout, folded: foldedTensors(message.weights) });
    port.postMessage({ type: 'loaded', model: message.model });
  } else if (message.type === 'unload') {
    const model = models.get(message.model);
    if (model) dispose(model.folded);
    models.delete(message.model);
  } else {
    try {
      if (message.input) ({ input, output } = message);
      const model = models.get(message.model);
      if (!model) throw new Error(`model ${message.model} is not loaded in this inference thread`);
      const { count } = message;
      const probabilities = tf.tidy(() => tf.softmax(foldedLogits(model.layout, model.folded, tf.tensor4d(input.subarray(0, count * 784), [count, 28, 28, 1]))));
      output.set(probabilities.dataSync());
      probabilities.dispose();
      port.postMessage({ type: 'done', job: message.job });
    } catch (error) {
      port.postMessage({ type: 'failed', job: message.job, message: error instanceof Error ? error.message : String(error) });
    }
  }
});
