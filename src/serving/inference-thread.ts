// An inference thread (entry of a worker started by inference-pool.ts through
// src/lib/ts-worker.mjs): holds folded models by id and runs forward passes on its
// own single-threaded wasm engine, so that the API's event loop keeps parsing,
// decoding and answering requests while a batch computes.
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../engine/index.ts';
import type { EngineName } from '../engine/types.ts';
import type { ConvBlock } from '../model/seed-net.ts';
import { InferenceNet, type FoldedWeights } from './inference-net.ts';

export type ToThread =
  | { type: 'load'; model: number; layout: ConvBlock[]; weights: FoldedWeights }
  | { type: 'unload'; model: number }
  | { type: 'run'; job: number; model: number; input: Float32Array; count: number };

export type FromThread =
  | { type: 'ready' }
  | { type: 'loaded'; model: number }
  | { type: 'done'; job: number; probabilities: Float32Array }
  | { type: 'failed'; job: number; message: string }
  | { type: 'fatal'; message: string };

const port = parentPort!;
const send = (message: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
const nets = new Map<number, InferenceNet>();

try {
  // One wasm thread per inference thread: parallelism comes from the pool, not from XNNPACK.
  process.env.WASM_THREADS = '1';
  await initEngine((workerData as { engine: EngineName | 'auto' }).engine);
  send({ type: 'ready' });
} catch (error) {
  send({ type: 'fatal', message: (error as Error).message });
}

port.on('message', (message: ToThread) => {
  if (message.type === 'load') {
    nets.get(message.model)?.dispose();
    nets.set(message.model, InferenceNet.fromFolded(message.layout, message.weights));
    send({ type: 'loaded', model: message.model });
  } else if (message.type === 'unload') {
    nets.get(message.model)?.dispose();
    nets.delete(message.model);
  } else {
    try {
      const net = nets.get(message.model);
      if (!net) throw new Error(`model ${message.model} is not loaded in this inference thread`);
      const probabilities = tf.tidy(() => tf.softmax(net.logits(tf.tensor4d(message.input, [message.count, 28, 28, 1]))));
      const values = new Float32Array(probabilities.dataSync()); // a copy we own: it is transferred, and must not be a view of wasm memory
      probabilities.dispose();
      send({ type: 'done', job: message.job, probabilities: values }, [values.buffer as ArrayBuffer]);
    } catch (error) {
      send({ type: 'failed', job: message.job, message: (error as Error).message });
    }
  }
});
