// Speed of the conv kernels alone, per seed-net layer shape (batch 128), in GFLOP/s of CPU
// time (process.cpuUsage, so other processes on a shared machine distort it less than wall
// time would), counting the MACs of the forward conv for all three (the input gradient's full
// conv also multiplies the zero padding). One thread. block0 (one input channel) runs on
// XNNPACK forward; its input gradient is never needed in training.
//
//   WASM_THREADS=1 npx tsx bench/conv-kernels.ts [--reps 20]
import * as tf from '@tensorflow/tfjs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { initEngine } from '../src/engine/index.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '20' } } });
const reps = Number(values.reps);
await initEngine('wasm');
const LAYERS = [
  { name: 'block0', h: 28, c: 1, o: 16 },
  { name: 'block1', h: 26, c: 16, o: 16 },
  { name: 'block1d', h: 24, c: 16, o: 16 },
  { name: 'block2', h: 11, c: 16, o: 32 },
  { name: 'block3', h: 9, c: 32, o: 16 },
];
const cpuMs = (f: () => void) => {
  const start = process.cpuUsage();
  for (let r = 0; r < reps; r++) f();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / reps;
};
const rows = [];
for (const l of LAYERS) {
  const x = tf.randomNormal([128, l.h, l.h, l.c]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, l.c, l.o]) as tf.Tensor4D;
  const oh = l.h - 2;
  const dy = tf.randomNormal([128, oh, oh, l.o]) as tf.Tensor4D;
  const macs = 128 * oh * oh * l.o * l.c * 9;
  const run = (f: () => tf.Tensor) => cpuMs(() => f().dispose());
  for (let i = 0; i < 3; i++) tf.conv2d(x, w, 1, 'valid').dispose();
  const fwd = run(() => tf.conv2d(x, w, 1, 'valid'));
  const bwdInput = run(() => tf.conv2dTranspose(dy, w, [128, l.h, l.h, l.c], 1, 'valid'));
  const bwdFilter = run(
    () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, l.c, l.o] }) as tf.Tensor,
  );
  const g = (ms: number) => Math.round(((2 * macs) / ms / 1e6) * 10) / 10;
  rows.push({ layer: l.name, forwardMs: +fwd.toFixed(2), forwardGflops: g(fwd), backpropInputMs: +bwdInput.toFixed(2), backpropInputGflops: g(bwdInput), filterGradMs: +bwdFilter.toFixed(2), filterGradGflops: g(bwdFilter) });
  tf.dispose([x, w, dy]);
}
console.log(JSON.stringify({ load: loadavg(), rows }, null, 1));
