// Where a training step of the seed recipe spends its time: the real step (src/training
// trainStep on MNIST batches of 128) under V8's sampling profiler, the samples attributed to
// the kernel or op that ran them (our SIMD kernels by name, the tfjs wasm backend's kernels by
// their JS entry point, the rest as tfjs/JS overhead, garbage collection, idle).
//
//   WASM_THREADS=1 npx tsx bench/profile-epoch.ts --data-dir ../shared/data/mnist [--steps 60] [--tag NAME]
//
// Only the calling thread is sampled: run it on 1 thread for a clean attribution (on 2, the
// helper thread's share shows up as the caller's shorter kernels and as waiting).
// Writes bench/results/epoch-profile[-TAG].json (ms per step per category, top entries).
import * as tf from '@tensorflow/tfjs';
import { Session } from 'node:inspector/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadDataset } from '../src/data/datasets.ts';
import { initEngine } from '../src/engine/index.ts';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';
import { loadAverage } from './machine.ts';
import { deriveSeed, permutation } from '../src/lib/random.ts';
import { seedNetWeights } from '../src/model/forward.ts';
import { buildSeedNet, DROPOUT_RATE } from '../src/model/seed-net.ts';
import { trainStep } from '../src/training/train.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: '../shared/data/mnist' },
    steps: { type: 'string', default: '60' },
    tag: { type: 'string', default: '' },
  },
});
const steps = Number(values.steps);
const BATCH = 128;

const engine = await initEngine('wasm');
const dataset = await loadDataset({ dataset: 'mnist', dataDir: resolve(values['data-dir']!), limit: (steps + 10) * BATCH });
const model = buildSeedNet(4);
const weights = seedNetWeights(model);
const optimizer = tf.train.momentum(0.01, 0.9);
const order = permutation(dataset.train.count, deriveSeed(4, 1));
const step = (batch: number) =>
  trainStep(weights, optimizer, dataset.train, order.subarray(batch * BATCH, (batch + 1) * BATCH), deriveSeed(4, 1, batch), DROPOUT_RATE);
for (let b = 0; b < 10; b++) step(b); // warm-up: compilation, heap growth

const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 200 });
await session.post('Profiler.start');
const start = performance.now();
for (let b = 10; b < 10 + steps; b++) step(b);
const wallMs = performance.now() - start;
const { profile } = await session.post('Profiler.stop');
session.disconnect();

// ---------------------------------------------------------------- attribution
type Node = (typeof profile.nodes)[number];
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const selfUs = new Map<number, number>();
profile.samples!.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas![i] ?? 0)));

// Our kernels are called through simd.parallel with the kernel name as argument; the profile
// only shows the wasm function, so map the kernels module's function index to its name.
const SIMD_KERNELS = ['relu_stats', 'relu_bn_dropout', 'relu_bn_dropout_grad_sums', 'relu_bn_dropout_grad_apply', 'conv2d_valid', 'pad_nhwc', 'conv2d_filter_grad', 'avg_pool_grad_tiled'];
const fn = (n: Node) => n.callFrame.functionName;
function category(leaf: Node): string {
  if (['(garbage collector)', '(idle)', '(program)'].includes(fn(leaf))) return fn(leaf);
  let wasmLeaf: string | undefined;
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
    const n = byId.get(id)!;
    const name = fn(n);
    const simdIndex = /^wasm-function\[(\d+)\]$/.exec(name);
    if (simdIndex && n.callFrame.url.length > 0 && wasmLeaf === undefined) wasmLeaf = name;
    // The SIMD kernels' caller in src/engine says which op it served.
    if (name === 'parallel' && n.callFrame.url.endsWith('simd.ts')) {
      const index = Number(/\[(\d+)\]/.exec(wasmLeaf ?? '')?.[1] ?? -1);
      return `simd:${SIMD_KERNELS[index] ?? 'js'}:${fn(byId.get(parent.get(id)!)!) || '?'}`;
    }
    const wasmKernel = /^Module\._(\w+)$/.exec(name);
    if (wasmKernel) return `tfjs-wasm:${wasmKernel[1]}`;
  }
  return `js:${fn(leaf) || '(anonymous)'}@${leaf.callFrame.url.split('/').slice(-1)[0]}`;
}
const totals = new Map<string, number>();
for (const n of profile.nodes) {
  const us = selfUs.get(n.id) ?? 0;
  if (us) totals.set(category(n), (totals.get(category(n)) ?? 0) + us);
}
const sampledMs = [...totals.values()].reduce((a, b) => a + b, 0) / 1000;
const rows = [...totals].sort((a, b) => b[1] - a[1]);
const perStep = (us: number) => Math.round((us / 1000 / steps) * 100) / 100;
const group = (prefix: string) => rows.filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);
const result = {
  benchmark: 'where one seed-recipe training step (batch 128) spends its time, V8 sampling profile of the calling thread',
  command: `WASM_THREADS=${process.env.WASM_THREADS ?? ''} npx tsx bench/profile-epoch.ts ${process.argv.slice(2).join(' ')}`,
  date: new Date().toISOString(),
  engine: engine.label,
  loadAverage: loadAverage(),
  steps,
  wallMsPerStep: Math.round((wallMs / steps) * 100) / 100,
  projectedEpochSeconds: Math.round((wallMs / steps) * Math.ceil(60_000 / BATCH)) / 1000,
  msPerStep: {
    simdKernels: perStep(group('simd:')),
    tfjsWasmKernels: perStep(group('tfjs-wasm:')),
    jsAndTfjsOverhead: perStep(group('js:')),
    garbageCollector: perStep(totals.get('(garbage collector)') ?? 0),
    idleOrWaiting: perStep((totals.get('(idle)') ?? 0) + (totals.get('(program)') ?? 0)),
    sampled: Math.round((sampledMs / steps) * 100) / 100,
  },
  top: rows.slice(0, 40).map(([k, us]) => ({ what: k, msPerStep: perStep(us), share: Math.round((us / 10 / sampledMs) * 10) / 10 })),
};
const name = `epoch-profile${values.tag ? `-${values.tag}` : ''}.json`;
await writeFileAtomic(join(ROOT, 'bench/results', name), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify({ ...result, top: result.top.slice(0, 25) }, null, 1));
