// CPU time of serving's forward pass per image, one thread, the way an inference thread runs it:
//   - per conv layer of the seed and compact nets, each method of src/engine/simd/inference.c
//     (direct, Winograd F(2x2, 3x3), Winograd F(4x4, 3x3));
//   - the whole net (FoldedNet, folded-forward.mjs) against the path it replaced: tfjs-core on
//     the wasm backend, XNNPACK's fused conv + bias + ReLU per block (as inference threads ran
//     it until then), on batches of 1 and 32 images.
// Each figure is the median of 5 repetitions (min and max in the JSON), after a warm-up long
// enough for V8 to tier the wasm up. Weights are random (the cost does not depend on them).
//
//   npx tsx bench/serving-forward.ts [--out bench/results/serving-forward.json]
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';
import { ARCHITECTURES, type ArchitectureName } from '../src/model/spec.ts';
import { FoldedNet, type FoldedWeights } from '../src/serving/folded-forward.mjs';
import { loadAverage, machineInfo } from './machine.ts';

const { values } = parseArgs({ options: { out: { type: 'string', default: join(import.meta.dirname, 'results', 'serving-forward.json') } } });
setWasmPaths(join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + sep);
await tf.setBackend('wasm');
await tf.ready();

const REPETITIONS = 5;
const loadBefore = loadAverage();

/** Median, min and max over repetitions of the CPU microseconds per call of f (divided by `per`). */
function cpuMicros(f: () => void, calls: number, per = 1) {
  for (let i = 0; i < calls * 2; i++) f(); // warm-up: V8 tiers hot wasm and JS up
  const runs = Array.from({ length: REPETITIONS }, () => {
    const start = process.cpuUsage();
    for (let i = 0; i < calls; i++) f();
    const used = process.cpuUsage(start);
    return (used.user + used.system) / calls / per;
  }).sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 10) / 10;
  return { median: round(runs[REPETITIONS >> 1]!), min: round(runs[0]!), max: round(runs[REPETITIONS - 1]!) };
}

function randomWeights(architecture: ArchitectureName): FoldedWeights {
  let channels = 1;
  const random = (n: number, scale: number) => Float32Array.from({ length: n }, () => (Math.random() - 0.5) * scale);
  const kernels = [];
  const biases = [];
  for (const block of ARCHITECTURES[architecture].blocks) {
    kernels.push({ shape: [3, 3, channels, block.filters], data: random(9 * channels * block.filters, 2 / Math.sqrt(9 * channels)) });
    biases.push({ shape: [block.filters], data: random(block.filters, 0.2) });
    channels = block.filters;
  }
  return { kernels, biases, headKernel: { shape: [channels, 10], data: random(channels * 10, 1) }, headBias: { shape: [10], data: random(10, 1) } };
}

// ---------------------------------------------------------------- per layer
interface Kernels {
  conv3x3_direct(...args: number[]): void;
  conv3x3_winograd(...args: number[]): void;
  conv3x3_winograd4(...args: number[]): void;
}
const memory = new WebAssembly.Memory({ initial: 256 });
const module = new WebAssembly.Module(readFileSync(new URL('../src/engine/simd/inference-relaxed.wasm', import.meta.url)));
const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Kernels;
new Float32Array(memory.buffer).forEach((_, i, heap) => (heap[i] = Math.random() - 0.5));
// Byte offsets of the input, transformed filter, bias, two scratch areas and the output (each ≤ 1 MB).
const MB = 2 ** 20;
const [X, U, BIAS, V, M, OUT] = [0, MB, 2 * MB, 3 * MB, 4 * MB, 5 * MB] as const;

const layers = [];
for (const architecture of ['seed', 'compact'] as const) {
  let [side, channels] = [28, 1];
  for (const block of ARCHITECTURES[architecture].blocks) {
    const [h, c, o] = [side, channels, block.filters];
    const time = (name: keyof Kernels) => cpuMicros(() => kernels[name](X, h, h, c, U, BIAS, o, ...(name === 'conv3x3_direct' ? [] : [V, M]), OUT), 2000);
    layers.push({
      architecture,
      layer: `${block.name}: ${h}×${h}×${c} → ${o}`,
      directMicros: time('conv3x3_direct'),
      ...(c % 4 === 0 ? { winograd2x2Micros: time('conv3x3_winograd'), winograd4x4Micros: time('conv3x3_winograd4') } : {}),
    });
    console.log(JSON.stringify(layers.at(-1)));
    side = block.poolAfter ? (side - 2) >> 1 : side - 2;
    channels = o;
  }
}

// ---------------------------------------------------------------- whole nets
/** The previous serving path: tfjs-core, wasm backend, XNNPACK fused conv + bias + ReLU per block. */
function xnnpackForward(architecture: ArchitectureName, weights: FoldedWeights) {
  const kernels = weights.kernels.map(({ data, shape }) => tf.tensor4d(data, shape as [number, number, number, number]));
  const biases = weights.biases.map(({ data }) => tf.tensor1d(data));
  const [headKernel, headBias] = [tf.tensor2d(weights.headKernel.data, [weights.headKernel.shape[0]!, 10]), tf.tensor1d(weights.headBias.data)];
  return (input: Float32Array, count: number) => {
    const probabilities = tf.tidy(() => {
      let h: tf.Tensor4D = tf.tensor4d(input.subarray(0, count * 784), [count, 28, 28, 1]);
      ARCHITECTURES[architecture].blocks.forEach((block, i) => {
        h = tf.fused.conv2d({ x: h, filter: kernels[i]!, strides: 1, pad: 'valid', bias: biases[i], activation: 'relu' });
        if (block.poolAfter) h = tf.avgPool(h, 2, 2, 'valid');
      });
      return tf.softmax(tf.add(tf.matMul(tf.mean(h, [1, 2]), headKernel), headBias));
    });
    probabilities.dataSync();
    probabilities.dispose();
  };
}

const nets = [];
for (const architecture of ['seed', 'compact'] as const) {
  const weights = randomWeights(architecture);
  const net = new FoldedNet(ARCHITECTURES[architecture].blocks, weights);
  const xnnpack = xnnpackForward(architecture, weights);
  const input = Float32Array.from({ length: 32 * 784 }, () => Math.random() * 3 - 0.4);
  const output = new Float32Array(32 * 10);
  for (const batch of [1, 32]) {
    const calls = batch === 1 ? 2000 : 100;
    const simd = cpuMicros(() => net.probabilities(input, batch, output), calls, batch);
    const before = cpuMicros(() => xnnpack(input, batch), calls, batch);
    nets.push({ architecture, batch, xnnpackMicrosPerImage: before, foldedNetMicrosPerImage: simd, speedup: Math.round((before.median / simd.median) * 100) / 100 });
    console.log(JSON.stringify(nets.at(-1)));
  }
}

await writeFileAtomic(
  values.out!,
  JSON.stringify({ benchmark: 'serving forward pass, CPU µs per image, one thread (median of 5; min/max)', date: new Date().toISOString(), machine: machineInfo(), loadBefore, loadAfter: loadAverage(), layers, nets }, null, 2) + '\n',
);
console.log(`→ ${values.out}`);
