// Training throughput of the seed net (batch 128, train mode: BatchNorm on batch statistics,
// dropout 0.1, SGD momentum) per engine, next to the PyTorch reference timed in the same run.
//
//   npx tsx bench/train-throughput.ts [--steps 30] [--threads 1,2] [--no-pytorch] [--no-cpu] [--no-layers]
//   npx tsx bench/train-throughput.ts --profile     per-kernel times of one wasm step (tf.profile)
//
// Each engine/thread count runs in its own process (the wasm thread pool is fixed at start-up).
// Inputs are random normalised images: this measures compute, not data loading.
// Writes bench/results/train-throughput.json.
import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { initEngine, reluBatchNormDropout, type EngineName } from '../src/engine/index.ts';

const execFileAsync = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const BATCH = 128;
const STEPS_PER_EPOCH = Math.ceil(60_000 / BATCH);
const BLOCKS = [
  { in: 1, out: 16, dropout: true, pool: false },
  { in: 16, out: 16, dropout: true, pool: false },
  { in: 16, out: 16, dropout: true, pool: true },
  { in: 16, out: 32, dropout: true, pool: false },
  { in: 32, out: 16, dropout: false, pool: false },
];

interface StepTiming {
  engine: string;
  label: string;
  threads: number;
  variant: 'fused' | 'layers';
  steps: number;
  msPerStep: number;
  bestMsPerStep: number;
  cpuMsPerStep: number;
  imagesPerSecond: number;
}

// ------------------------------------------------------------------ one engine (child process)

/** The seed net's training step as src/training should run it: conv + fused ReLU/BN/dropout. */
function fusedStep() {
  const init = (shape: number[]) => tf.variable(tf.randomUniform(shape, -0.3, 0.3, 'float32', 1));
  const blocks = BLOCKS.map((b) => ({
    kernel: init([3, 3, b.in, b.out]),
    gamma: tf.variable(tf.ones([b.out])),
    beta: tf.variable(tf.zeros([b.out])),
    ...b,
  }));
  const head = init([16, 10]);
  const optimizer = tf.train.momentum(0.01, 0.9);
  let seed = 0;
  return (x: tf.Tensor4D, labels: tf.Tensor2D) => {
    seed++;
    const cost = optimizer.minimize(() => {
      let h = x;
      blocks.forEach((b, i) => {
        const z = tf.conv2d(h, b.kernel as tf.Tensor4D, 1, 'valid');
        const r = reluBatchNormDropout(z, b.gamma as tf.Tensor1D, b.beta as tf.Tensor1D, {
          dropoutRate: b.dropout ? 0.1 : 0,
          seed: seed * 16 + i,
        });
        tf.dispose([r.mean, r.variance]); // the real loop folds these into the running averages
        h = b.pool ? tf.avgPool(r.y, 2, 2, 'valid') : r.y;
      });
      const logits = tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, head);
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    }, true);
    cost!.dataSync();
    cost!.dispose();
  };
}

/** The same net through tf.layers (model.apply in training mode): tfjs's own op graph. */
function layersStep() {
  const model = tf.sequential();
  BLOCKS.forEach((b, i) => {
    model.add(tf.layers.conv2d({ filters: b.out, kernelSize: 3, useBias: false, ...(i === 0 ? { inputShape: [28, 28, 1] } : {}) }));
    model.add(tf.layers.reLU());
    model.add(tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 }));
    if (b.dropout) model.add(tf.layers.dropout({ rate: 0.1 }));
    if (b.pool) model.add(tf.layers.averagePooling2d({ poolSize: 2 }));
  });
  model.add(tf.layers.globalAveragePooling2d({}));
  model.add(tf.layers.dense({ units: 10, useBias: false }));
  const optimizer = tf.train.momentum(0.01, 0.9);
  return (x: tf.Tensor4D, labels: tf.Tensor2D) => {
    const cost = optimizer.minimize(
      () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      true,
    );
    cost!.dataSync();
    cost!.dispose();
  };
}

async function timeEngine(engine: EngineName, variant: 'fused' | 'layers', steps: number, warmup: number): Promise<StepTiming> {
  const info = await initEngine(engine);
  const step = variant === 'fused' ? fusedStep() : layersStep();
  const x = tf.randomNormal([BATCH, 28, 28, 1]) as tf.Tensor4D;
  const labels = tf.oneHot(tf.randomUniform([BATCH], 0, 10, 'int32'), 10).toFloat() as tf.Tensor2D;
  for (let i = 0; i < warmup; i++) step(x, labels);
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < steps; i++) {
    const start = performance.now();
    step(x, labels);
    times.push(performance.now() - start);
  }
  const cpu = process.cpuUsage(cpu0);
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  return {
    engine: info.name,
    label: info.label,
    threads: info.threads ?? 1,
    variant,
    steps,
    msPerStep: round(median),
    bestMsPerStep: round(times[0]!),
    cpuMsPerStep: round((cpu.user + cpu.system) / 1000 / steps),
    imagesPerSecond: round((BATCH * 1000) / median),
  };
}

