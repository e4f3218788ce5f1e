// The training step against PyTorch itself: same weights, same batch, dropout off.
// Loss, every gradient and the BatchNorm running statistics must agree. Skipped
// (with a message) where python3 has no torch (Debian: apt-get install python3-torch).
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/index.ts';
import { forwardTrain, seedNetWeights, updateRunningStatistics, type SeedNetWeights } from '../src/model/forward.ts';
import { buildSeedNet } from '../src/model/seed-net.ts';
import { mulberry32, permutation } from '../src/lib/random.ts';
import { SEED_RECIPE } from '../src/training/recipe.ts';
import { trainStep } from '../src/training/train.ts';

const PYTHON = '/usr/bin/python3';
const RECIPE = resolve(import.meta.dirname, '../../shared/reference/pytorch_seed_recipe.py');
const hasTorch =
  existsSync(RECIPE) && spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!hasTorch) console.warn(`skipping PyTorch parity: needs ${PYTHON} with torch and ${RECIPE}`);

type Nested = number | Nested[];
const maxAbsDiff = (a: Nested, b: Nested): number =>
  Array.isArray(a) ? a.reduce<number>((m, v, i) => Math.max(m, maxAbsDiff(v, (b as Nested[])[i]!)), 0) : Math.abs(a - (b as number));
const maxAbs = (a: Nested): number => (Array.isArray(a) ? a.reduce<number>((m, v) => Math.max(m, maxAbs(v)), 0) : Math.abs(a));

/** The trainable weights as the fixtures read them (tfjs layouts). */
const weightsJson = (weights: SeedNetWeights) => ({
  blocks: weights.blocks.map((b) => ({ kernel: b.kernel.arraySync(), gamma: b.gamma.arraySync(), beta: b.beta.arraySync() })),
  head: weights.head.arraySync(),
});

/** Runs a fixture script on `input` (JSON on stdin) and parses its JSON answer. */
function runTorch(fixture: string, input: unknown) {
  const run = spawnSync(PYTHON, [resolve(import.meta.dirname, 'fixtures', fixture), RECIPE], {
    input: JSON.stringify(input),
    maxBuffer: 64 * 1024 * 1024,
    encoding: 'utf8',
  });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout);
}

describe.skipIf(!hasTorch)('parity with PyTorch', () => {
  beforeAll(async () => {
    await initEngine();
  });

  it('one training step gives the same loss, gradients and running statistics', () => {
    const model = buildSeedNet(3);
    const weights = seedNetWeights(model);
    const x = tf.randomNormal([32, 28, 28, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const labels = Array.from({ length: 32 }, (_, i) => (i * 7) % 10);
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
    let statistics: ReturnType<typeof forwardTrain>['statistics'] = [];
    const { value, grads } = tf.variableGrads(() => {
      const out = forwardTrain(weights, x, 1, 0);
      statistics = out.statistics.map((s) => ({ ...s, mean: tf.keep(s.mean), variance: tf.keep(s.variance) }));
      return tf.losses.softmaxCrossEntropy(oneHot, out.logits) as tf.Scalar;
    }, weights.trainable);
    updateRunningStatistics(weights, statistics);

    const torch = runTorch('pytorch_step.py', { ...weightsJson(weights), x: x.arraySync(), labels });

    expect(value.dataSync()[0]).toBeCloseTo(torch.loss, 4);
    const grad = (v: tf.Variable) => grads[v.name]!.arraySync() as Nested;
    weights.blocks.forEach((b, i) => {
      for (const key of ['kernel', 'gamma', 'beta'] as const) {
        const ours = grad(b[key]);
        const theirs = torch.grads.blocks[i][key] as Nested;
        expect(maxAbsDiff(ours, theirs), `block ${i} ${key}`).toBeLessThan(1e-4 + 1e-3 * maxAbs(theirs));
      }
      expect(maxAbsDiff(b.movingMean.read().arraySync() as Nested, torch.runningMean[i])).toBeLessThan(1e-4);
      expect(maxAbsDiff(b.movingVariance.read().arraySync() as Nested, torch.runningVar[i])).toBeLessThan(1e-4);
    });
    expect(maxAbsDiff(grad(weights.head), torch.grads.head)).toBeLessThan(1e-4 + 1e-3 * maxAbs(torch.grads.head));
    model.dispose();
  });

  it('30 SGD steps with momentum follow the same trajectory: losses, weights, running statistics', () => {
    // MNIST-like inputs (normalised background, a bright bar whose place is the label, some
    // noise), so that the net learns within a few steps and the losses really move.
    const count = 320;
    const labels = Array.from({ length: count }, (_, i) => (i * 3) % 10);
    const pixels = new Float32Array(count * 784);
    const noise = mulberry32(9);
    const background = -0.1307 / 0.3081;
    labels.forEach((label, n) => {
      for (let p = 0; p < 784; p++) {
        const row = Math.floor(p / 28);
        const bright = row >= 2 + label * 2 && row < 4 + label * 2 && p % 28 > 4 && p % 28 < 24;
        pixels[n * 784 + p] = bright ? (noise() - 0.1307) / 0.3081 + 1.5 : noise() < 0.05 ? 2 : background;
      }
    });
    const split = { images: pixels, labels: Uint8Array.from(labels), count };
    const order = permutation(count, 4);
    const batches = Array.from({ length: 30 }, (_, s) => order.subarray(((s * 32) % count), ((s * 32) % count) + 32));

    const model = buildSeedNet(7);
    const weights = seedNetWeights(model);
    const input = {
      ...weightsJson(weights),
      x: tf.tidy(() => tf.tensor4d(pixels, [count, 28, 28, 1]).arraySync()),
      labels,
      batches: batches.map((b) => Array.from(b)),
      lr: SEED_RECIPE.learningRate,
      momentum: SEED_RECIPE.momentum,
    };
    const optimizer = tf.train.momentum(SEED_RECIPE.learningRate, SEED_RECIPE.momentum);
    const losses = batches.map((indices, s) => trainStep(weights, optimizer, split, indices, s, 0)[0]);

    const torch = runTorch('pytorch_train.py', input);

    expect(losses[0]! - losses.at(-1)!, 'the net learns').toBeGreaterThan(0.3);
    losses.forEach((loss, s) => expect(Math.abs(loss - torch.losses[s]), `step ${s}`).toBeLessThan(1e-5));
    const after = weightsJson(weights);
    after.blocks.forEach((b, i) => {
      for (const key of ['kernel', 'gamma', 'beta'] as const) {
        const theirs = torch.blocks[i][key] as Nested;
        expect(maxAbsDiff(b[key] as Nested, theirs), `block ${i} ${key}`).toBeLessThan(1e-4 * Math.max(1, maxAbs(theirs)));
      }
      expect(maxAbsDiff(weights.blocks[i]!.movingMean.read().arraySync() as Nested, torch.runningMean[i])).toBeLessThan(1e-4);
      expect(maxAbsDiff(weights.blocks[i]!.movingVariance.read().arraySync() as Nested, torch.runningVar[i])).toBeLessThan(1e-4);
    });
    expect(maxAbsDiff(after.head as Nested, torch.head)).toBeLessThan(1e-4 * Math.max(1, maxAbs(torch.head)));
    optimizer.dispose();
    model.dispose();
  });
});