/** Kernel time per kernel name for one fused step on wasm (after warm-up), largest first. */
async function profileStep() {
  const info = await initEngine('wasm');
  const step = fusedStep();
  const x = tf.randomNormal([BATCH, 28, 28, 1]) as tf.Tensor4D;
  const labels = tf.oneHot(tf.randomUniform([BATCH], 0, 10, 'int32'), 10).toFloat() as tf.Tensor2D;
  for (let i = 0; i < 5; i++) step(x, labels);
  const profile = await tf.profile(() => step(x, labels));
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of profile.kernels) {
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += k.kernelTimeMs as number;
    entry.calls++;
    byKernel.set(k.name, entry);
  }
  console.log(`${info.label}, ${info.threads} thread(s); the fused op's backward runs outside kernels ('forward' is its forward)`);
  for (const [name, { ms, calls }] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) {
    console.log(`${name.padEnd(24)} ${ms.toFixed(1).padStart(7)} ms  ${calls} calls`);
  }
}

// ------------------------------------------------------------------ orchestration

async function child(engine: EngineName, variant: 'fused' | 'layers', threads: number, steps: number, warmup: number) {
  const script = fileURLToPath(import.meta.url);
  const env = { ...process.env, WASM_THREADS: String(threads) };
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--import', 'tsx', script, '--child', `${engine}:${variant}:${steps}:${warmup}`],
    { env, maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as StepTiming;
}

interface TorchTiming {
  threads: number;
  msPerStep: number;
  medianMsPerStep: number;
  bestMsPerStep: number;
  cpuMsPerStep: number;
  torch: string;
}

async function pytorch(threads: number, steps: number): Promise<TorchTiming | null> {
  try {
    await execFileAsync('/usr/bin/python3', ['-c', 'import torch']);
  } catch {
    return null;
  }
  const { stdout } = await execFileAsync('/usr/bin/python3', [
    path.join(here, 'pytorch-train-steps.py'),
    '--threads', String(threads),
    '--steps', String(steps),
  ]);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as TorchTiming;
}

const round = (value: number) => Math.round(value * 10) / 10;

async function main() {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      steps: { type: 'string', default: '30' },
      threads: { type: 'string', default: '' },
      'no-pytorch': { type: 'boolean', default: false },
      'no-cpu': { type: 'boolean', default: false },
      'no-layers': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
    },
  });
  if (values.profile) {
    await profileStep();
    return;
  }
  if (values.child) {
    const [engine, variant, steps, warmup] = values.child.split(':');
    console.log(JSON.stringify(await timeEngine(engine as EngineName, variant as 'fused' | 'layers', Number(steps), Number(warmup))));
    return;
  }
  const steps = Number(values.steps);
  const cores = os.availableParallelism();
  const threadCounts = values.threads ? values.threads.split(',').map(Number) : [...new Set([1, cores])];
  const loadBefore = os.loadavg();
  const ours: StepTiming[] = [];
  const torch: TorchTiming[] = [];
  // Ours and PyTorch back to back for each thread count, so both see the same machine load.
  for (const threads of threadCounts) {
    const wasm = await child('wasm', 'fused', threads, steps, 5);
    ours.push(wasm);
    console.error(`wasm fused   ${threads} thread(s): ${wasm.msPerStep} ms/step (${wasm.imagesPerSecond} images/s)`);
    if (!values['no-pytorch']) {
      const reference = await pytorch(threads, steps);
      if (reference) {
        torch.push(reference);
        console.error(`pytorch      ${threads} thread(s): ${round(reference.medianMsPerStep)} ms/step`);
      }
    }
  }
  if (!values['no-layers']) {
    const layers = await child('wasm', 'layers', cores, Math.max(3, Math.round(steps / 5)), 2);
    ours.push(layers);
    console.error(`wasm layers  ${layers.threads} thread(s): ${layers.msPerStep} ms/step`);
  }
  if (!values['no-cpu']) {
    const cpu = await child('cpu', 'fused', 1, 1, 0); // ~1.5 min a step: one is enough
    ours.push(cpu);
    console.error(`cpu fused: ${cpu.msPerStep} ms/step`);
  }

  const comparisons = torch.map((reference) => {
    const mine = ours.find((o) => o.engine === 'wasm' && o.variant === 'fused' && o.threads === reference.threads);
    return {
      threads: reference.threads,
      wasmMsPerStep: mine?.msPerStep ?? null,
      pytorchMsPerStep: round(reference.medianMsPerStep),
      pytorchImagesPerSecond: round((BATCH * 1000) / reference.medianMsPerStep),
      ratio: mine ? Math.round((mine.msPerStep / reference.medianMsPerStep) * 100) / 100 : null,
    };
  });
  const result = {
    date: new Date().toISOString(),
    batchSize: BATCH,
    stepsPerEpoch: STEPS_PER_EPOCH,
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores,
      memoryGiB: round(os.totalmem() / 2 ** 30),
      node: process.version,
      loadAverageBefore: loadBefore.map(round),
      loadAverageAfter: os.loadavg().map(round),
    },
    engines: ours.map((o) => ({ ...o, epochSeconds: round((o.msPerStep * STEPS_PER_EPOCH) / 1000) })),
    pytorch: torch.map((t) => ({ ...t, msPerStep: round(t.medianMsPerStep), epochSeconds: round((t.medianMsPerStep * STEPS_PER_EPOCH) / 1000) })),
    /** ratio = wasm ms/step ÷ PyTorch ms/step at the same thread count (the goal is ≤ 2). */
    comparisons,
    note: 'median ms/step over the timed steps; random inputs; ours and PyTorch measured back to back per thread count',
  };
  const out = path.join(here, 'results', 'train-throughput.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const temp = `${out}.${process.pid}.tmp`;
  fs.writeFileSync(temp, JSON.stringify(result, null, 2) + '\n');
  fs.renameSync(temp, out);
  console.log(JSON.stringify(comparisons));
  console.error(`wrote ${out}`);
}

await main();
